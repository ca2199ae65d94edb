"""SQLite store: one file shared by the worker processes of one host.

Cache operations (nonces, dedup claims and replies, streams, leases, named values) run on the
event loop's own thread, in batches of one transaction, so with several worker processes on one
file the write lock is taken once per batch rather than once per operation. A batch starts with
the first operation of a turn of the loop and is committed at the first later turn that added
nothing, or ``_HOLD`` after it started: while the loop is reading more requests their claims
join (with two workers on one file a commit costs ~100-200 µs of CPU: the page cache starting
over, the WAL frames, the checkpoint's share), and a lone request waits one turn, no timer. In
WAL mode with ``synchronous=NORMAL`` such a commit only writes to the WAL (no fsync: losing the
last second of nonces on power loss is harmless), so it takes microseconds; the loop never waits
for the lock: if another process (or this store's thread) holds it, the batch is tried again a
millisecond later, joined by the operations made meanwhile. Everything that may wait on the disk
runs on one background thread instead: opening the file, checking it is still the one at the
path, purging, and the outbox, which commits with ``synchronous=FULL`` because an acknowledged
enqueue must survive a crash.

Handing every batch to that thread cost ~57 µs of CPU per batch plus ~22 µs per operation, and
made the tail latency: a thread that wants the GIL back from a busy loop thread waits out the
switch interval (5 ms), after every sleep and every statement, some of them while holding the
file's write lock.

WAL mode lets readers and the single writer proceed together; every read-modify-write is one
``BEGIN IMMEDIATE`` transaction, which takes the file's write lock up front, so two processes
claiming the same key are serialised and exactly one wins.

The WAL is checkpointed by a thread of its own on a connection of its own, after every 1000
changed rows, at most 4 times a second (see :class:`_Checkpointer`), never by a commit: SQLite's
automatic checkpoint runs inside the COMMIT that crosses 1000 pages, copying pages and syncing
both files, and took 3-90 ms there, which every request waiting on that batch (and on that
thread) saw.

A file deleted or replaced under a live store is noticed (the path no longer names the open
file; looked at at most once a second, and on every health check) and the store moves to the
file now at the path, carrying over what the old one held (see :meth:`SQLiteStore._reopen`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from .base import (
    CLAIMED,
    DEFAULT_OUTBOX_KEY_TTL,
    IN_PROGRESS,
    CachedReply,
    ClaimResult,
    ClaimState,
    Clock,
    DeadLetter,
    OutboxItem,
    Store,
    StoreHealth,
    StreamState,
    _decode_stream,
    _encode_stream,
)

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

_LOG = logging.getLogger("wxcallback.store")

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; a reopen there is not serialised
    fcntl = None  # type: ignore[assignment]

# How often (seconds) the store checks that its path still names the file it has open.
_FILE_CHECK_EVERY = 1.0
# After a reopen, new outbox ids start this far above the old file's, so rows that other workers
# still add to the old file until they notice keep their ids when carried over.
_ID_GAP = 1_000_000

# Expired rows are deleted a little at a time (queries ignore them until then), at the start
# of a batch on the loop's thread: at most _PURGE_ROWS per table, every _PURGE_EVERY seconds,
# or in the very next batch while a table had more. One big delete a minute held the write
# lock long enough to show in every worker's p99 once the first dedup entries expired; 2000
# rows a second, on the store's thread, held it 3-13 ms (GIL waits included) and fell behind
# a busy server's inserts.
_PURGE_EVERY = 1.0
_PURGE_ROWS = 200

# The checkpointer copies the WAL into the database file once this connection has changed
# _CHECKPOINT_CHANGES rows since the last time, at most every _CHECKPOINT_EVERY seconds. SQLite's
# default (every 1000 pages, inside a commit) came to a few times a second under load.
_CHECKPOINT_EVERY = 0.25
_CHECKPOINT_CHANGES = 1000
# Past this many frames (4 KB pages) the checkpointer also restarts the WAL (see _Checkpointer).
_WAL_RESTART_FRAMES = 4000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    key         TEXT PRIMARY KEY,
    expires_at  REAL NOT NULL,
    fingerprint BLOB               -- what first used the nonce (record_nonce)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS claims (
    key           TEXT PRIMARY KEY,
    reply         BLOB,            -- NULL while the handler runs
    content_type  TEXT,
    expires_at    REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS streams (
    stream_id   TEXT PRIMARY KEY,
    state       TEXT NOT NULL,     -- JSON
    expires_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    channel          TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    payload          BLOB,         -- NULL once delivered: the row then only remembers the key
    attempts         INTEGER NOT NULL DEFAULT 0,
    enqueued_at      REAL NOT NULL,
    visible_at       REAL NOT NULL, -- claimable from here: end of a claim's lease or a nack's retry
    consumer         TEXT,
    acked_at         REAL,
    dead_at          REAL,         -- set when dead-lettered: no longer delivered
    dead_reason      TEXT,
    UNIQUE (channel, idempotency_key)
);

CREATE TABLE IF NOT EXISTS leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS named_values (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    expires_at  REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS health (
    id  INTEGER PRIMARY KEY,
    at  REAL NOT NULL              -- the last health check's write
);
"""

