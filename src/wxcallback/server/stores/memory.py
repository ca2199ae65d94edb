"""In-process store: plain dicts with expiry, for tests and single-process development.

Every primitive runs without awaiting, so on one event loop each is atomic by construction.
Nothing survives the process, and other processes see nothing: use SQLite or Redis for that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .base import (
    CLAIMED,
    DEFAULT_OUTBOX_KEY_TTL,
    IN_PROGRESS,
    CachedReply,
    ClaimResult,
    ClaimState,
    Clock,
    OutboxItem,
    Store,
    StreamState,
    _decode_stream,
    _encode_stream,
)

__all__ = ["MemoryStore"]

_K = TypeVar("_K")

# Expired entries are swept at most this often (seconds); reads ignore them in between.
_PURGE_EVERY = 60.0


@dataclass
class _Delivery:
    channel: str
    payload: bytes
    idempotency_key: str
    enqueued_at: float
    visible_at: float  # claimable from this time: after a claim's visibility timeout or a nack
    attempts: int = 0


class MemoryStore(Store):
    """Shared state kept in this process's memory."""

    def __init__(
        self, *, clock: Clock = time.time, outbox_key_ttl: float = DEFAULT_OUTBOX_KEY_TTL
    ) -> None:
        super().__init__(clock=clock)
        self.outbox_key_ttl = outbox_key_ttl
        self._nonces: dict[str, float] = {}
        self._claims: dict[str, tuple[CachedReply | None, float]] = {}
        self._streams: dict[str, tuple[str, float]] = {}
        self._outbox: dict[int, _Delivery] = {}
        self._outbox_keys: dict[tuple[str, str], tuple[int, float]] = {}
        self._next_id = 1
        self._leases: dict[str, tuple[str, float]] = {}
        self._requests: dict[str, list[tuple[bytes, float]]] = {}
        self._last_purge = clock()

    def __repr__(self) -> str:
        return "MemoryStore()"

    def _now(self) -> float:
        now = self.clock()
        if now - self._last_purge >= _PURGE_EVERY:
            self._last_purge = now
            _drop_expired(self._nonces, now)
            _drop_expired(self._claims, now)
            _drop_expired(self._streams, now)
            _drop_expired(self._outbox_keys, now)
        return now

    async def _remember_nonce(self, key: str, ttl: float) -> bool:
        now = self._now()
        if self._nonces.get(key, now) > now:
            return False
        self._nonces[key] = now + ttl
        return True

    async def _claim(self, key: str, ttl: float) -> ClaimResult:
        seen = await self._peek_claim(key)
        if seen is not None:
            return seen
        self._claims[key] = (None, self._now() + ttl)
        return CLAIMED

    async def _complete(self, key: str, reply: CachedReply, ttl: float) -> None:
        self._claims[key] = (reply, self._now() + ttl)

    async def _release(self, key: str) -> None:
        entry = self._claims.get(key)
        if entry is not None and entry[0] is None:
            del self._claims[key]

    async def _peek_claim(self, key: str) -> ClaimResult | None:
        entry = self._claims.get(key)
        if entry is None or entry[1] <= self._now():
            return None
        reply = entry[0]
        return IN_PROGRESS if reply is None else ClaimResult(ClaimState.DONE, reply)

    async def _put_stream(self, stream_id: str, encoded: str, ttl: float) -> None:
        self._streams[stream_id] = (encoded, self._now() + ttl)

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
        self._streams[stream_id] = (changed, self._now() + ttl)
        return _decode_stream(changed)

    async def _enqueue(self, channel: str, payload: bytes, idempotency_key: str) -> str:
        now = self._now()
        known = self._outbox_keys.get((channel, idempotency_key))
        if known is not None and known[1] > now:
            return str(known[0])
        id = self._next_id
        self._next_id += 1
        self._outbox[id] = _Delivery(channel, payload, idempotency_key, now, visible_at=now)
        # The key is kept while the item waits, then outbox_key_ttl more seconds once delivered.
        self._outbox_keys[(channel, idempotency_key)] = (id, math.inf)
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
            key = (delivery.channel, delivery.idempotency_key)
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

    async def _push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        self._requests.setdefault(queue, []).append((payload, self._now() + ttl))

    async def _pop_requests(self, queue: str, count: int) -> list[bytes]:
        now = self._now()
        waiting = [entry for entry in self._requests.pop(queue, []) if entry[1] > now]
        taken, left = waiting[:count], waiting[count:]
        if left:
            self._requests[queue] = left
        return [payload for payload, _ in taken]

    async def _healthy(self) -> bool:
        return True

    async def _close(self) -> None:
        self._nonces.clear()
        self._claims.clear()
        self._streams.clear()


def _row_id(id: str) -> int:
    return int(id) if id.isascii() and id.isdigit() else -1


def _drop_expired(table: dict[_K, Any], now: float) -> None:
    expired = [key for key, value in table.items() if _expires(value) <= now]
    for key in expired:
        del table[key]


def _expires(entry: float | tuple[object, float]) -> float:
    return entry[1] if isinstance(entry, tuple) else entry
