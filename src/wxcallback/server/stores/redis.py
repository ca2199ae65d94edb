"""Redis store: state shared by every worker on every host behind the load balancer.

Single-key operations use Redis's own atomic commands (``SET NX PX`` for nonces); a
check-then-set over several fields runs as a Lua script, which Redis executes without
interleaving. The outbox is a Redis stream read through one consumer group: an entry handed to
a consumer stays in the group's pending list until it is acked, and a sorted set records when
each handed-out entry may be claimed again (the end of its visibility timeout, or the retry
time of a nack). Keeping that time per entry, rather than XAUTOCLAIM's idle time, lets the
consumer that takes an entry choose its timeout and keeps nacked entries out of reach until
their retry time.

Every key starts with ``prefix``, so several deployments (or test runs) can share one Redis
and clean up with ``SCAN MATCH prefix*``. Scripts touch several keys, so Redis Cluster would
need them in one hash slot: put the prefix in braces there (``prefix="{wxcallback}:"``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

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
    StoreError,
    StreamState,
    _decode_stream,
    _encode_stream,
)

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "wxcallback:"

# An unseen key becomes "in progress" (state p) with a ttl; otherwise its fields are returned.
_CLAIM = """
local seen = redis.call('HMGET', KEYS[1], 'state', 'body', 'type')
if not seen[1] then
    redis.call('HSET', KEYS[1], 'state', 'p')
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    return {'claimed'}
end
return seen
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'p' then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: outbox stream, idempotency key. ARGV: channel, payload, idempotency key, enqueued_at.
_ENQUEUE = """
local known = redis.call('GET', KEYS[2])
if known then
    return known
end
local id = redis.call('XADD', KEYS[1], '*',
    'channel', ARGV[1], 'payload', ARGV[2], 'key', ARGV[3], 'at', ARGV[4])
redis.call('SET', KEYS[2], id)
return id
"""

# KEYS: outbox stream, hidden set, attempts hash.
# ARGV: group, consumer, count, hidden until (ms since the epoch), now (ms since the epoch).
# First the entries whose lease or retry time has passed, taken over with XCLAIM; then entries
# never delivered (XREADGROUP >). Each is hidden until the caller's visibility timeout ends.
_CLAIM_BATCH = """
local count = tonumber(ARGV[3])
local batch = {}
local function take(entries)
    for _, entry in ipairs(entries) do
        if type(entry) == 'table' then
            redis.call('ZADD', KEYS[2], ARGV[4], entry[1])
            local attempts = redis.call('HINCRBY', KEYS[3], entry[1], 1)
            batch[#batch + 1] = {entry[1], entry[2], attempts}
        end
    end
end
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, count)
for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[2], id)
    take(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id))
end
if #batch < count then
    local fresh = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2],
        'COUNT', count - #batch, 'STREAMS', KEYS[1], '>')
    if fresh then
        take(fresh[1][2])
    end
end
return batch
"""

# KEYS: outbox stream, hidden set. ARGV: id, retry time (ms since the epoch).
_NACK = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
    return 0
end
return redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
"""

# Leases: one key each, the holder as its value, expiring by PX on the Redis server's clock.
# KEYS: lease. ARGV: holder, ttl (ms), the holder it may replace ("" for none).
_ACQUIRE_LEASE = """
local owner = redis.call('GET', KEYS[1])
if not owner or owner == ARGV[1] or (ARGV[3] ~= '' and owner == ARGV[3]) then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

# KEYS: lease. ARGV: holder, ttl (ms).
_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: holder.
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Request queues: a list per queue, each entry "<expiry ms>:<payload>" on the Redis server's
# clock; the list itself expires when nothing was pushed for a ttl.
# KEYS: queue. ARGV: payload, ttl (ms).
_PUSH_REQUEST = """
local now = redis.call('TIME')
local expires = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[2])
redis.call('RPUSH', KEYS[1], string.format('%d', expires) .. ':' .. ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: queue. ARGV: count.
_POP_REQUESTS = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local taken = {}
while #taken < tonumber(ARGV[1]) do
    local entry = redis.call('LPOP', KEYS[1])
    if not entry then
        break
    end
    local colon = string.find(entry, ':', 1, true)
    if tonumber(string.sub(entry, 1, colon - 1)) > ms then
        taken[#taken + 1] = string.sub(entry, colon + 1)
    end
end
return taken
"""

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


