"""In-process store: plain dicts with expiry, for tests and single-process development.

Every primitive runs without awaiting, so on one event loop each is atomic by construction.
Nothing survives the process, and other processes see nothing: use SQLite or Redis for that.

The store is bounded by entries and by bytes (keys and values, plus a flat per-entry cost).
When a new entry would pass a bound, expired entries go first, then the entries that are only
a cache (nonces, cached replies, delivered outbox keys), oldest first (for entries of one ttl:
nearest their expiry first), down to 90% of the bounds; outbox items, dead letters, in-progress
claims and robot streams are never evicted: when they alone fill the store, new work is refused
with :class:`StoreFullError`.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .base import (
    CLAIMED,
    DEFAULT_DEDUP_TTL,
    DEFAULT_OUTBOX_KEY_TTL,
    IN_PROGRESS,
    CachedReply,
    ClaimResult,
    ClaimState,
    Clock,
    DeadLetter,
    OutboxItem,
    Store,
    StoreError,
    StoreFullError,
    StoreHealth,
    StreamState,
    _check_key,
    _check_reply,
    _check_seconds,
    _decode_stream,
    _encode_stream,
)

__all__ = ["MemoryStore"]


# Expired entries are swept at most this often (seconds); reads ignore them in between.
_PURGE_EVERY = 60.0
# What one entry costs beyond its keys and values: dict slot, tuple, float and str headers.
_ENTRY_BYTES = 200
DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024

_LOG = logging.getLogger("wxcallback.store")
# A cached reply as held here: (body, content_type), a plain tuple of atoms (None while in
# progress). The garbage collector stops tracking such tuples, so a store holding 200,000
# replies adds no work to each full collection; as CachedReply objects they were 400,000
# tracked objects, and a full collection paused the worker for ~75 ms (a p99 spike under load).
# CachedReply is a NamedTuple now, but the collector only untracks exact tuples: it stays this.
_Held = tuple[bytes, str] | None
# An entry that may be evicted: (expiry, its table's rank, key, table, bytes)
_Candidate = tuple[float, int, Any, dict[Any, Any], int]


@dataclass
class _Delivery:
    channel: str
    payload: bytes
    idempotency_key: str
    enqueued_at: float
    visible_at: float  # claimable from this time: after a claim's visibility timeout or a nack
    attempts: int = 0

    @property
    def size(self) -> int:
        return _ENTRY_BYTES + len(self.channel) + len(self.payload) + len(self.idempotency_key)


class MemoryStore(Store):
    """Shared state kept in this process's memory, at most ``max_entries`` / ``max_bytes`` of it."""

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        outbox_key_ttl: float = DEFAULT_OUTBOX_KEY_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        super().__init__(clock=clock)
        for name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
                raise StoreError(f"{name} must be a positive int, not {bound!r}")
        self.outbox_key_ttl = outbox_key_ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bytes = 0  # the size of everything held, as _ENTRY_BYTES + keys + values
        self._nonces: dict[str, tuple[float, bytes]] = {}  # expiry, fingerprint
        self._claims: dict[str, tuple[_Held, float]] = {}
        self._streams: dict[str, tuple[str, float]] = {}
        self._outbox: dict[int, _Delivery] = {}
        self._dead: dict[int, tuple[_Delivery, float, str]] = {}  # delivery, dead_at, reason
        self._outbox_keys: dict[tuple[str, str], tuple[int, float]] = {}
        self._next_id = 1
        self._leases: dict[str, tuple[str, float]] = {}
        self._values: dict[str, tuple[bytes, float]] = {}
        self._requests: dict[str, list[tuple[bytes, float]]] = {}
        self._last_purge = clock()

    def __repr__(self) -> str:
        return "MemoryStore()"

    def _now(self) -> float:
        now = self.clock()
        if now - self._last_purge >= _PURGE_EVERY:
            self._drop_expired(now)
        return now

    # -- bounds -------------------------------------------------------------------------------

    def _entries(self) -> int:
        return (len(self._nonces) + len(self._claims) + len(self._streams) + len(self._outbox)
                + len(self._dead) + len(self._outbox_keys))

    def _make_room(self, size: int, entries: int = 1) -> None:
        """Make room for ``entries`` new entries of ``size`` bytes, or raise StoreFullError."""
        if self._entries() + entries <= self.max_entries and self._bytes + size <= self.max_bytes:
            return
        now = self.clock()
        self._drop_expired(now)
        room_entries = int(self.max_entries * 0.9) - entries
        room_bytes = int(self.max_bytes * 0.9) - size
        if self._entries() > room_entries or self._bytes > room_bytes:
            self._evict(room_entries, room_bytes)
        if self._entries() + entries > self.max_entries or self._bytes + size > self.max_bytes:
            raise StoreFullError(
                f"the memory store is full ({self._entries()} entries, {self._bytes} bytes; bounds "
                f"{self.max_entries} entries, {self.max_bytes} bytes) of outbox items, dead letters, "
                "in-progress claims and streams, which it never evicts: deliver or drop them, "
                "raise max_entries / max_bytes, or use the sqlite or redis store"
            )

    def _evict(self, room_entries: int, room_bytes: int) -> None:
        """Drop cache entries, oldest first, until within the room given.

        A table holds its entries in the order they were last written (a write moves an entry
        last), which for one ttl is the order they expire in: the three caches are merged on
        those orders' expiry times, and only the entries dropped are visited (and the
        in-progress claims among them). A sort of every entry stalled the loop for 160 ms each
        time a full store made room (150,000 cached replies, every ~15,000 new messages under
        steady load: a p99 of its own).
        """
        nonces: Iterator[_Candidate] = ((expires, 0, key, self._nonces, _ENTRY_BYTES + len(key) + len(fingerprint))
                                        for key, (expires, fingerprint) in self._nonces.items())
        replies: Iterator[_Candidate] = ((expires, 1, key, self._claims, _claim_size(key, reply))
                                         for key, (reply, expires) in self._claims.items() if reply is not None)
        delivered: Iterator[_Candidate] = ((expires, 2, pair, self._outbox_keys, _key_size(pair))
                                           for pair, (_, expires) in self._outbox_keys.items()
                                           if expires != math.inf)
        excess_entries = self._entries() - room_entries
        excess_bytes = self._bytes - room_bytes
        victims: list[tuple[dict[Any, Any], Any, int]] = []
        # (expires, table's rank, key, ...): two entries never compare past the key
        for _, _, key, table, size in heapq.merge(nonces, replies, delivered):
            if excess_entries <= 0 and excess_bytes <= 0:
                break
            victims.append((table, key, size))
            excess_entries -= 1
            excess_bytes -= size
        for table, key, size in victims:  # not while the tables are being walked
            del table[key]
            self._bytes -= size
        evicted = len(victims)
        if evicted:
            _LOG.warning(json.dumps({
                "event": "store_evicted",
                "store": "memory",
                "evicted": evicted,
                "entries": self._entries(),
                "bytes": self._bytes,
                "detail": "the memory store reached its bounds and dropped the nonces and cached "
                          "replies nearest their expiry; raise max_entries / max_bytes",
            }))

    def _drop_expired(self, now: float) -> None:
        self._last_purge = now
        for key in [key for key, (expires, _) in self._nonces.items() if expires <= now]:
            self._bytes -= _ENTRY_BYTES + len(key) + len(self._nonces.pop(key)[1])
        for key in [key for key, (_, expires) in self._claims.items() if expires <= now]:
            self._bytes -= _claim_size(key, self._claims.pop(key)[0])
        for key in [key for key, (_, expires) in self._streams.items() if expires <= now]:
            self._bytes -= _stream_size(key, self._streams.pop(key)[0])
        for pair in [pair for pair, (_, expires) in self._outbox_keys.items() if expires <= now]:
            del self._outbox_keys[pair]
            self._bytes -= _key_size(pair)

    def _set_claim(self, key: str, reply: _Held, expires: float) -> None:
        size = _claim_size(key, reply)
        old = self._claims.get(key)
        if old is None:
            self._make_room(size)
        else:
            self._bytes -= _claim_size(key, old[0])
            del self._claims[key]  # written again: moved last (see _evict)
        self._claims[key] = (reply, expires)
        self._bytes += size

    def _set_stream(self, stream_id: str, encoded: str, expires: float) -> None:
        size = _stream_size(stream_id, encoded)
        old = self._streams.get(stream_id)
        if old is None:
            self._make_room(size)
        else:
            self._bytes -= _stream_size(stream_id, old[0])
        self._streams[stream_id] = (encoded, expires)
        self._bytes += size

    # -- the primitives -----------------------------------------------------------------------

    async def _record_nonce(self, key: str, fingerprint: bytes, ttl: float) -> bytes | None:
        now = self._now()
        seen = self._nonces.get(key)
        if seen is not None and seen[0] > now:
            return seen[1]
        size = _ENTRY_BYTES + len(key) + len(fingerprint)
        if seen is None:
            self._make_room(size)
        else:  # expired, not yet purged: taken over (and moved last: see _evict)
            self._bytes -= _ENTRY_BYTES + len(key) + len(seen[1])
            del self._nonces[key]
        self._bytes += size
        self._nonces[key] = (now + ttl, fingerprint)
        return None

    # claim and complete run once per new message: the server calls them without a coroutine
    # (nothing here waits), the same checks and the same work as the Store methods.

    def claim_now(self, key: str, ttl: float = DEFAULT_DEDUP_TTL) -> ClaimResult:
        """:meth:`Store.claim`, done before it returns."""
        _check_key(key)
        _check_seconds(ttl, "ttl")
        self._check_open()
        return self._claim_here(key, ttl)

    def complete_now(self, key: str, reply: bytes, content_type: str, ttl: float = DEFAULT_DEDUP_TTL) -> None:
        """:meth:`Store.complete`, done before it returns."""
        _check_key(key)
        body = _check_reply(reply, content_type)
        _check_seconds(ttl, "ttl")
        self._check_open()
        self._set_claim(key, (body, content_type), self._now() + ttl)

    def _claim_here(self, key: str, ttl: float) -> ClaimResult:
        now = self._now()
        seen = self._peek_here(key, now)
        if seen is not None:
            return seen
        self._set_claim(key, None, now + ttl)
        return CLAIMED

    def _peek_here(self, key: str, now: float) -> ClaimResult | None:
        entry = self._claims.get(key)
        if entry is None or entry[1] <= now:
            return None
        reply = entry[0]
        return IN_PROGRESS if reply is None else ClaimResult(ClaimState.DONE, CachedReply(*reply))

    async def _claim(self, key: str, ttl: float) -> ClaimResult:
        return self._claim_here(key, ttl)

    async def _complete(self, key: str, reply: CachedReply, ttl: float) -> None:
        self._set_claim(key, (reply.body, reply.content_type), self._now() + ttl)

    async def _release(self, key: str) -> None:
        entry = self._claims.get(key)
        if entry is not None and entry[0] is None:
            del self._claims[key]
            self._bytes -= _claim_size(key, None)

    async def _peek_claim(self, key: str) -> ClaimResult | None:
        return self._peek_here(key, self._now())

    async def _put_stream(self, stream_id: str, encoded: str, ttl: float) -> None:
        self._set_stream(stream_id, encoded, self._now() + ttl)

    async def _get_stream(self, stream_id: str) -> str | None:
        entry = self._streams.get(stream_id)
        if entry is None or entry[1] <= self._now():
            return None
        return entry[0]

    async def _modify_stream(
        self, stream_id: str, change: Callable[[StreamState], StreamState], ttl: float
    ) -> StreamState | None:
        encoded = await self._get_stream(stream_id)
        if encoded is None:
            return None
        changed = _encode_stream(change(_decode_stream(encoded)))
        self._set_stream(stream_id, changed, self._now() + ttl)
        return _decode_stream(changed)

    async def _enqueue(self, channel: str, payload: bytes, idempotency_key: str) -> str:
        now = self._now()
        known = self._outbox_keys.get((channel, idempotency_key))
        if known is not None and known[1] > now:
            return str(known[0])
        pair = (channel, idempotency_key)
        delivery = _Delivery(channel, payload, idempotency_key, now, visible_at=now)
        if known is None:
            self._make_room(delivery.size + _key_size(pair), entries=2)
            self._bytes += _key_size(pair)
        else:
            self._make_room(delivery.size)
        id = self._next_id
        self._next_id += 1
        self._outbox[id] = delivery
        self._bytes += delivery.size
        # The key is kept while the item waits, then outbox_key_ttl more seconds once delivered.
        self._outbox_keys[pair] = (id, math.inf)
        return str(id)

    async def _claim_batch(
        self, consumer: str, count: int, visibility_timeout: float
    ) -> list[OutboxItem]:
        now = self._now()
        batch: list[OutboxItem] = []
        for id, delivery in self._outbox.items():  # dicts keep insertion order: oldest first
            if len(batch) == count:
                break
            if delivery.visible_at > now:
                continue
            delivery.visible_at = now + visibility_timeout
            delivery.attempts += 1
            batch.append(
                OutboxItem(
                    id=str(id),
                    channel=delivery.channel,
                    payload=delivery.payload,
                    idempotency_key=delivery.idempotency_key,
                    attempts=delivery.attempts,
                    enqueued_at=delivery.enqueued_at,
                )
            )
        return batch

    async def _ack(self, id: str) -> None:
        delivery = self._outbox.pop(_row_id(id), None)
        if delivery is not None:
            self._bytes -= delivery.size
            key = (delivery.channel, delivery.idempotency_key)
            self._outbox_keys.pop(key, None)  # a cache from now on: moved last (see _evict)
            self._outbox_keys[key] = (_row_id(id), self._now() + self.outbox_key_ttl)

    async def _nack(self, id: str, retry_at: float) -> None:
        delivery = self._outbox.get(_row_id(id))
        if delivery is not None:
            delivery.visible_at = retry_at

    async def _depth(self) -> int:
        return len(self._outbox)

    async def _acquire_lease(self, name: str, holder: str, ttl: float, replacing: str | None) -> bool:
        owner = await self._lease_owner(name)
        if owner is not None and owner != holder and owner != replacing:
            return False
        self._leases[name] = (holder, self._now() + ttl)
        return True

    async def _renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        if await self._lease_owner(name) != holder:
            return False
        self._leases[name] = (holder, self._now() + ttl)
        return True

    async def _release_lease(self, name: str, holder: str) -> None:
        if await self._lease_owner(name) == holder:
            del self._leases[name]

    async def _lease_owner(self, name: str) -> str | None:
        entry = self._leases.get(name)
        if entry is None or entry[1] <= self._now():
            return None
        return entry[0]

    async def _put_value(self, name: str, value: bytes, ttl: float) -> None:
        self._values[name] = (value, self._now() + ttl)  # one per name: replaced, not accumulated

    async def _get_value(self, name: str) -> bytes | None:
        entry = self._values.get(name)
        if entry is None or entry[1] <= self._now():
            return None
        return entry[0]

    async def _push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        self._requests.setdefault(queue, []).append((payload, self._now() + ttl))

    async def _pop_requests(self, queue: str, count: int) -> list[bytes]:
        now = self._now()
        waiting = [entry for entry in self._requests.pop(queue, []) if entry[1] > now]
        taken, left = waiting[:count], waiting[count:]
        if left:
            self._requests[queue] = left
        return [payload for payload, _ in taken]

    async def _dead_letter(self, id: str, reason: str) -> bool:
        delivery = self._outbox.pop(_row_id(id), None)
        if delivery is None:
            return False
        self._dead[_row_id(id)] = (delivery, self._now(), reason)
        self._bytes += len(reason)
        return True

    async def _list_dead(self, channel: str | None, limit: int) -> list[DeadLetter]:
        found = []
        for id, (delivery, dead_at, reason) in self._dead.items():  # in order of death
            if channel is not None and delivery.channel != channel:
                continue
            found.append(DeadLetter(str(id), delivery.channel, delivery.payload,
                                    delivery.idempotency_key, delivery.attempts,
                                    delivery.enqueued_at, dead_at, reason))
            if len(found) == limit:
                break
        return found

    async def _retry_dead(self, id: str) -> str | None:
        dead = self._dead.pop(_row_id(id), None)
        if dead is None:
            return None
        delivery = dead[0]
        self._bytes -= len(dead[2])
        delivery.attempts = 0
        delivery.visible_at = self._now()
        self._outbox[_row_id(id)] = delivery  # behind the items waiting now, as if enqueued again
        return id

    async def _drop_dead(self, id: str) -> bool:
        dead = self._dead.pop(_row_id(id), None)
        if dead is None:
            return False
        self._bytes -= dead[0].size + len(dead[2])
        key = (dead[0].channel, dead[0].idempotency_key)
        self._outbox_keys.pop(key, None)  # a cache from now on: moved last (see _evict)
        self._outbox_keys[key] = (_row_id(id), self._now() + self.outbox_key_ttl)
        return True

    async def _dead_count(self) -> int:
        return len(self._dead)

    async def _health(self) -> StoreHealth:
        return StoreHealth(True)

    async def _close(self) -> None:
        for table in (self._nonces, self._claims, self._streams, self._outbox, self._dead,
                      self._outbox_keys):
            table.clear()
        self._bytes = 0


def _row_id(id: str) -> int:
    return int(id) if id.isascii() and id.isdigit() else -1


def _claim_size(key: str, reply: _Held) -> int:
    if reply is None:
        return _ENTRY_BYTES + len(key)
    return _ENTRY_BYTES + len(key) + len(reply[0]) + len(reply[1])


def _stream_size(stream_id: str, encoded: str) -> int:
    return _ENTRY_BYTES + len(stream_id) + len(encoded)


def _key_size(pair: tuple[str, str]) -> int:
    return _ENTRY_BYTES + len(pair[0]) + len(pair[1])

