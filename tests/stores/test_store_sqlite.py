"""What only the SQLite store promises: one file shared by processes, durable across restarts."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from wxcallback.server.stores import SQLiteStore, StoreUnavailableError

from .conftest import FakeClock


def _race(path: str, start: Barrier, results: Any) -> None:
    """One worker process: open the store, wait for the others, then claim and enqueue."""

    async def main() -> None:
        async with SQLiteStore(path) as store:
            health = await store.health()  # the file is open before the race starts
            assert health.ok, health.reason
            start.wait()
            claim = await store.claim("oa:msg-1", 300)
            id = await store.enqueue("crm", b"payload", "oa:msg-1")
            results.put((claim.state.value, id))

    asyncio.run(main())


def test_worker_processes_racing_on_one_file_behave_as_one_store(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    processes = 4
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [context.Process(target=_race, args=(path, start, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    assert sorted(state for state, _ in outcomes) == ["claimed"] + ["in_progress"] * 3
    assert len({id for _, id in outcomes}) == 1  # four enqueues, one delivery

    async def check() -> None:
        async with SQLiteStore(path) as store:
            assert await store.depth() == 1

    asyncio.run(check())


def test_two_store_objects_on_one_file_share_their_state(tmp_path: Path) -> None:
    async def main() -> None:
        async with SQLiteStore(tmp_path / "s.db") as one, SQLiteStore(tmp_path / "s.db") as two:
            assert await one.remember_nonce("n", 60)
            assert not await two.remember_nonce("n", 60)
            assert (await two.claim("k")).claimed
            assert (await one.claim("k")).in_progress
            await two.complete("k", b"reply", "text/plain")
            assert await one.wait_for("k", 5) is not None
            await one.put_stream("s", {"msgid": "m"})
            await two.append_stream("s", "abc")
            state = await one.get_stream("s")
            assert state is not None and state["content"] == "abc"

    asyncio.run(main())


def test_the_outbox_survives_closing_and_reopening_the_store(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "outbox.db"

    async def before_restart() -> tuple[str, str]:
        async with SQLiteStore(path, clock=clock) as store:
            first = await store.enqueue("crm", b"one", "k1")
            second = await store.enqueue("crm", b"two", "k2")
            [taken] = await store.claim_batch("worker-that-dies", 1, 30)
            assert taken.id == first
            return first, second

    async def after_restart(first: str, second: str) -> None:
        async with SQLiteStore(path, clock=clock) as store:
            assert await store.depth() == 2
            [waiting] = await store.claim_batch("worker-b", 10, 300)
            assert (waiting.id, waiting.payload, waiting.attempts) == (second, b"two", 1)
            clock.now += 31  # the dead worker's lease runs out
            [recovered] = await store.claim_batch("worker-b", 10, 30)
            assert (recovered.id, recovered.payload, recovered.attempts) == (first, b"one", 2)
            assert await store.enqueue("crm", b"one again", "k1") == first

    first, second = asyncio.run(before_restart())
    asyncio.run(after_restart(first, second))


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"

    async def main() -> None:
        async with SQLiteStore(path) as store:
            await store.remember_nonce("n", 60)

    asyncio.run(main())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_expired_rows_and_old_deliveries_are_purged_from_the_file(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "purge.db"

    async def main() -> None:
        async with SQLiteStore(path, clock=clock, outbox_key_ttl=600) as store:
            await store.remember_nonce("old", 1)
            await store.claim("old", 1)
            await store.put_stream("old", {}, 1)
            await store.enqueue("crm", b"p", "old")
            [item] = await store.claim_batch("w", 1, 30)
            await store.ack(item.id)
            clock.now += 3600
            await store.remember_nonce("new", 60)

    asyncio.run(main())
    with sqlite3.connect(path) as db:
        for table in ("nonces", "claims", "streams", "outbox"):
            keys = [row[0] for row in db.execute(f"SELECT * FROM {table}")]
            assert keys == (["new"] if table == "nonces" else []), table


def test_an_unopenable_path_is_reported_as_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        async with SQLiteStore(tmp_path / "no-such-dir" / "state.db") as store:
            assert await store.healthy() is False
            with pytest.raises(StoreUnavailableError, match="no-such-dir"):
                await store.remember_nonce("n", 60)

    asyncio.run(main())


def test_an_in_memory_database_is_private_to_its_store() -> None:
    async def main() -> None:
        async with SQLiteStore(":memory:") as one, SQLiteStore(":memory:") as two:
            assert await one.remember_nonce("n", 60)
            assert await two.remember_nonce("n", 60)
            assert not await one.remember_nonce("n", 60)
            await one.enqueue("crm", b"p", "k")
            assert (await one.depth(), await two.depth()) == (1, 0)

    asyncio.run(main())


def test_a_file_made_before_later_columns_gets_them_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE nonces (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, idempotency_key TEXT NOT NULL,
            payload BLOB, attempts INTEGER NOT NULL DEFAULT 0, enqueued_at REAL NOT NULL,
            visible_at REAL NOT NULL, consumer TEXT, acked_at REAL, UNIQUE (channel, idempotency_key));
    """)
    old.execute("INSERT INTO nonces VALUES ('kept', 1e12)")
    old.commit()
    old.close()

    async def main() -> None:
        async with SQLiteStore(path) as store:
            assert await store.remember_nonce("kept", 60) is False  # its rows are still there
            assert await store.record_nonce("kept", b"fp", 60) == b""  # recorded with no fingerprint
            assert await store.record_nonce("new", b"fp", 60) is None
            assert await store.record_nonce("new", b"other", 60) == b"fp"
            await store.enqueue("crm", b"payload", "k")
            assert await store.depth() == 1

    asyncio.run(main())
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(nonces)")}
    assert "fingerprint" in columns


@contextmanager
def _held_exclusively(path: Path, seconds: float) -> Iterator[None]:
    """Another connection holding ``path`` (a new file, rollback journal) for ``seconds``, so
    that nobody may read or write it meanwhile."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE other (x)")
    release = threading.Timer(seconds, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        yield
    finally:
        release.join()
        holder.close()


def test_opening_a_file_another_process_holds_waits_for_it_within_the_write_budget(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async def main() -> None:
        async with SQLiteStore(str(path)) as store:
            health = await store.health()
            assert health.ok, health.reason
            assert (await store.claim("oa:msg-1", 60)).claimed

    with _held_exclusively(path, 0.3):  # as a second worker switching a new file to WAL does
        asyncio.run(main())


def test_opening_a_file_held_past_the_budget_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async def main() -> None:
        async with SQLiteStore(str(path), busy_timeout=0.2) as store:
            health = await store.health()
            assert not health.ok and "locked" in health.reason
            with pytest.raises(StoreUnavailableError, match="locked"):
                await store.claim("oa:msg-1", 60)

    with _held_exclusively(path, 1.5):
        asyncio.run(main())