class RedisStore(Store):
    """Shared state in Redis, under keys that all start with ``prefix``.

    The store owns ``client`` and closes it in :meth:`close`. Key expiry runs on the Redis
    server's clock; ``clock`` stamps ``enqueued_at`` and times the outbox's visibility timeouts
    and retries, so the hosts sharing one Redis should keep their clocks in sync (NTP).
    """

    _backend_errors = (RedisError, OSError)

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = time.time,
        outbox_key_ttl: float = DEFAULT_OUTBOX_KEY_TTL,
        group: str = "delivery",
    ) -> None:
        super().__init__(clock=clock)
        if not isinstance(prefix, str):
            raise StoreError(f"prefix must be a str, not {type(prefix).__name__}")
        self.prefix = prefix
        self.outbox_key_ttl = outbox_key_ttl
        self.group = group
        self._redis = client
        self._outbox = f"{prefix}outbox"
        # Claimed and nacked entries, scored by when they may be claimed again (ms, on ``clock``).
        self._hidden = f"{prefix}outbox:hidden"
        self._attempts = f"{prefix}outbox:attempts"
        self._claim_script = client.register_script(_CLAIM)
        self._release_script = client.register_script(_RELEASE)
        self._enqueue_script = client.register_script(_ENQUEUE)
        self._claim_batch_script = client.register_script(_CLAIM_BATCH)
        self._nack_script = client.register_script(_NACK)
        self._acquire_lease_script = client.register_script(_ACQUIRE_LEASE)
        self._renew_lease_script = client.register_script(_RENEW_LEASE)
        self._release_lease_script = client.register_script(_RELEASE_LEASE)
        self._push_request_script = client.register_script(_PUSH_REQUEST)
        self._pop_requests_script = client.register_script(_POP_REQUESTS)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, **options: Any) -> RedisStore:
        """A store on a new client for ``url`` (``redis://host:port/db``, ``rediss://``, ``unix://``)."""
        try:
            client = aioredis.Redis.from_url(url, decode_responses=False)
        except ValueError as exc:
            raise StoreError(f"cannot use Redis URL {url!r}: {exc}") from exc
        return cls(client, prefix=prefix, **options)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    # -- replay guard and dedup ---------------------------------------------------------------

    async def _remember_nonce(self, key: str, ttl: float) -> bool:
        stored = await self._redis.set(f"{self.prefix}nonce:{key}", b"1", nx=True, px=_ms(ttl))
        return bool(stored)

    async def _claim(self, key: str, ttl: float) -> ClaimResult:
        seen = await self._claim_script(keys=[self._claim_key(key)], args=[_ms(ttl)])
        if seen == [b"claimed"]:
            return CLAIMED
        return _claim_result(seen)

    async def _complete(self, key: str, reply: CachedReply, ttl: float) -> None:
        name = self._claim_key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            pipe.hset(name, mapping={"state": b"d", "body": reply.body, "type": reply.content_type})
            pipe.pexpire(name, _ms(ttl))
            await pipe.execute()

    async def _release(self, key: str) -> None:
        await self._release_script(keys=[self._claim_key(key)])

    async def _peek_claim(self, key: str) -> ClaimResult | None:
        seen = await self._redis.hmget(self._claim_key(key), ["state", "body", "type"])
        return None if seen[0] is None else _claim_result(seen)

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}claim:{key}"

    # -- robot streams ------------------------------------------------------------------------

    async def _put_stream(self, stream_id: str, encoded: str, ttl: float) -> None:
        await self._redis.set(self._stream_key(stream_id), encoded.encode(), px=_ms(ttl))

    async def _get_stream(self, stream_id: str) -> str | None:
        raw = await self._redis.get(self._stream_key(stream_id))
        return None if raw is None else _text(raw)

    async def _modify_stream(
        self, stream_id: str, change: Callable[[StreamState], StreamState], ttl: float
    ) -> StreamState | None:
        name = self._stream_key(stream_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:  # optimistic: redo the change if another worker wrote in between
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    if raw is None:
                        await cast(Any, pipe).unwatch()
                        return None
                    changed = _encode_stream(change(_decode_stream(_text(raw))))
                    cast(Any, pipe).multi()
                    pipe.set(name, changed.encode(), px=_ms(ttl))
                    await pipe.execute()
                    return _decode_stream(changed)
                except WatchError:
                    continue

    def _stream_key(self, stream_id: str) -> str:
        return f"{self.prefix}stream:{stream_id}"

    # -- outbox -------------------------------------------------------------------------------

    def _outbox_key(self, channel: str, idempotency_key: str) -> str:
        # The channel's length keeps ("a:b", "c") and ("a", "b:c") apart.
        return f"{self.prefix}outbox:key:{len(channel)}:{channel}:{idempotency_key}"

    async def _enqueue(self, channel: str, payload: bytes, idempotency_key: str) -> str:
        id = await self._enqueue_script(
            keys=[self._outbox, self._outbox_key(channel, idempotency_key)],
            args=[channel, payload, idempotency_key, repr(self.clock())],
        )
        return bytes(id).decode()

    async def _claim_batch(
        self, consumer: str, count: int, visibility_timeout: float
    ) -> list[OutboxItem]:
        now = self.clock()
        batch = await self._claim_batch_script(
            keys=[self._outbox, self._hidden, self._attempts],
            args=[self.group, consumer, count, _ms(now + visibility_timeout), _ms(now)],
        )
        items = [_outbox_item(id, fields, attempts) for id, fields, attempts in batch]
        items.sort(key=lambda item: tuple(int(part) for part in item.id.split("-")))
        return items

    async def _ack(self, id: str) -> None:
        if not _STREAM_ID.fullmatch(id):
            return
        entries = await self._redis.xrange(self._outbox, id, id) or []
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._outbox, self.group, id)
            pipe.xdel(self._outbox, id)
            pipe.zrem(self._hidden, id)
            pipe.hdel(self._attempts, id)
            for _, fields in entries:
                # Delivered: the key now only absorbs late duplicates, for outbox_key_ttl.
                channel = _text((fields or {})[b"channel"])
                key = _text((fields or {})[b"key"])
                pipe.pexpire(self._outbox_key(channel, key), _ms(self.outbox_key_ttl))
            await pipe.execute()

    async def _nack(self, id: str, retry_at: float) -> None:
        if not _STREAM_ID.fullmatch(id):
            return
        await self._nack_script(keys=[self._outbox, self._hidden], args=[id, _ms(retry_at)])

    async def _depth(self) -> int:
        return int(await self._redis.xlen(self._outbox))

    # -- leases -------------------------------------------------------------------------------

    def _lease_key(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    async def _acquire_lease(self, name: str, holder: str, ttl: float, replacing: str | None) -> bool:
        taken = await self._acquire_lease_script(keys=[self._lease_key(name)], args=[holder, _ms(ttl), replacing or ""])
        return bool(taken)

    async def _renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        return bool(await self._renew_lease_script(keys=[self._lease_key(name)], args=[holder, _ms(ttl)]))

    async def _release_lease(self, name: str, holder: str) -> None:
        await self._release_lease_script(keys=[self._lease_key(name)], args=[holder])

    async def _lease_owner(self, name: str) -> str | None:
        owner = await self._redis.get(self._lease_key(name))
        return None if owner is None else _text(owner)

    # -- request queues -----------------------------------------------------------------------

    async def _push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        await self._push_request_script(keys=[f"{self.prefix}queue:{queue}"], args=[payload, _ms(ttl)])

    async def _pop_requests(self, queue: str, count: int) -> list[bytes]:
        taken = await self._pop_requests_script(keys=[f"{self.prefix}queue:{queue}"], args=[count])
        return [bytes(entry) for entry in taken]

    # -- lifecycle ----------------------------------------------------------------------------

    async def _healthy(self) -> bool:
        return bool(await self._redis.ping())

    async def _close(self) -> None:
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    # Round up: a ttl of 0.0001 s must still be a positive PX value.
    return max(1, math.ceil(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


def _claim_result(seen: list[Any]) -> ClaimResult:
    if seen[0] != b"d":
        return IN_PROGRESS
    return ClaimResult(ClaimState.DONE, CachedReply(bytes(seen[1]), bytes(seen[2]).decode()))


def _outbox_item(id: bytes, fields: list[bytes], attempts: int) -> OutboxItem:
    values = dict(zip(fields[::2], fields[1::2]))
    return OutboxItem(
        id=bytes(id).decode(),
        channel=values[b"channel"].decode(),
        payload=bytes(values[b"payload"]),
        idempotency_key=values[b"key"].decode(),
        attempts=int(attempts),
        enqueued_at=float(values[b"at"]),
    )
