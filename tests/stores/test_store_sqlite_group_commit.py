"""SQLite group commit: cache operations of one loop turn share a transaction, on the loop thread, and keep their own outcome."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wxcallback.server.stores import ClaimState, SQLiteStore

from tests.stores.conftest import claims_one_per_turn


def test_concurrent_claims_are_batched_and_exactly_one_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wxcallback.server.stores import sqlite as module

    batches = 0
    original = module._commit_batch

    def counting(db: sqlite3.Connection, batch: Any, **kwargs: Any) -> Any:
        nonlocal batches
        batches += 1
        return original(db, batch, **kwargs)

    monkeypatch.setattr(module, "_commit_batch", counting)

    async def main() -> None:
        store = SQLiteStore(tmp_path / "state.db")
        await store.start()
        same = await asyncio.gather(*(store.claim("same-key", 60) for _ in range(20)))
        assert [r.state for r in same].count(ClaimState.CLAIMED) == 1
        distinct = await asyncio.gather(*(store.claim(f"key-{i}", 60) for i in range(50)))
        assert all(r.state is ClaimState.CLAIMED for r in distinct)
        assert batches < 70  # 70 operations, fewer transactions
        await store.close()

    asyncio.run(main())


def test_a_failing_operation_does_not_undo_its_batch(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "state.db")

        def broken(db: sqlite3.Connection, now: float) -> Any:
            db.execute("INSERT INTO claims (key, reply, content_type, expires_at) VALUES ('half', NULL, NULL, 1e12)")
            raise sqlite3.IntegrityError("fails after a write")

        results = await asyncio.gather(store.claim("before", 60), store._run_grouped(broken),
                                       store.claim("after", 60), return_exceptions=True)
        assert results[0].state is ClaimState.CLAIMED  # type: ignore[union-attr]
        assert isinstance(results[1], sqlite3.IntegrityError)
        assert results[2].state is ClaimState.CLAIMED  # type: ignore[union-attr]
        # The failed operation's own write was rolled back; the others committed.
        assert (await store.claim("half", 60)).state is ClaimState.CLAIMED
        assert (await store.claim("before", 60)).state is ClaimState.IN_PROGRESS
        await store.close()

    asyncio.run(main())


def test_expired_rows_are_purged_a_little_at_a_time(tmp_path: Path) -> None:
    from wxcallback.server.stores import sqlite as module

    db = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    store = SQLiteStore(tmp_path / "state.db")

    async def main() -> None:
        await store.claim("warm-up", 1)  # creates the schema
        await store.close()

    asyncio.run(main())
    db.executemany("INSERT INTO claims (key, reply, content_type, expires_at) VALUES (?, NULL, NULL, 1.0)",
                   [(f"old-{i}",) for i in range(module._PURGE_ROWS + 50)])
    purger = SQLiteStore(tmp_path / "state.db")
    connection = purger._connect()
    assert purger._purge(connection, now=100.0)  # more to come
    assert db.execute("SELECT count(*) FROM claims WHERE key LIKE 'old-%'").fetchone()[0] == 50
    assert not purger._purge(connection, now=100.0)
    assert db.execute("SELECT count(*) FROM claims WHERE key LIKE 'old-%'").fetchone()[0] == 0
    connection.close()
    db.close()


def _claim_all(path: str, keys: list[str], start: Any, results: Any) -> None:
    """One worker process: claim every key, many at a time, and report the ones it won."""

    async def main() -> None:
        async with SQLiteStore(path) as store:
            health = await store.health()
            assert health.ok, health.reason
            start.wait()
            won: list[str] = []
            for at in range(0, len(keys), 25):  # batches of concurrent claims, as under load
                chunk = keys[at:at + 25]
                claims = await asyncio.gather(*(store.claim(key, 300) for key in chunk))
                won += [key for key, claim in zip(chunk, claims) if claim.state is ClaimState.CLAIMED]
            results.put(won)

    asyncio.run(main())


def test_two_processes_claiming_the_same_keys_have_exactly_one_winner_each(tmp_path: Path) -> None:
    import multiprocessing

    path = str(tmp_path / "state.db")
    keys = [f"oa:dedup:{i}" for i in range(400)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    # The second process claims in reverse order, so the two meet in the middle.
    workers = [context.Process(target=_claim_all, args=(path, order, start, results))
               for order in (keys, keys[::-1])]
    for worker in workers:
        worker.start()
    first, second = results.get(timeout=120), results.get(timeout=120)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(keys)


def test_cache_operations_commit_on_the_loop_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from wxcallback.server.stores import sqlite as module

    threads: set[int] = set()
    original = module._commit_batch

    def recording(db: sqlite3.Connection, batch: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return original(db, batch, **kwargs)

    monkeypatch.setattr(module, "_commit_batch", recording)

    async def main() -> None:
        async with SQLiteStore(tmp_path / "state.db") as store:
            await store.start()  # opens the file, on the store's thread
            assert await store.remember_nonce("n", 60)
            assert (await store.claim("k", 60)).state is ClaimState.CLAIMED
            assert threads == {threading.get_ident()}

    asyncio.run(main())


def test_a_batch_waits_for_a_write_lock_held_elsewhere_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "state.db"

    async def main() -> None:
        async with SQLiteStore(path) as store:
            await store.claim("warm-up", 60)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process's write transaction
            claim = asyncio.ensure_future(store.claim("k", 60))
            ticks = 0
            for _ in range(20):  # the loop keeps running while the claim waits
                await asyncio.sleep(0.005)
                ticks += 1
            assert ticks == 20 and not claim.done()
            other.execute("COMMIT")
            assert (await claim).state is ClaimState.CLAIMED
            other.close()

    asyncio.run(main())


def test_a_write_lock_held_past_busy_timeout_makes_the_batch_fail(tmp_path: Path) -> None:
    from wxcallback.server.stores import StoreUnavailableError

    path = tmp_path / "state.db"

    async def main() -> None:
        async with SQLiteStore(path, busy_timeout=0.05) as store:
            await store.claim("warm-up", 60)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailableError):
                await store.claim("k", 60)
            other.execute("COMMIT")
            other.close()
            assert (await store.claim("k", 60)).state is ClaimState.CLAIMED  # nothing was left half done

    asyncio.run(main())


def test_the_wal_is_checkpointed_off_the_commit_path_and_stays_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from wxcallback.server.stores import sqlite as module

    monkeypatch.setattr(module, "_CHECKPOINT_EVERY", 0.01)
    monkeypatch.setattr(module, "_WAL_RESTART_FRAMES", 50)
    monkeypatch.setattr(module, "_CHECKPOINT_CHANGES", 5)
    path = tmp_path / "state.db"
    writes = 400

    async def main() -> None:
        async with SQLiteStore(path) as store:
            await store.start()
            assert store._connection is not None
            # No commit checkpoints (that is the checkpointer's job, on its own thread).
            assert store._connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
            for n in range(writes):  # one page or more each: without checkpoints the WAL holds them all
                await store.put_value(f"v{n}", b"x" * 3000, 60)
                await asyncio.sleep(0.002)
            # Started over again and again: far smaller than every frame written.
            assert os.path.getsize(f"{path}-wal") < writes * 4096 / 2
            assert await store.get_value(f"v{writes - 1}") == b"x" * 3000

    asyncio.run(main())


def test_a_backlog_of_expired_rows_is_purged_over_the_next_batches(tmp_path: Path) -> None:
    from wxcallback.server.stores import sqlite as module

    from .conftest import FakeClock

    clock = FakeClock()
    path = tmp_path / "state.db"
    backlog = 3 * module._PURGE_ROWS + 10

    async def main() -> None:
        async with SQLiteStore(path, clock=clock) as store:
            await store.start()
            await store.claim("warm-up", 1)
            look = sqlite3.connect(path, isolation_level=None)
            look.executemany("INSERT INTO claims (key, reply, content_type, expires_at) VALUES (?, NULL, NULL, ?)",
                             [(f"old-{i}", clock.now - 1) for i in range(backlog)])
            clock.now += 2 * module._PURGE_EVERY  # a purge is due
            for n in range(4):  # a chunk per batch while there is more, not a chunk a second
                await store.claim(f"new-{n}", 60)
            left = look.execute("SELECT count(*) FROM claims WHERE key LIKE 'old-%'").fetchone()[0]
            look.close()
            assert left == 0

    asyncio.run(main())


def test_an_in_memory_store_hands_nothing_to_its_thread_after_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with SQLiteStore(":memory:") as store:
            await store.start()
            handed: list[object] = []
            submit = store._executor.submit
            monkeypatch.setattr(store._executor, "submit", lambda *args: handed.append(args) or submit(*args))
            for n in range(5):
                assert (await store.claim(f"k{n}", 60)).state is ClaimState.CLAIMED
            assert handed == []

    asyncio.run(main())


async def _opened(tmp_path: Path) -> SQLiteStore:
    """A store with its file open and its schema made, so a test's first batch is on the loop."""
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    await store.claim("warm-up", 60)
    return store