# After the outbox has its dead-letter columns (files made before them get them added first).
_INDEXES = """
CREATE INDEX IF NOT EXISTS requests_queue ON requests (queue, id);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (expires_at);
CREATE INDEX IF NOT EXISTS streams_expiry ON streams (expires_at);
CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox (visible_at, id)
    WHERE acked_at IS NULL AND dead_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_dead ON outbox (dead_at, id) WHERE dead_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (acked_at) WHERE acked_at IS NOT NULL;
DROP INDEX IF EXISTS outbox_due;
"""

_OUTBOX_COLUMNS = (
    "id, channel, idempotency_key, payload, attempts, enqueued_at, visible_at, consumer, "
    "acked_at, dead_at, dead_reason"
)


class SQLiteStore(Store):
    """Shared state in one SQLite file (or ``":memory:"``, private to this store object).

    The file is opened on first use; a path that cannot be opened then raises
    :class:`~wxcallback.server.stores.base.StoreUnavailableError`.
    """

    _backend_errors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        busy_timeout: float = 5.0,
        outbox_key_ttl: float = DEFAULT_OUTBOX_KEY_TTL,
        reopen_alarm: float = 60.0,
    ) -> None:
        super().__init__(clock=clock)
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self.outbox_key_ttl = outbox_key_ttl
        #: Seconds health() stays bad after the file was found deleted or replaced.
        self.reopen_alarm = reopen_alarm
        self._connection: sqlite3.Connection | None = None
        # (st_dev, st_ino) of the file, its -wal and its -shm, taken when they were opened.
        self._identity: dict[str, tuple[int, int] | None] = {}
        self._next_file_check = 0.0
        self._reopened = False  # True once moved to a new file: it runs with a rollback journal
        self._alarm: tuple[float, str] | None = None  # (until, reason), monotonic clock
        self._next_purge = 0.0
        # One thread owns the connection: sqlite3 objects are not shared across threads.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wxcallback-sqlite")
        # Held by whoever uses the connection: a loop thread running a batch (it only ever tries
        # it) or the store's thread.
        self._lock = threading.Lock()
        # Each event loop's operations waiting for its next batch; an entry means a flush is due.
        self._batches: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        self._reopening = False  # a move to the file now at the path is queued on the thread
        self._checkpointer: _Checkpointer | None = None
        self._checkpoint_at = 0  # the connection's total_changes at which to wake it next

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _run(self, work: Callable[[sqlite3.Connection, float], _T]) -> _T:
        """Run ``work`` on the store's thread (for what may wait on the disk)."""
        now = self.clock()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._on_thread, work, now)

    async def _run_grouped(self, work: Callable[[sqlite3.Connection, float], _T], *, atomic: bool = False) -> _T:
        """Run a cache operation in this loop's next batch (see the module docstring).

        ``atomic``: ``work`` makes at most one write and cannot fail after it, so it needs no
        savepoint of its own to fail alone (SQLite undoes a failed statement by itself).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            now = time.monotonic()
            loop.call_soon(self._flush, loop, now + self.busy_timeout, now + _HOLD, 0)
        batch.append((work, self.clock(), future, atomic))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop, deadline: float, hold: float = 0.0, seen: int = 0) -> None:
        """Commit this loop's batch once a turn added nothing to it (``seen``: its size at the
        last look) or ``hold`` has passed, or try again shortly if the lock is taken."""
        batch = self._batches[loop]
        if len(batch) > seen and time.monotonic() < hold:
            # Group commit: the batch grew in the last turn of the loop, so more requests are
            # being read: one more turn for them, until the loop has nothing new or _HOLD passed.
            loop.call_soon(self._flush, loop, deadline, hold, len(batch))
            return
        if self._connection is None or self._reopened:
            # Not open yet (opening may wait), or on a rollback journal, whose commits sync:
            # the thread runs the batch.
            del self._batches[loop]
            try:
                self._executor.submit(self._flush_on_thread, batch, loop)
            except RuntimeError as exc:  # closed
                _settle([(future, None, exc) for _, _, future, _ in batch])
            return
        if time.monotonic() >= self._next_file_check and not self._reopening:
            # One stat, here; only a reopen (which waits on a lock and copies) goes to the thread.
            # Not the whole check there: the thread holds the connection while it waits for the
            # GIL (5 ms at a time from a busy loop), and every batch waited with it (p99 ~45 ms
            # when retries kept the loop busy).
            self._next_file_check = time.monotonic() + _FILE_CHECK_EVERY
            if _identity(self.path) != self._identity.get(""):
                self._reopening = True
                self._executor.submit(self._reopen_on_thread)
        outcomes: list[_Outcome] | None = None
        if self._lock.acquire(blocking=False):
            try:
                db = self._connection  # read under the lock: a reopen may have replaced it
                if db is not None and _try_begin(db):
                    now = batch[0][1]
                    outcomes = _commit_batch(db, batch, first=lambda: self._purge_if_due(db, now))
                    self._checkpoint_if_due(db)
            except Exception as exc:  # no transaction: every operation in it failed
                outcomes = [(future, None, exc) for _, _, future, _ in batch]
            finally:
                self._lock.release()
        if outcomes is None:  # the lock is taken: again in 1 ms, with what came meanwhile
            if time.monotonic() < deadline:
                loop.call_later(_BUSY_RETRY, self._flush, loop, deadline)
                return
            locked = sqlite3.OperationalError("database is locked")
            outcomes = [(future, None, locked) for _, _, future, _ in batch]
        del self._batches[loop]
        _settle(outcomes)

    def _flush_on_thread(self, batch: list[_Pending], loop: asyncio.AbstractEventLoop) -> None:
        outcomes: list[_Outcome]
        with self._lock:
            try:
                db = self._connect()
                try:
                    self._purge_if_due(db, batch[0][1])
                    _begin_immediate(db)
                    outcomes = _commit_batch(db, batch)
                finally:
                    db.execute("PRAGMA busy_timeout = 0")  # for the loop's tries (see _try_begin)
            except Exception as exc:
                outcomes = [(future, None, exc) for _, _, future, _ in batch]
        try:
            loop.call_soon_threadsafe(_settle, outcomes)
        except RuntimeError:  # pragma: no cover - the loop closed while the batch ran
            pass

    def _reopen_on_thread(self) -> None:
        """Move to the file now at the path (the loop found it is not the one open)."""
        try:
            with self._lock:
                self._check_file()
                if self._connection is not None:
                    self._connection.execute("PRAGMA busy_timeout = 0")
        except Exception as exc:  # the next operations report it; the next check tries again
            _LOG.warning(json.dumps({"event": "store_reopen_failed", "store": "sqlite", "path": self.path,
                                     "detail": f"{type(exc).__name__}: {exc}"}))
        finally:
            self._reopening = False

    def _on_thread(self, work: Callable[[sqlite3.Connection, float], _T], now: float) -> _T:
        with self._lock:
            db = self._connect()
            try:
                self._purge_if_due(db, now)
                return work(db, now)
            finally:
                if self._connection is not None:  # (a reopen may have moved to another connection)
                    self._connection.execute("PRAGMA busy_timeout = 0")
                    self._checkpoint_if_due(self._connection)  # the outbox writes to the WAL too

    def _checkpoint_if_due(self, db: sqlite3.Connection) -> None:
        if db.total_changes >= self._checkpoint_at and self._checkpointer is not None:
            self._checkpoint_at = db.total_changes + _CHECKPOINT_CHANGES
            self._checkpointer.wake()

    def _purge_if_due(self, db: sqlite3.Connection, now: float) -> None:
        if now >= self._next_purge:
            more = self._purge(db, now)
            self._next_purge = now if more else now + _PURGE_EVERY

    def _connect(self) -> sqlite3.Connection:
        """The connection, for the store's thread (which holds ``_lock``)."""
        if self._connection is None:
            self._connection = self._open(wal=not self._reopened)
        elif time.monotonic() >= self._next_file_check:
            self._check_file()
        assert self._connection is not None
        # The loop's tries leave no busy handler; the thread's statements keep a short one as a
        # backstop (see _STATEMENT_BUSY_TIMEOUT). Whoever called this sets it back to 0.
        self._connection.execute(f"PRAGMA busy_timeout = {int(_STATEMENT_BUSY_TIMEOUT * 1000)}")
        return self._connection

    def _open(self, *, wal: bool) -> sqlite3.Connection:
        db = _open_file(self.path, wal=wal, budget=self.busy_timeout)
        if self.path != ":memory:":
            self._identity = {suffix: _identity(self.path + suffix) for suffix in ("", "-wal", "-shm")}
            self._next_file_check = time.monotonic() + _FILE_CHECK_EVERY
            if wal and self._checkpointer is None:
                self._checkpointer = _Checkpointer(self.path)
            self._checkpoint_at = _CHECKPOINT_CHANGES  # total_changes counts from 0 on a new connection
        else:
            self._next_file_check = float("inf")  # no file to check: no hand-off to the thread for it
        return db

    def _check_file(self) -> None:
        """Move to the file now at the path if it is not the one open (deleted or replaced)."""
        if self.path == ":memory:" or self._connection is None:
            return
        self._next_file_check = time.monotonic() + _FILE_CHECK_EVERY
        now_at_path = _identity(self.path)
        if now_at_path is not None and now_at_path == self._identity.get(""):
            return
        self._reopen(deleted=now_at_path is None)

    def _reopen(self, *, deleted: bool) -> None:
        """Open the file now at the path and carry over what the old file holds.

        The old file stays readable through the open connection, so its outbox (waiting, in
        flight, dead and delivered keys), live claims, replies, streams and nonces are copied
        into the new one, ids kept. The old file's -wal and -shm still sit next to the path: a
        new file must never be paired with them, so they are removed first, and the new file
        runs with a rollback journal until the worker restarts (SQLite removes a WAL file by
        name when its last connection closes, and the old file's last connection would remove
        the new file's). Worker processes on the same file do this under a lock on the
        directory, so they end up on one new file.
        """
        old = self._connection
        assert old is not None
        what = "deleted" if deleted else "replaced by another file"
        if self._checkpointer is not None:  # its connection is on the old file, and must close with it
            self._checkpointer.stop()
            self._checkpointer = None
        with _directory_lock(self.path):
            for suffix in ("-wal", "-shm"):
                mine = self._identity.get(suffix)
                if mine is not None and _identity(self.path + suffix) == mine:
                    try:
                        os.unlink(self.path + suffix)
                    except FileNotFoundError:
                        pass
            self._reopened = True
            new = self._open(wal=False)
            try:
                carried = _carry_over(old, new, self.clock())
            except BaseException:
                new.close()
                raise
        self._connection = new
        try:
            old.close()
        except sqlite3.Error:  # pragma: no cover - the old file is unreachable anyway
            pass
        reason = (
            f"the SQLite file {self.path} was {what} while in use; the store moved to the file "
            f"now at that path and carried over {carried['outbox']} waiting outbox item(s)"
        )
        self._alarm = (time.monotonic() + self.reopen_alarm, reason)
        _LOG.error(json.dumps({
            "event": "store_file_" + ("deleted" if deleted else "replaced"),
            "store": "sqlite",
            "path": self.path,
            "detail": reason + "; it runs with a rollback journal until the workers restart",
            "carried_over": carried,
        }, ensure_ascii=False))

    def _purge(self, db: sqlite3.Connection, now: float) -> bool:
        """Delete up to _PURGE_ROWS expired rows per table; True if a table may have more."""
        more = False
        with _transaction(db):  # (the batch's, when one is open)
            for table, key in (("nonces", "key"), ("claims", "key"), ("streams", "stream_id")):
                more |= db.execute(
                    f"DELETE FROM {table} WHERE {key} IN "
                    f"(SELECT {key} FROM {table} WHERE expires_at <= ? LIMIT {_PURGE_ROWS})",
                    (now,),
                ).rowcount == _PURGE_ROWS
            more |= db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE acked_at IS NOT NULL "
                f"AND acked_at <= ? LIMIT {_PURGE_ROWS})",
                (now - self.outbox_key_ttl,),
            ).rowcount == _PURGE_ROWS
        return more

    # -- replay guard and dedup ---------------------------------------------------------------

    async def _record_nonce(self, key: str, fingerprint: bytes, ttl: float) -> bytes | None:
        def work(db: sqlite3.Connection, now: float) -> bytes | None:
            # One statement: insert, or take over a row whose ttl has run out; no row changed
            # means a live one is there, read in the same transaction (the batch's).
            inserted = db.execute(
                "INSERT INTO nonces (key, expires_at, fingerprint) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, "
                "fingerprint = excluded.fingerprint WHERE nonces.expires_at <= ?",
                (key, now + ttl, fingerprint, now),
            )
            if inserted.rowcount == 1:
                return None
            row = db.execute("SELECT fingerprint FROM nonces WHERE key = ?", (key,)).fetchone()
            return b"" if row is None or row[0] is None else bytes(row[0])

        return await self._run_grouped(work, atomic=True)

    async def _claim(self, key: str, ttl: float) -> ClaimResult:
        def work(db: sqlite3.Connection, now: float) -> ClaimResult:
            # In the batch's write transaction: the upsert and the read see the same row. A fresh
            # key costs one statement; the read only follows an upsert that changed nothing.
            taken = db.execute(
                "INSERT INTO claims (key, reply, content_type, expires_at) "
                "VALUES (?, NULL, NULL, ?) "
                "ON CONFLICT (key) DO UPDATE SET reply = NULL, content_type = NULL, "
                "expires_at = excluded.expires_at WHERE claims.expires_at <= ?",
                (key, now + ttl, now),
            )
            if taken.rowcount == 1:
                return CLAIMED
            seen = _claim_state(db, key, now)  # the row is live, or the upsert took it
            return seen if seen is not None else IN_PROGRESS

        return await self._run_grouped(work, atomic=True)

    async def _complete(self, key: str, reply: CachedReply, ttl: float) -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "INSERT OR REPLACE INTO claims (key, reply, content_type, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (key, reply.body, reply.content_type, now + ttl),
            )

        await self._run_grouped(work, atomic=True)

    async def _release(self, key: str) -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute("DELETE FROM claims WHERE key = ? AND reply IS NULL", (key,))

        await self._run_grouped(work, atomic=True)

    async def _peek_claim(self, key: str) -> ClaimResult | None:
        return await self._run_grouped(lambda db, now: _claim_state(db, key, now), atomic=True)

    # -- robot streams ------------------------------------------------------------------------

    async def _put_stream(self, stream_id: str, encoded: str, ttl: float) -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "INSERT OR REPLACE INTO streams (stream_id, state, expires_at) VALUES (?, ?, ?)",
                (stream_id, encoded, now + ttl),
            )

        await self._run_grouped(work, atomic=True)

    async def _get_stream(self, stream_id: str) -> str | None:
        return await self._run_grouped(lambda db, now: _stream_state(db, stream_id, now), atomic=True)

    async def _modify_stream(
        self, stream_id: str, change: Callable[[StreamState], StreamState], ttl: float
    ) -> StreamState | None:
        def work(db: sqlite3.Connection, now: float) -> StreamState | None:
            # In the batch's write transaction, so the read and the write are one step.
            encoded = _stream_state(db, stream_id, now)
            if encoded is None:
                return None
            changed = _encode_stream(change(_decode_stream(encoded)))
            db.execute(
                "UPDATE streams SET state = ?, expires_at = ? WHERE stream_id = ?",
                (changed, now + ttl, stream_id),
            )
            return _decode_stream(changed)

        return await self._run_grouped(work, atomic=True)  # the write comes last

    # -- outbox -------------------------------------------------------------------------------

    async def _enqueue(self, channel: str, payload: bytes, idempotency_key: str) -> str:
        def work(db: sqlite3.Connection, now: float) -> str:
            with _transaction(db, durable=True):
                db.execute(
                    "INSERT INTO outbox (channel, idempotency_key, payload, enqueued_at, visible_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, idempotency_key) DO NOTHING",
                    (channel, idempotency_key, payload, now, now),
                )
                row = db.execute(
                    "SELECT id FROM outbox WHERE channel = ? AND idempotency_key = ?",
                    (channel, idempotency_key),
                ).fetchone()
                return str(row[0])

        return await self._run(work)

    async def _claim_batch(
        self, consumer: str, count: int, visibility_timeout: float
    ) -> list[OutboxItem]:
        def work(db: sqlite3.Connection, now: float) -> list[OutboxItem]:
            with _transaction(db, durable=True):
                rows = db.execute(
                    "SELECT id, channel, payload, idempotency_key, attempts, enqueued_at "
                    "FROM outbox WHERE acked_at IS NULL AND dead_at IS NULL AND visible_at <= ? "
                    "ORDER BY id LIMIT ?",
                    (now, count),
                ).fetchall()
                db.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, visible_at = ?, consumer = ? "
                    "WHERE id = ?",
                    [(now + visibility_timeout, consumer, row[0]) for row in rows],
                )
            return [
                OutboxItem(
                    id=str(id),
                    channel=str(channel),
                    payload=bytes(payload),
                    idempotency_key=str(key),
                    attempts=int(attempts) + 1,
                    enqueued_at=float(enqueued_at),
                )
                for id, channel, payload, key, attempts, enqueued_at in rows
            ]

        return await self._run(work)

    async def _ack(self, id: str) -> None:
        if not _is_row_id(id):
            return

        def work(db: sqlite3.Connection, now: float) -> None:
            with _transaction(db, durable=True):
                db.execute(
                    "UPDATE outbox SET acked_at = ?, payload = NULL, consumer = NULL "
                    "WHERE id = ? AND acked_at IS NULL AND dead_at IS NULL",
                    (now, int(id)),
                )

        await self._run(work)

    async def _nack(self, id: str, retry_at: float) -> None:
        if not _is_row_id(id):
            return

        def work(db: sqlite3.Connection, now: float) -> None:
            with _transaction(db, durable=True):
                db.execute(
                    "UPDATE outbox SET visible_at = ?, consumer = NULL "
                    "WHERE id = ? AND acked_at IS NULL AND dead_at IS NULL",
                    (retry_at, int(id)),
                )

        await self._run(work)

    async def _depth(self) -> int:
        def work(db: sqlite3.Connection, now: float) -> int:
            row = db.execute(
                "SELECT count(*) FROM outbox WHERE acked_at IS NULL AND dead_at IS NULL"
            ).fetchone()
            return int(row[0])

        return await self._run(work)

    # -- leases -------------------------------------------------------------------------------

    async def _acquire_lease(self, name: str, holder: str, ttl: float, replacing: str | None) -> bool:
        def work(db: sqlite3.Connection, now: float) -> bool:
            # One statement, so atomic: insert, or take a row that is expired, ours or handed over.
            taken = db.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE leases.expires_at <= ? OR leases.holder = excluded.holder OR leases.holder = ?",
                (name, holder, now + ttl, now, replacing),
            )
            return taken.rowcount == 1

        return await self._run_grouped(work, atomic=True)

    async def _renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        def work(db: sqlite3.Connection, now: float) -> bool:
            renewed = db.execute(
                "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?",
                (now + ttl, name, holder, now),
            )
            return renewed.rowcount == 1

        return await self._run_grouped(work, atomic=True)

    async def _release_lease(self, name: str, holder: str) -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

        await self._run_grouped(work, atomic=True)

    async def _lease_owner(self, name: str) -> str | None:
        def work(db: sqlite3.Connection, now: float) -> str | None:
            row = db.execute("SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, now)).fetchone()
            return None if row is None else str(row[0])

        return await self._run_grouped(work, atomic=True)

    # -- named values -------------------------------------------------------------------------

    async def _put_value(self, name: str, value: bytes, ttl: float) -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute("INSERT INTO named_values (name, value, expires_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                       (name, value, now + ttl))

        await self._run_grouped(work, atomic=True)

    async def _get_value(self, name: str) -> bytes | None:
        def work(db: sqlite3.Connection, now: float) -> bytes | None:
            row = db.execute("SELECT value FROM named_values WHERE name = ? AND expires_at > ?",
                             (name, now)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._run_grouped(work, atomic=True)

    # -- request queues -----------------------------------------------------------------------

    async def _push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute("INSERT INTO requests (queue, payload, expires_at) VALUES (?, ?, ?)", (queue, payload, now + ttl))

        await self._run_grouped(work, atomic=True)

    async def _pop_requests(self, queue: str, count: int) -> list[bytes]:
        def work(db: sqlite3.Connection, now: float) -> list[bytes]:
            db.execute("DELETE FROM requests WHERE queue = ? AND expires_at <= ?", (queue, now))
            rows = db.execute("SELECT id, payload FROM requests WHERE queue = ? ORDER BY id LIMIT ?",
                              (queue, count)).fetchall()
            db.executemany("DELETE FROM requests WHERE id = ?", [(row[0],) for row in rows])
            return [bytes(row[1]) for row in rows]

        return await self._run_grouped(work)  # several writes: a savepoint of its own

    # -- dead letters -------------------------------------------------------------------------

    async def _dead_letter(self, id: str, reason: str) -> bool:
        if not _is_row_id(id):
            return False

        def work(db: sqlite3.Connection, now: float) -> bool:
            with _transaction(db, durable=True):
                moved = db.execute(
                    "UPDATE outbox SET dead_at = ?, dead_reason = ?, consumer = NULL "
                    "WHERE id = ? AND acked_at IS NULL AND dead_at IS NULL",
                    (now, reason, int(id)),
                )
            return moved.rowcount == 1

        return await self._run(work)

    async def _list_dead(self, channel: str | None, limit: int) -> list[DeadLetter]:
        def work(db: sqlite3.Connection, now: float) -> list[DeadLetter]:
            where = "dead_at IS NOT NULL" + ("" if channel is None else " AND channel = ?")
            rows = db.execute(
                "SELECT id, channel, payload, idempotency_key, attempts, enqueued_at, dead_at, "
                f"dead_reason FROM outbox WHERE {where} ORDER BY dead_at, id LIMIT ?",
                (limit,) if channel is None else (channel, limit),
            ).fetchall()
            return [
                DeadLetter(str(id), str(ch), bytes(payload), str(key), int(attempts),
                           float(enqueued_at), float(dead_at), str(reason))
                for id, ch, payload, key, attempts, enqueued_at, dead_at, reason in rows
            ]

        return await self._run(work)

    async def _retry_dead(self, id: str) -> str | None:
        if not _is_row_id(id):
            return None

        def work(db: sqlite3.Connection, now: float) -> str | None:
            with _transaction(db, durable=True):
                back = db.execute(
                    "UPDATE outbox SET dead_at = NULL, dead_reason = NULL, attempts = 0, "
                    "visible_at = ? WHERE id = ? AND dead_at IS NOT NULL",
                    (now, int(id)),
                )
            return id if back.rowcount == 1 else None

        return await self._run(work)

    async def _drop_dead(self, id: str) -> bool:
        if not _is_row_id(id):
            return False

        def work(db: sqlite3.Connection, now: float) -> bool:
            # As if delivered: the row keeps only its key, for outbox_key_ttl.
            with _transaction(db, durable=True):
                dropped = db.execute(
                    "UPDATE outbox SET acked_at = ?, payload = NULL, dead_at = NULL, "
                    "dead_reason = NULL WHERE id = ? AND dead_at IS NOT NULL",
                    (now, int(id)),
                )
            return dropped.rowcount == 1

        return await self._run(work)

    async def _dead_count(self) -> int:
        def work(db: sqlite3.Connection, now: float) -> int:
            return int(db.execute("SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL").fetchone()[0])

        return await self._run(work)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _start(self) -> list[str]:
        await self._run(lambda db, now: None)  # opens the file, so a bad path fails now
        return []

    async def _health(self) -> StoreHealth:
        def work(db: sqlite3.Connection, now: float) -> StoreHealth:
            self._check_file()
            db = self._connect()  # the new file's connection when the check moved to it
            # A committed write, not SELECT 1: a full disk or a read-only file must show here.
            with _transaction(db):
                db.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?)", (now,))
            if self._alarm is not None:
                until, reason = self._alarm
                if time.monotonic() < until:
                    return StoreHealth(False, reason)
                self._alarm = None
            return StoreHealth(True)

        return await self._run(work)

    async def _close(self) -> None:
        def close_connection() -> None:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            with self._lock:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, close_connection)
        finally:
            self._executor.shutdown(wait=False)


# SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between tries for the write lock;
# with several worker processes committing hundreds of times a second those sleeps made the
# tail latency (p99 ~0.5 s). BEGIN IMMEDIATE is retried here instead, every 0.2-1 ms, within
# the same budget; other statements keep a short handler as a backstop (in WAL mode a
# writer that holds the lock, and any reader, do not wait).
_STATEMENT_BUSY_TIMEOUT = 0.05


class _Connection(sqlite3.Connection):
    """A connection that knows how long it may wait for the write lock."""

    lock_budget: float = 5.0


def _open_file(path: str, *, wal: bool, budget: float) -> sqlite3.Connection:
    """A connection to ``path`` in the journal mode asked for, with the schema in place.

    Processes opening one new file at once take turns at it (the switch to WAL, the tables),
    and SQLite answers some of those turns "database is locked" at once, without waiting, where
    waiting could deadlock (a shared lock wanting to write while another writer waits for it to
    go): the whole opening is tried again, within the budget a write has.
    """
    deadline = time.monotonic() + budget
    while True:
        db = sqlite3.connect(path, timeout=budget, isolation_level=None, check_same_thread=False,
                             factory=_Connection)
        db.lock_budget = budget
        try:
            db.execute(f"PRAGMA journal_mode = {'WAL' if wal else 'DELETE'}")
            db.execute("PRAGMA synchronous = NORMAL")
            if wal and path != ":memory:":
                db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
            db.executescript(_SCHEMA)
            _add_columns(db)
            db.executescript(_INDEXES)
            db.execute(f"PRAGMA busy_timeout = {int(_STATEMENT_BUSY_TIMEOUT * 1000)}")
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
        except BaseException:
            db.close()
            raise
        time.sleep(0.001 + random.random() * 0.004)


def _begin_immediate(db: sqlite3.Connection) -> None:
    budget: float = getattr(db, "lock_budget", 5.0)
    deadline = time.monotonic() + budget
    db.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.0002 + random.random() * 0.0008)
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(_STATEMENT_BUSY_TIMEOUT * 1000)}")


