"""The SQLite store's file under attack: deleted or replaced while in use, or unable to grow."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import resource
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wxcallback.server.stores import ClaimState, SQLiteStore, StoreUnavailableError


def _store_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "wxcallback.store"]


@pytest.mark.parametrize("remove", ["the file", "the file and its -wal and -shm"])
def test_a_deleted_file_is_reported_and_no_accepted_message_is_lost(
    tmp_path: Path, remove: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    caplog.set_level(logging.ERROR, "wxcallback.store")

    async def main() -> None:
        # Two workers on one file; "worker_b" notices the deletion later than "worker_a".
        async with SQLiteStore(path, reopen_alarm=0.5) as worker_a, SQLiteStore(path) as worker_b:
            before = [await worker_a.enqueue("crm", b"p", f"before-{n}") for n in range(5)]
            in_flight = await worker_a.claim_batch("worker-a", 2, 300)
            assert await worker_a.claim("oa:msg-1", 300) == await worker_b.claim("oa:msg-2", 300)
            await worker_a.complete("oa:msg-1", b"cached reply", "text/plain", 300)
            assert (await worker_a.health()).ok

            os.unlink(path)
            if remove != "the file":
                os.unlink(f"{path}-wal")
                os.unlink(f"{path}-shm")

            ok, reason = await worker_a.health()
            assert not ok and reason.startswith(f"the SQLite file {path} was deleted while in use")
            assert "carried over 5 waiting outbox item(s)" in reason
            assert path.exists()  # the store moved to a new file at the path
            late = await worker_b.enqueue("crm", b"p", "late-on-the-old-file")  # not noticed yet
            after = await worker_a.enqueue("crm", b"p", "after")
            assert not (await worker_b.health()).ok  # worker_b notices and carries `late` over
            assert await worker_a.depth() == await worker_b.depth() == 7

            for item in in_flight:  # the consumer that held them acks them on the new file
                await worker_a.ack(item.id)
            assert await worker_b.depth() == 5
            assert (await worker_b.claim("oa:msg-1", 300)).done  # dedup state came along
            await asyncio.sleep(0.6)
            assert await worker_a.health() == (True, "")

        # A worker started afterwards (a restart) opens the same file and sees everything.
        async with SQLiteStore(path) as restarted:
            assert await restarted.depth() == 5
            waiting = await restarted.claim_batch("restarted", 10, 300)
            keys = {item.idempotency_key for item in waiting}
            assert keys == {"before-2", "before-3", "before-4", "late-on-the-old-file", "after"}
            ids = {item.id for item in waiting}
            assert set(before[2:]) | {late, after} == ids  # ids kept: in-flight acks stay right
            assert await restarted.enqueue("crm", b"p", "before-0") == before[0]  # key absorbed

    asyncio.run(main())
    records = _store_records(caplog)
    # worker_b finds worker_a's new file at the path: to it, its file was replaced.
    assert [r["event"] for r in records] == ["store_file_deleted", "store_file_replaced"]
    assert records[0]["path"] == str(path) and records[0]["carried_over"]["outbox"] == 5
    assert records[1]["carried_over"]["outbox"] == 6  # the old file, as worker_b last saw it


def test_a_replaced_file_is_reported_and_both_files_outboxes_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    replacement = tmp_path / "restored-backup.db"
    caplog.set_level(logging.ERROR, "wxcallback.store")

    async def main() -> None:
        async with SQLiteStore(replacement) as elsewhere:  # e.g. a backup restored by hand
            await elsewhere.enqueue("erp", b"from the backup", "b-1")
        async with SQLiteStore(path) as worker:
            live = await worker.enqueue("crm", b"live", "l-1")
            os.replace(replacement, path)
            ok, reason = await worker.health()
            assert not ok and "was replaced by another file while in use" in reason
            after = await worker.enqueue("crm", b"after", "a-1")
            items = await worker.claim_batch("w", 10, 300)
            assert {(i.channel, i.payload) for i in items} == {
                ("erp", b"from the backup"), ("crm", b"live"), ("crm", b"after")}
            assert live in {i.id for i in items} and after in {i.id for i in items}

    asyncio.run(main())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 3
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    [record] = _store_records(caplog)
    assert record["event"] == "store_file_replaced"


def test_the_hot_path_notices_a_deleted_file_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "state.db"

    async def main() -> None:
        async with SQLiteStore(path) as store:
            await store.enqueue("crm", b"p", "before")
            os.unlink(path)
            await asyncio.sleep(1.1)
            await store.enqueue("crm", b"p", "after")  # no health check: enqueue notices
        async with SQLiteStore(path) as restarted:
            assert await restarted.depth() == 2

    asyncio.run(main())


def _fill_until_full(path: str, results: Any) -> None:
    """Child process: let the files grow only a little more, then write until refused."""

    async def main() -> None:
        async with SQLiteStore(path) as store:
            await store.enqueue("crm", b"p", "first")
            assert (await store.health()).ok
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
            limit = max(os.path.getsize(path + suffix) for suffix in ("", "-wal")) + 256 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            refused = None
            for n in range(1000):
                try:
                    await store.enqueue("crm", b"x" * 16384, f"fill-{n}")
                except StoreUnavailableError as exc:
                    refused = str(exc)
                    break
            results.put((refused, tuple(await store.health())))

    asyncio.run(main())


def test_health_is_bad_when_the_disk_refuses_writes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_fill_until_full, args=(str(tmp_path / "full.db"), results))
    child.start()
    refused, (ok, reason) = results.get(timeout=60)
    child.join(timeout=30)
    assert refused is not None  # the outbox itself was refused: the limit was reached
    assert not ok and ("disk is full" in reason or "disk I/O error" in reason), reason


def test_cache_operations_alone_notice_a_deleted_file_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "state.db"

    async def main() -> None:
        async with SQLiteStore(path) as store:
            await store.claim("before", 60)
            os.unlink(path)
            await asyncio.sleep(1.1)
            await store.claim("after", 60)  # its batch stats the path; the thread moves to a new file
            for _ in range(500):
                if path.exists():
                    break
                await asyncio.sleep(0.01)
            assert path.exists()
            assert not (await store.health()).ok
        async with SQLiteStore(path) as restarted:
            assert (await restarted.claim("before", 60)).state is ClaimState.IN_PROGRESS  # carried over

    asyncio.run(main())