def _counting_commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch committed on the loop thread, in order."""
    from wxcallback.server.stores import sqlite as module

    sizes: list[int] = []
    original = module._commit_batch

    def counting(db: sqlite3.Connection, batch: Any, **kwargs: Any) -> Any:
        sizes.append(len(batch))
        return original(db, batch, **kwargs)

    monkeypatch.setattr(module, "_commit_batch", counting)
    return sizes


def test_operations_of_the_turns_that_follow_join_a_batch_while_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wxcallback.server.stores import sqlite as module

    monkeypatch.setattr(module, "_HOLD", 60.0)  # only the quiet turn ends the batch, however slow the machine

    async def main() -> None:
        store = await _opened(tmp_path)
        sizes = _counting_commits(monkeypatch)
        claims = await claims_one_per_turn(lambda key: store.claim(key, 60), 5)
        assert all(result.claimed for result in claims)
        assert sizes == [5]  # one commit, where each turn made its own before
        await store.close()

    asyncio.run(main())


def test_a_lone_operation_is_committed_at_the_next_quiet_turn_without_a_timer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        store = await _opened(tmp_path)
        sizes = _counting_commits(monkeypatch)
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "call_later", None)  # no timer may be involved
        monkeypatch.setattr(loop, "call_at", None)
        claim = asyncio.ensure_future(store.claim("alone", 60))
        turns = 0
        while not claim.done():
            await asyncio.sleep(0)
            turns += 1
        assert claim.result().claimed and sizes == [1]
        assert turns <= 4  # its task's step, the turn it was made in, one quiet turn, the result
        await store.close()

    asyncio.run(main())


def test_a_batch_that_keeps_growing_is_committed_once_the_hold_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        store = await _opened(tmp_path)
        sizes = _counting_commits(monkeypatch)
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(store.claim("first", 60))
        made: list[asyncio.Future[Any]] = []
        answered_at: int | None = None  # how many had been made when the first was answered

        def arrive() -> None:  # an operation every turn, until 20 turns after the first's answer
            nonlocal answered_at
            if answered_at is None and first.done():
                answered_at = len(made)
            if len(made) == 100_000 or answered_at is not None and len(made) == answered_at + 20:
                return
            made.append(asyncio.ensure_future(store.claim(f"more-{len(made)}", 60)))
            loop.call_soon(arrive)

        arrive()
        assert (await first).claimed
        while answered_at is None or len(made) < answered_at + 20:
            await asyncio.sleep(0)
        assert all(result.claimed for result in await asyncio.gather(*made))
        # The first did not wait for the stream of operations to end; they took several commits.
        assert 0 < answered_at < 50_000 and len(sizes) > 1
        assert sum(sizes) == len(made) + 1
        await store.close()

    asyncio.run(main())