class _Checkpointer:
    """Checkpoints the WAL when woken (see ``_CHECKPOINT_CHANGES``), on a thread and connection of its own.

    Only when woken, not on a timer: each time this thread takes the GIL, a busy loop thread
    gives it up and waits until this one is scheduled, which on a loaded machine took tens of
    ms; a checkpoint every 0.25 s with nothing to copy made a p99 of 25-49 ms when the server
    only answered retries (2.2 ms without it).

    PASSIVE: it copies what no reader still needs and waits for nobody, so commits (in this and
    the other processes, whose own checkpointers do the same) go on meanwhile; if another
    checkpoint is running, this one is skipped. A checkpoint with nothing to copy syncs nothing.

    A passive checkpoint alone lets the WAL grow without end under steady writes: SQLite starts
    writing the WAL from its beginning again only when a writer finds every frame copied, and
    frames committed while a checkpoint runs always remain (300 MB in an 8 s benchmark). So once
    the WAL is past ``_WAL_RESTART_FRAMES`` a RESTART follows the passive one: it takes the write
    lock (if free: it does not wait), copies the few frames committed meanwhile and lets the next
    writer start the WAL over. Writers wait only for that remainder.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._stopped = threading.Event()
        self._wanted = threading.Event()
        self._lock = threading.Lock()  # held by a checkpoint, so stop() returns with the file closed
        self._connection: sqlite3.Connection | None = None
        threading.Thread(target=self._run, name="wxcallback-sqlite-checkpoint", daemon=True).start()

    def wake(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            with self._lock:
                if self._stopped.is_set():
                    return
                try:
                    if self._connection is None:
                        self._connection = sqlite3.connect(self._path, timeout=0, isolation_level=None,
                                                           check_same_thread=False)
                    _, frames, _ = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > _WAL_RESTART_FRAMES:
                        self._connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                except sqlite3.Error as exc:  # the store's own statements report a bad file
                    _LOG.debug("checkpoint of %s failed: %s", self._path, exc)
            if self._stopped.wait(_CHECKPOINT_EVERY):
                return

    def stop(self) -> None:
        self._stopped.set()
        self._wanted.set()
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


# A batch's operation: (work, the store clock when it was made, its future, atomic).
_Pending = tuple[Callable[[sqlite3.Connection, float], Any], float, "asyncio.Future[Any]", bool]
# (future, value, error)
_Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]

# How long (seconds) a loop waits before trying a batch again when the write lock is taken.
_BUSY_RETRY = 0.001
# How long (seconds) a batch may keep waiting for the operations of requests still being read.
_HOLD = 0.001


def _try_begin(db: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` if the write lock is free right now (the connection has no busy handler)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False
        raise
    return True


def _commit_batch(
    db: sqlite3.Connection, batch: list[_Pending], first: Callable[[], object] | None = None
) -> list[_Outcome]:
    """Run a batch in the transaction just begun, each operation failing alone, and commit it.

    ``first`` runs before the operations (the purge). Raises (after rolling back) if the batch
    as a whole fails: every operation in it failed.
    """
    outcomes: list[_Outcome] = []
    try:
        if first is not None:
            first()
        for work, at, future, atomic in batch:
            if not atomic:
                db.execute("SAVEPOINT operation")
            try:
                value = work(db, at)
            except Exception as exc:
                if not db.in_transaction:  # SQLite rolled it all back (a full disk, an I/O error)
                    raise
                if not atomic:
                    db.execute("ROLLBACK TO operation")
                    db.execute("RELEASE operation")
                outcomes.append((future, None, exc))
            else:
                if not atomic:
                    db.execute("RELEASE operation")
                outcomes.append((future, value, None))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return outcomes


def _settle(outcomes: list[_Outcome]) -> None:
    for future, value, error in outcomes:
        if future.done():  # the caller was cancelled
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


@contextmanager
def _transaction(db: sqlite3.Connection, *, durable: bool = False) -> Iterator[None]:
    """One write transaction, taking the write lock at BEGIN so check-then-set is atomic.

    Inside a transaction already open (and not durable) nothing more is needed.
    """
    if db.in_transaction and not durable:
        yield
        return
    if durable:
        db.execute("PRAGMA synchronous = FULL")
    try:
        _begin_immediate(db)
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        if durable:
            db.execute("PRAGMA synchronous = NORMAL")


def _claim_state(db: sqlite3.Connection, key: str, now: float) -> ClaimResult | None:
    row = db.execute(
        "SELECT reply, content_type FROM claims WHERE key = ? AND expires_at > ?", (key, now)
    ).fetchone()
    if row is None:
        return None
    if row[0] is None:
        return IN_PROGRESS
    return ClaimResult(ClaimState.DONE, CachedReply(bytes(row[0]), str(row[1])))


def _stream_state(db: sqlite3.Connection, stream_id: str, now: float) -> str | None:
    row = db.execute(
        "SELECT state FROM streams WHERE stream_id = ? AND expires_at > ?", (stream_id, now)
    ).fetchone()
    return None if row is None else str(row[0])


def _identity(path: str) -> tuple[int, int] | None:
    try:
        seen = os.stat(path)
    except FileNotFoundError:
        return None
    return seen.st_dev, seen.st_ino


@contextmanager
def _directory_lock(path: str) -> Iterator[None]:
    """An exclusive lock, across processes, on the directory holding ``path``."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# Columns added since the first files were made: per table, (column, type) pairs added together.
