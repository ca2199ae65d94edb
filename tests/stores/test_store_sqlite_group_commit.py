"""SQLite group commit: concurrent cache operations share a transaction but keep their own outcome."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wxcallback.server.stores import ClaimState, SQLiteStore


def test_concurrent_claims_are_batched_and_exactly_one_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wxcallback.server.stores import sqlite as module

    batches = 0
    original = module._commit_batch

    def counting(db: sqlite3.Connection, batch: Any) -> Any:
        nonlocal batches
        batches += 1
        return original(db, batch)

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
                   [(f"old-{i}",) for i in range(module._PURGE_ROWS + 500)])
    purger = SQLiteStore(tmp_path / "state.db")
    connection = purger._connect()
    purger._purge(connection, now=100.0)
    assert db.execute("SELECT count(*) FROM claims WHERE key LIKE 'old-%'").fetchone()[0] == 500
    purger._purge(connection, now=100.0)
    assert db.execute("SELECT count(*) FROM claims WHERE key LIKE 'old-%'").fetchone()[0] == 0
    connection.close()
    db.close()