_ADDED_COLUMNS = (
    ("outbox", (("dead_at", "REAL"), ("dead_reason", "TEXT"))),  # dead letters
    ("nonces", (("fingerprint", "BLOB"),)),  # record_nonce
)


def _add_columns(db: sqlite3.Connection) -> None:
    """Give a file made before them the columns added since (once, whoever comes first)."""
    def missing() -> list[tuple[str, str, str]]:
        absent = []
        for table, columns in _ADDED_COLUMNS:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            absent += [(table, name, kind) for name, kind in columns if name not in present]
        return absent

    if not missing():
        return
    with _transaction(db):
        for table, name, kind in missing():
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _carry_over(old: sqlite3.Connection, new: sqlite3.Connection, now: float) -> dict[str, int]:
    """Copy the old file's live state into the new one (which may hold state of its own)."""
    outbox = old.execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id").fetchall()
    claims = old.execute(
        "SELECT key, reply, content_type, expires_at FROM claims WHERE expires_at > ?", (now,)
    ).fetchall()
    streams = old.execute(
        "SELECT stream_id, state, expires_at FROM streams WHERE expires_at > ?", (now,)
    ).fetchall()
    nonces = old.execute("SELECT key, expires_at, fingerprint FROM nonces WHERE expires_at > ?", (now,)).fetchall()
    with _transaction(new, durable=True):
        # a nonce both files hold keeps the new file's first use
        new.executemany(
            "INSERT INTO nonces (key, expires_at, fingerprint) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
            "SET expires_at = max(nonces.expires_at, excluded.expires_at)",
            nonces,
        )
        new.executemany("INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)", claims)
        new.executemany("INSERT OR IGNORE INTO streams VALUES (?, ?, ?)", streams)
        placeholders = ", ".join("?" * len(_OUTBOX_COLUMNS.split(", ")))
        for row in outbox:
            kept = new.execute(
                f"INSERT OR IGNORE INTO outbox ({_OUTBOX_COLUMNS}) VALUES ({placeholders})", row
            ).rowcount
            if not kept and new.execute(
                "SELECT 1 FROM outbox WHERE channel = ? AND idempotency_key = ?", (row[1], row[2])
            ).fetchone() is None:
                # Its id is taken by another item in the new file: keep the item under a new id.
                new.execute(
                    f"INSERT INTO outbox ({_OUTBOX_COLUMNS.partition(', ')[2]}) "
                    f"VALUES ({placeholders.partition(', ')[2]})",
                    row[1:],
                )
            elif row[8] is not None:  # delivered in the old file since the new one got it
                new.execute(
                    "UPDATE outbox SET acked_at = ?, payload = NULL WHERE id = ? AND channel = ? "
                    "AND idempotency_key = ? AND acked_at IS NULL",
                    (row[8], row[0], row[1], row[2]),
                )
        highest = max((row[0] for row in outbox), default=0)
        if new.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'outbox'").fetchone() is None:
            new.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', 0)")
        new.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'outbox'",
            (highest + _ID_GAP,),
        )
    waiting = sum(1 for row in outbox if row[8] is None)
    return {"outbox": waiting, "claims": len(claims), "streams": len(streams), "nonces": len(nonces)}


def _is_row_id(id: str) -> bool:
    return id.isascii() and id.isdigit() and len(id) < 19
