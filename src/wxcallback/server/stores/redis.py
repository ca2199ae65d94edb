"""Redis store: state shared by every worker on every host behind the load balancer.

Single-key operations use Redis's own atomic commands where one does the whole step (``SET NX
PX`` takes a claim, ``SET PX`` caches its reply) or a Lua script on that one key (nonces,
releases, stream compare-and-set). A claim is one string: ``p`` while its handler runs, then
``d<length of the content type>:<content type><body>``. Under load a script call cost Redis
~11.6 µs of CPU against ~1.5 µs for a ``SET``, and one Redis serves every host.

The outbox is a Redis stream read through one consumer group: an entry handed to a consumer
stays in the group's pending list until it is acked, and a sorted set records when each
handed-out entry may be claimed again (the end of its visibility timeout, or the retry time of a
nack). Keeping that time per entry, rather than XAUTOCLAIM's idle time, lets the consumer that
takes an entry choose its timeout and keeps nacked entries out of reach until their retry time.

Redis Cluster: a script may only touch keys of one hash slot, and every outbox script touches
the stream, its sorted set, its attempts hash and idempotency keys. The outbox is therefore
split into ``outbox_shards`` shards, each with its keys under one hash tag (``outbox{3.41}``);
a channel always maps to the same shard, so its idempotency keys, its order and its dead
letters stay together. The tags are chosen so the shards' slots are evenly spread over the
slot space, hence over the masters. On a single Redis there is one shard with untagged names.

On a single Redis the calls a request makes (nonces, claims, replies, releases, a waiting
retry's look, robot streams, outbox enqueues, acks and nacks, leases, request queues, named
values) go over one connection of their own, in batches: the calls made while the previous
batch is on the wire, or in the turns of the loop that keep adding some, leave together, as one
write, and their replies are read in order (see :class:`_Batches`). Each command still runs
alone and atomically on the server, only the round trips and the client's work are shared.
The delivery worker's claim_batch, the dead letters, depth, health and the start-up check use
redis-py's client as they are; so does every call on a cluster, each on its own.

Every key starts with ``prefix``, so several deployments (or test runs) can share one Redis
and clean up with ``SCAN MATCH prefix*``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.crc import key_slot
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
    StoreError,
    StoreHealth,
    StoreNotDurableError,
    StreamState,
    _decode_stream,
    _encode_stream,
)

__all__ = ["DEFAULT_CLUSTER_SHARDS", "DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "wxcallback:"
# Enough shards to spread the outbox over a few masters; each empty claim_batch visits them all.
DEFAULT_CLUSTER_SHARDS = 8

_LOG = logging.getLogger("wxcallback.store")

Client = Union[aioredis.Redis, RedisCluster]
_T = TypeVar("_T")

# A claim's value while its handler runs; a cached reply's starts with _DONE.
_IN_PROGRESS = b"p"
_DONE = b"d"
# How often a claim looks again when the claim it found was gone before it could read it
# (released or lapsed in between): each look is a SET NX, then a GET.
_CLAIM_LOOKS = 3

# A nonce and the fingerprint of its first use. ARGV: fingerprint, ttl (ms). Returns the
# first use's fingerprint, or nil when this call is the first.
_RECORD_NONCE = """
local first = redis.call('GET', KEYS[1])
if first then
    return first
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# pcall: a claim left as a hash by a version before claims were strings is not this worker's.
_RELEASE = """
if redis.pcall('GET', KEYS[1]) == 'p' then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Compare-and-set of a stream's JSON. ARGV: the value read, the new value, ttl (ms).
_SWAP_STREAM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# The name of an idempotency key, as RedisStore._outbox_key builds it: ``#`` counts bytes in
# Lua, so the channel's length is counted in code points (bytes that do not continue a UTF-8
# sequence), as Python's len() does.
_KEY_NAME = """
local function key_name(base, channel, key)
    local _, length = string.gsub(channel, '[^\\128-\\191]', '')
    return base .. length .. ':' .. channel .. ':' .. key
end
local function fields(flat)
    local map = {}
    for i = 1, #flat, 2 do
        map[flat[i]] = flat[i + 1]
    end
    return map
end
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

# KEYS: outbox stream, hidden set, attempts hash.
# ARGV: group, id, idempotency key base, key ttl (ms). The delivered entry goes; its key now only
# absorbs late duplicates, for the key ttl.
_ACK = _KEY_NAME + """
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
if not entry then
    return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
local item = fields(entry[2])
redis.call('PEXPIRE', key_name(ARGV[3], item['channel'], item['key']), ARGV[4])
return 1
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

# KEYS: outbox stream, hidden set, attempts hash, dead set, the dead letter's hash.
# ARGV: group, id, reason, dead_at (seconds, as text), dead_at (ms, the dead set's score).
# The idempotency key stays, still naming the id, so duplicates are absorbed while it is dead.
_DEAD_LETTER = """
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
if not entry then
    return 0
end
local attempts = redis.call('HGET', KEYS[3], ARGV[2]) or '0'
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], unpack(entry[2]))
redis.call('HSET', KEYS[5], 'attempts', attempts, 'reason', ARGV[3], 'dead_at', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

# KEYS: dead set. ARGV: dead letter hash prefix, channel or '', limit.
_LIST_DEAD = _KEY_NAME + """
local limit = tonumber(ARGV[3])
local found = {}
local start = 0
while #found < limit do
    local ids = redis.call('ZRANGE', KEYS[1], start, start + 99)
    if #ids == 0 then
        break
    end
    start = start + #ids
    for _, id in ipairs(ids) do
        local flat = redis.call('HGETALL', ARGV[1] .. id)
        if #flat > 0 and (ARGV[2] == '' or fields(flat)['channel'] == ARGV[2]) then
            found[#found + 1] = {id, flat}
            if #found == limit then
                break
            end
        end
    end
end
return found
"""

# KEYS: outbox stream, dead set, the dead letter's hash. ARGV: id, idempotency key base.
_RETRY_DEAD = _KEY_NAME + """
local flat = redis.call('HGETALL', KEYS[3])
if #flat == 0 then
    return false
end
local item = fields(flat)
local id = redis.call('XADD', KEYS[1], '*',
    'channel', item['channel'], 'payload', item['payload'], 'key', item['key'], 'at', item['at'])
redis.call('SET', key_name(ARGV[2], item['channel'], item['key']), id)
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return id
"""

# KEYS: dead set, the dead letter's hash. ARGV: id, idempotency key base, key ttl (ms).
_DROP_DEAD = _KEY_NAME + """
local flat = redis.call('HGETALL', KEYS[2])
if #flat == 0 then
    return 0
end
local item = fields(flat)
redis.call('PEXPIRE', key_name(ARGV[2], item['channel'], item['key']), ARGV[3])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_SHARDED_ID = re.compile(r"([0-9]{1,4}):([0-9]{1,20}-[0-9]{1,20})")

# Policies that evict keys with a ttl (claims, replies, nonces) or any key (the outbox too).
_EVICTS_VOLATILE = {"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}
_EVICTS_ANY = {"allkeys-lru", "allkeys-lfu", "allkeys-random"}
_DURABILITY_SETTINGS = ("appendonly", "appendfsync", "save", "maxmemory-policy", "maxmemory")


@dataclass(frozen=True)
class _Shard:
    """The names of one outbox shard's keys; with a hash tag they all share one slot."""

    index: int
    base: str  # the stream itself; the other names extend it

    @property
    def hidden(self) -> str:
        return f"{self.base}:hidden"

    @property
    def attempts(self) -> str:
        return f"{self.base}:attempts"

    @property
    def keys(self) -> str:
        return f"{self.base}:key:"

    @property
    def dead(self) -> str:
        return f"{self.base}:dead"

    @property
    def dead_item(self) -> str:
        return f"{self.base}:dead:"

    @property
    def health(self) -> str:
        return f"{self.base}:health"


class RedisStore(Store):
    """Shared state in Redis or Redis Cluster, under keys that all start with ``prefix``.

    The store owns ``client`` and closes it in :meth:`close`. Key expiry runs on the Redis
    server's clock; ``clock`` stamps ``enqueued_at`` and times the outbox's visibility timeouts
    and retries, so the hosts sharing one Redis should keep their clocks in sync (NTP).

    ``outbox_shards`` (default 1, or 8 on a cluster) must be the same on every host and may
    only change while the outbox is empty. ``require_durable`` makes :meth:`start` refuse a
    Redis whose settings could lose the outbox (see :meth:`start`).
    """

    _backend_errors = (RedisError, OSError)

    def __init__(
        self,
        client: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = time.time,
        outbox_key_ttl: float = DEFAULT_OUTBOX_KEY_TTL,
        group: str = "delivery",
        outbox_shards: int | None = None,
        require_durable: bool = False,
    ) -> None:
        super().__init__(clock=clock)
        if not isinstance(prefix, str):
            raise StoreError(f"prefix must be a str, not {type(prefix).__name__}")
        self.cluster = isinstance(client, RedisCluster)
        if self.cluster and ("{" in prefix or "}" in prefix):
            raise StoreError(
                f"prefix {prefix!r} has braces: on Redis Cluster the store chooses the hash tags"
            )
        shards = outbox_shards if outbox_shards is not None else (
            DEFAULT_CLUSTER_SHARDS if self.cluster else 1
        )
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1024:
            raise StoreError(f"outbox_shards must be an int from 1 to 1024, not {shards!r}")
        self.prefix = prefix
        self.outbox_key_ttl = outbox_key_ttl
        self.group = group
        self.require_durable = require_durable
        self._redis: Any = client
        self._tagged = self.cluster or shards > 1
        if self._tagged:
            self._shards = [
                _Shard(index, f"{prefix}outbox{{{tag}}}") for index, tag in enumerate(_spread_tags(shards))
            ]
        else:
            self._shards = [_Shard(0, f"{prefix}outbox")]
        self._release_script = client.register_script(_RELEASE)
        self._record_nonce_script = client.register_script(_RECORD_NONCE)
        self._swap_stream_script = client.register_script(_SWAP_STREAM)
        self._enqueue_script = client.register_script(_ENQUEUE)
        self._claim_batch_script = client.register_script(_CLAIM_BATCH)
        self._ack_script = client.register_script(_ACK)
        self._nack_script = client.register_script(_NACK)
        self._acquire_lease_script = client.register_script(_ACQUIRE_LEASE)
        self._renew_lease_script = client.register_script(_RENEW_LEASE)
        self._release_lease_script = client.register_script(_RELEASE_LEASE)
        self._push_request_script = client.register_script(_PUSH_REQUEST)
        self._pop_requests_script = client.register_script(_POP_REQUESTS)
        self._dead_letter_script = client.register_script(_DEAD_LETTER)
        self._list_dead_script = client.register_script(_LIST_DEAD)
        self._retry_dead_script = client.register_script(_RETRY_DEAD)
        self._drop_dead_script = client.register_script(_DROP_DEAD)
        self._next_shard = 0
        self._batches = _Batches(client.connection_pool) if isinstance(client, aioredis.Redis) else None
        self._release_head = _evalsha_head(self._release_script, 0)
        self._record_nonce_head = _evalsha_head(self._record_nonce_script, 2)
        self._cluster_ready = not self.cluster
        self._cluster_lock: asyncio.Lock | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        cluster_nodes: Sequence[tuple[str, int]] = (),
        **options: Any,
    ) -> RedisStore:
        """A store on a new client for ``url`` (``redis://host:port/db``, ``rediss://``, ``unix://``).

        With ``cluster`` the client is redis-py's cluster client: ``url`` names one startup node
        and carries the connection options, ``cluster_nodes`` (host, port) are more startup nodes.
        """
        try:
            client: Client
            if cluster:
                startup = [ClusterNode(host, port) for host, port in cluster_nodes]
                client = RedisCluster.from_url(url, startup_nodes=startup or None)
            else:
                client = aioredis.Redis.from_url(url, decode_responses=False)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"cannot use Redis URL {url!r}: {exc}") from exc
        return cls(client, prefix=prefix, **options)

    def __repr__(self) -> str:
        kind = "RedisStore(cluster, " if self.cluster else "RedisStore("
        return f"{kind}prefix={self.prefix!r})"

    def _guard(self, operation: Awaitable[_T]) -> Coroutine[Any, Any, _T]:
        # Not a coroutine itself: once the cluster is known (always, on a single Redis) the
        # base class's coroutine is the whole call, one frame less on every call.
        if self._cluster_ready or self._closed:
            return super()._guard(operation)
        return self._guard_discovering(operation)

    async def _guard_discovering(self, operation: Awaitable[_T]) -> _T:
        await super()._guard(self._discover_cluster())
        return await super()._guard(operation)

    async def _discover_cluster(self) -> None:
        # redis-py's cluster client, used concurrently before it has learnt the slot map, can
        # fail a command with "'NoneType' object has no attribute 'writelines'": learn it once.
        if self._cluster_lock is None:
            self._cluster_lock = asyncio.Lock()
        async with self._cluster_lock:
            if not self._cluster_ready:
                await self._redis.initialize()
                self._cluster_ready = True

    # -- replay guard and dedup ---------------------------------------------------------------

    async def _record_nonce(self, key: str, fingerprint: bytes, ttl: float) -> bytes | None:
        name = f"{self.prefix}nonce:{key}"
        if self._batches is None:
            first = await self._record_nonce_script(keys=[name], args=[fingerprint, _ms(ttl)])
        else:
            command = self._record_nonce_head + _bulk(name.encode()) + _bulk(fingerprint) + _bulk(b"%d" % _ms(ttl))
            first = await self._batches.call(command, self._record_nonce_script, (name,), (fingerprint, _ms(ttl)))
        return None if first is None else bytes(first)

    async def _claim(self, key: str, ttl: float) -> ClaimResult:
        name = self._claim_key(key)
        ms = _ms(ttl)
        for _ in range(_CLAIM_LOOKS):
            # SET NX rather than SET NX GET (Redis 7.0+): a new message, nearly every claim,
            # is then one command on every Redis; only a duplicate reads what it found.
            if self._batches is None:
                taken = await self._redis.set(name, _IN_PROGRESS, nx=True, px=ms)
            else:
                taken = await self._batches.call(
                    _SET_NX_HEAD + _bulk(name.encode()) + _IN_PROGRESS_NX_PX + _bulk(b"%d" % ms))
            if taken:
                return CLAIMED
            seen = await self._read_claim(name)
            if seen is not None:
                return seen
        return IN_PROGRESS  # taken and dropped again each time: another worker is on it

    async def _complete(self, key: str, reply: CachedReply, ttl: float) -> None:
        name = self._claim_key(key)
        content_type = reply.content_type.encode()
        value = b"%b%d:%b%b" % (_DONE, len(content_type), content_type, reply.body)
        if self._batches is None:
            await self._redis.set(name, value, px=_ms(ttl))
            return
        await self._batches.call(_SET_HEAD + _bulk(name.encode()) + _bulk(value) + _PX + _bulk(b"%d" % _ms(ttl)))

    async def _release(self, key: str) -> None:
        name = self._claim_key(key)
        if self._batches is None:
            await self._release_script(keys=[name], args=[])
            return
        await self._batches.call(self._release_head + _bulk(name.encode()), self._release_script, (name,))

    async def _peek_claim(self, key: str) -> ClaimResult | None:
        return await self._read_claim(self._claim_key(key))

    async def _read_claim(self, name: str) -> ClaimResult | None:
        try:
            if self._batches is None:
                value = await self._redis.get(name)
            else:
                value = await self._batches.call(_command(b"GET", name.encode()))
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            # A hash: the claim of a version before claims were strings (a rolling upgrade).
            if self._batches is None:
                fields = await self._redis.hmget(name, ["state", "body", "type"])
            else:
                fields = await self._batches.call(_command(b"HMGET", name.encode(), b"state", b"body", b"type"))
            if fields[0] is None:
                return None
            if fields[0] != _DONE:
                return IN_PROGRESS
            return ClaimResult(ClaimState.DONE, CachedReply(bytes(fields[1]), bytes(fields[2]).decode()))
        return None if value is None else _claim_result(bytes(value))

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}claim:{key}"

    def _evalsha(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        """Run ``script``: in a batch on a single Redis, through redis-py on a cluster."""
        if self._batches is None:
            return script(keys=keys, args=args)
        command = _command(b"EVALSHA", script.sha.encode(), b"%d" % len(keys), *map(_encode, keys),
                           *map(_encode, args))
        return self._batches.call(command, script, keys, args)

    def _get(self, name: str) -> Awaitable[Any]:
        if self._batches is None:
            return self._redis.get(name)  # type: ignore[no-any-return]
        return self._batches.call(_command(b"GET", name.encode()))

    def _set(self, name: str, value: bytes, ttl: float) -> Awaitable[Any]:
        if self._batches is None:
            return self._redis.set(name, value, px=_ms(ttl))  # type: ignore[no-any-return]
        return self._batches.call(_command(b"SET", name.encode(), value, b"PX", b"%d" % _ms(ttl)))

    # -- robot streams ------------------------------------------------------------------------

    async def _put_stream(self, stream_id: str, encoded: str, ttl: float) -> None:
        await self._set(self._stream_key(stream_id), encoded.encode(), ttl)

    async def _get_stream(self, stream_id: str) -> str | None:
        raw = await self._get(self._stream_key(stream_id))
        return None if raw is None else _text(raw)

    async def _modify_stream(
        self, stream_id: str, change: Callable[[StreamState], StreamState], ttl: float
    ) -> StreamState | None:
        name = self._stream_key(stream_id)
        while True:  # optimistic: redo the change if another worker wrote in between
            raw = await self._get(name)
            if raw is None:
                return None
            changed = _encode_stream(change(_decode_stream(_text(raw))))
            swapped = await self._evalsha(self._swap_stream_script, [name], [raw, changed.encode(), _ms(ttl)])
            if swapped:
                return _decode_stream(changed)

    def _stream_key(self, stream_id: str) -> str:
        return f"{self.prefix}stream:{stream_id}"

    # -- outbox -------------------------------------------------------------------------------

    def _shard_of(self, channel: str) -> _Shard:
        if len(self._shards) == 1:
            return self._shards[0]
        return self._shards[zlib.crc32(channel.encode()) % len(self._shards)]

    def _outbox_key(self, shard: _Shard, channel: str, idempotency_key: str) -> str:
        # The channel's length keeps ("a:b", "c") and ("a", "b:c") apart.
        return f"{shard.keys}{len(channel)}:{channel}:{idempotency_key}"

    def _item_id(self, shard: _Shard, stream_id: bytes | str) -> str:
        text = _text(stream_id)
        return f"{shard.index}:{text}" if self._tagged else text

    def _locate(self, id: str) -> tuple[_Shard, str] | None:
        """The shard and stream entry id that ``id`` names, or None for an id never handed out."""
        if not self._tagged:
            return (self._shards[0], id) if _STREAM_ID.fullmatch(id) else None
        match = _SHARDED_ID.fullmatch(id)
        if match is None or int(match[1]) >= len(self._shards):
            return None
        return self._shards[int(match[1])], match[2]

    async def _enqueue(self, channel: str, payload: bytes, idempotency_key: str) -> str:
        shard = self._shard_of(channel)
        id = await self._evalsha(
            self._enqueue_script,
            [shard.base, self._outbox_key(shard, channel, idempotency_key)],
            [channel, payload, idempotency_key, repr(self.clock())],
        )
        return self._item_id(shard, id)

    async def _claim_batch(
        self, consumer: str, count: int, visibility_timeout: float
    ) -> list[OutboxItem]:
        now = self.clock()
        items: list[OutboxItem] = []
        # Shards in turn from a rotating start, so no shard waits behind a busy one.
        start = self._next_shard
        self._next_shard = (start + 1) % len(self._shards)
        for offset in range(len(self._shards)):
            shard = self._shards[(start + offset) % len(self._shards)]
            batch = await self._claim_batch_script(
                keys=[shard.base, shard.hidden, shard.attempts],
                args=[self.group, consumer, count - len(items), _ms(now + visibility_timeout), _ms(now)],
            )
            items.extend(
                _outbox_item(self._item_id(shard, id), fields, attempts) for id, fields, attempts in batch
            )
            if len(items) >= count:
                break
        items.sort(key=_age)
        return items

    async def _ack(self, id: str) -> None:
        located = self._locate(id)
        if located is None:
            return
        shard, entry = located
        await self._evalsha(
            self._ack_script,
            [shard.base, shard.hidden, shard.attempts],
            [self.group, entry, shard.keys, _ms(self.outbox_key_ttl)],
        )

    async def _nack(self, id: str, retry_at: float) -> None:
        located = self._locate(id)
        if located is None:
            return
        shard, entry = located
        await self._evalsha(self._nack_script, [shard.base, shard.hidden], [entry, _ms(retry_at)])

    async def _depth(self) -> int:
        lengths = await self._each_shard(lambda shard: self._redis.xlen(shard.base))
        return sum(int(length) for length in lengths)

    async def _each_shard(self, call: Callable[[_Shard], Awaitable[Any]]) -> list[Any]:
        if len(self._shards) == 1:
            return [await call(self._shards[0])]
        return list(await asyncio.gather(*(call(shard) for shard in self._shards)))

    # -- dead letters -------------------------------------------------------------------------

    async def _dead_letter(self, id: str, reason: str) -> bool:
        located = self._locate(id)
        if located is None:
            return False
        shard, entry = located
        now = self.clock()
        moved = await self._dead_letter_script(
            keys=[shard.base, shard.hidden, shard.attempts, shard.dead, shard.dead_item + entry],
            args=[self.group, entry, reason, repr(now), _ms(now)],
        )
        return bool(moved)

    async def _list_dead(self, channel: str | None, limit: int) -> list[DeadLetter]:
        shards = self._shards if channel is None else [self._shard_of(channel)]
        found: list[DeadLetter] = []
        for shard in shards:
            rows = await self._list_dead_script(
                keys=[shard.dead], args=[shard.dead_item, channel or "", limit]
            )
            found.extend(_dead_letter(self._item_id(shard, id), flat) for id, flat in rows)
        found.sort(key=lambda dead: (dead.dead_at, _age(dead)))
        return found[:limit]

    async def _retry_dead(self, id: str) -> str | None:
        located = self._locate(id)
        if located is None:
            return None
        shard, entry = located
        new_id = await self._retry_dead_script(
            keys=[shard.base, shard.dead, shard.dead_item + entry], args=[entry, shard.keys]
        )
        return None if new_id is None else self._item_id(shard, new_id)

    async def _drop_dead(self, id: str) -> bool:
        located = self._locate(id)
        if located is None:
            return False
        shard, entry = located
        dropped = await self._drop_dead_script(
            keys=[shard.dead, shard.dead_item + entry],
            args=[entry, shard.keys, _ms(self.outbox_key_ttl)],
        )
        return bool(dropped)

    async def _dead_count(self) -> int:
        counts = await self._each_shard(lambda shard: self._redis.zcard(shard.dead))
        return sum(int(count) for count in counts)

    # -- leases -------------------------------------------------------------------------------

    def _lease_key(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    async def _acquire_lease(self, name: str, holder: str, ttl: float, replacing: str | None) -> bool:
        taken = await self._evalsha(self._acquire_lease_script, [self._lease_key(name)], [holder, _ms(ttl), replacing or ""])
        return bool(taken)

    async def _renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        return bool(await self._evalsha(self._renew_lease_script, [self._lease_key(name)], [holder, _ms(ttl)]))

    async def _release_lease(self, name: str, holder: str) -> None:
        await self._evalsha(self._release_lease_script, [self._lease_key(name)], [holder])

    async def _lease_owner(self, name: str) -> str | None:
        owner = await self._get(self._lease_key(name))
        return None if owner is None else _text(owner)

    # -- named values -------------------------------------------------------------------------

    async def _put_value(self, name: str, value: bytes, ttl: float) -> None:
        await self._set(f"{self.prefix}value:{name}", value, ttl)

    async def _get_value(self, name: str) -> bytes | None:
        value = await self._get(f"{self.prefix}value:{name}")
        return None if value is None else bytes(value)

    # -- request queues -----------------------------------------------------------------------

    async def _push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        await self._evalsha(self._push_request_script, [f"{self.prefix}queue:{queue}"], [payload, _ms(ttl)])

    async def _pop_requests(self, queue: str, count: int) -> list[bytes]:
        taken = await self._evalsha(self._pop_requests_script, [f"{self.prefix}queue:{queue}"], [count])
        return [bytes(entry) for entry in taken]

    # -- lifecycle ----------------------------------------------------------------------------

    async def _start(self) -> list[str]:
        """Check every master's persistence and eviction settings (where CONFIG is allowed)."""
        nodes: list[tuple[str, Callable[..., Awaitable[Any]]]] = []
        if self.cluster:
            for node in self._redis.get_primaries():
                nodes.append((node.name, _on_node(self._redis, node)))
        else:
            kwargs = self._redis.connection_pool.connection_kwargs
            name = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
            nodes.append((str(name), self._redis.execute_command))
        problems: list[str] = []
        settings: dict[str, dict[str, str]] = {}
        for name, execute in nodes:
            try:
                found = {setting: await _config_get(execute, setting) for setting in _DURABILITY_SETTINGS}
            except ResponseError as exc:  # CONFIG renamed or refused (managed Redis, ACL)
                problems.append(
                    f"{name}: cannot read the persistence settings ({exc}); check by hand that "
                    "appendonly is yes and maxmemory-policy is noeviction"
                )
                continue
            settings[name] = found
            problems.extend(f"{name}: {risk}" for risk in durability_risks(found))
        if problems:
            record = {
                "event": "store_not_durable",
                "store": "redis",
                "settings": settings,
                "at_risk": problems,
                "needed": "appendonly yes, appendfsync everysec, maxmemory-policy noeviction",
                "refused": self.require_durable,
            }
            _LOG.warning(json.dumps(record, ensure_ascii=False))
            if self.require_durable:
                raise StoreNotDurableError(
                    "Redis could lose accepted messages and require_durable is set: " + "; ".join(problems)
                )
        return problems

    async def _health(self) -> StoreHealth:
        await self._discover_cluster()

        async def write(shard: _Shard) -> None:
            await self._redis.set(shard.health, b"1", px=10_000)

        await self._each_shard(write)
        if self.cluster:
            info = await self._redis.cluster_info()
            state = info.get("cluster_state") if isinstance(info, dict) else None
            if state != "ok":
                return StoreHealth(False, f"Redis Cluster state is {state!r}, not 'ok'")
        return StoreHealth(True)

    async def _close(self) -> None:
        if self._batches is not None:
            await self._batches.close()
        await self._redis.aclose()


# One call waiting in _Batches: its packed command, the script it runs (None for a plain
# command) with its keys and arguments (to run it the long way if Redis lost the script), and the
# future its caller awaits.
_Call = tuple[bytes, Union[AsyncScript, None], Sequence[str], Sequence[Any], asyncio.Future[Any]]


# A batch's time limit when the URL and the redis-py version set no socket_timeout.
_BATCH_TIMEOUT = 5.0
# How long (seconds) a batch may keep waiting for the calls of requests still being read.
_HOLD = 0.001


class _Batches:
    """The calls requests make, on one connection of their own per process, in batches.

    Through redis-py's pipeline a call cost this process ~55 µs of CPU alone and ~18 µs with 8
    in flight (the pipeline object, a pool checkout with its lock and observability hooks,
    command packing, retry wrappers, a timeout per reply); here ~20 and ~6 (bench/bench_redis.py,
    docs/bench_server.md). The caller packs its command (RESP is a few lines, see
    _command; the scripts' heads are packed once) and this sends what was queued: while one
    batch is on the wire, the calls made in the meantime queue up and leave together as the
    next batch, in one write, their replies read in order by redis-py's own connection and
    parser (hiredis when installed). A batch also waits while each turn of the loop adds to
    it, up to _HOLD: a batch cost the worker more CPU than the calls in it. The busier the
    process, the larger the batches.

    One batch at a time on one connection also keeps the calls in the order they were made: a
    reply written and then a retry's claim reach Redis in that order.
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._connection: AbstractConnection | None = None
        self._queued: list[_Call] = []
        self._pump: asyncio.Task[None] | None = None
        self._timeout: float | None = None

    def call(
        self, command: bytes, script: AsyncScript | None = None, keys: Sequence[str] = (), args: Sequence[Any] = ()
    ) -> asyncio.Future[Any]:
        """Queue ``command``; the future gets its reply, or the error Redis or the connection gave."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((command, script, keys, args, future))
        if self._pump is None:  # starts at the loop's next turn: the calls of this one go along
            self._pump = loop.create_task(self._run())
        return future

    async def _run(self) -> None:
        batch: list[_Call] = []
        try:
            while self._queued:
                # While each turn of the loop adds calls (it is reading more requests), wait
                # for the next, at most _HOLD: fewer, fuller batches under load; a lone call
                # waits one turn.
                hold = time.monotonic() + _HOLD
                seen = 0
                while len(self._queued) > seen and time.monotonic() < hold:
                    seen = len(self._queued)
                    await asyncio.sleep(0)
                batch, self._queued = self._queued, []
                await self._send(batch)
        except BaseException as exc:  # cancelled (the loop or the store closes): nobody waits forever
            for *_, future in batch + self._queued:
                if not future.done():
                    future.set_exception(StoreError(f"the Redis call was cut short: {exc!r}"))
            self._queued = []
            raise
        finally:
            self._pump = None

    async def _send(self, batch: list[_Call]) -> None:
        if self._connection is None:
            self._connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            # One timeout for the whole batch (redis-py's socket_timeout, 5 s unless set; redis-py
            # before 6 sets none, and a Redis that stops answering must not hold requests for
            # good) rather than one for the write and one for each reply read.
            self._timeout = self._connection.socket_timeout or _BATCH_TIMEOUT
            self._connection.socket_timeout = None
        connection = self._connection
        results: list[Any] = []
        try:
            if connection.is_connected and await _has_data(connection):
                # Closed by Redis while idle (a restart, its client timeout), as redis-py's pool
                # checks before lending a connection: reconnect rather than fail the batch.
                await connection.disconnect(nowait=True)
            await _within(_exchange(connection, batch, results), self._timeout)
        except BaseException as exc:
            # The connection failed, Redis took too long, or this task was cancelled mid-read:
            # the connection is closed (the next batch opens another) and every call not yet
            # answered fails; none is sent again, as it may have run.
            await connection.disconnect(nowait=True)
            if isinstance(exc, asyncio.TimeoutError):
                exc = RedisTimeoutError(f"Redis did not answer within {self._timeout} s")
            if not isinstance(exc, Exception):
                raise  # _run fails the batch
            for *_, future in batch[len(results):]:
                if not future.done():
                    future.set_exception(exc)
        for (_, script, keys, args, future), result in zip(batch, results):
            if isinstance(result, NoScriptError) and script is not None:
                # A restarted Redis: the script call loads the script and runs it.
                try:
                    result = await script(keys=keys, args=args)
                except Exception as exc:
                    result = exc
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.wait([self._pump])  # its calls fail with StoreError
        if self._connection is not None:
            await self._connection.disconnect()


async def _exchange(connection: AbstractConnection, batch: list[_Call], results: list[Any]) -> None:
    """Send the batch's commands in one write and read their replies into ``results``."""
    # Connects (with the pool's settings: AUTH, SELECT, TLS) when not connected.
    await connection.send_packed_command(b"".join([call[0] for call in batch]), check_health=False)
    for _ in batch:
        try:
            results.append(await connection.read_response())
        except ResponseError as exc:  # this command's error: the others stand
            results.append(exc)


if sys.version_info >= (3, 11):

    async def _within(operation: Awaitable[None], seconds: float) -> None:
        """``asyncio.wait_for`` without its task per call (one per batch): the timeout cancels this task."""
        async with asyncio.timeout(seconds):
            await operation

else:  # pragma: no cover - 3.10 has no asyncio.timeout
    _within = asyncio.wait_for


async def _has_data(connection: AbstractConnection) -> bool:
    """Whether an idle connection has data or its end waiting: it cannot carry a batch."""
    # can_read_destructive (redis-py 5) became can_read in redis-py 8; the old name warns there.
    check = getattr(connection, "can_read", None) or connection.can_read_destructive
    try:
        return bool(await check())
    except (RedisError, OSError):  # already broken
        return True


def _bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _encode(value: bytes | str | int | float) -> bytes:
    """An argument as redis-py sends it: bytes as they are, text in UTF-8, numbers in digits."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise StoreError(f"cannot send {type(value).__name__} to Redis")


def _command(*parts: bytes) -> bytes:
    """A command as Redis reads it: an array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join([_bulk(part) for part in parts])


# SET <name> p NX PX <ms> and SET <name> <value> PX <ms>, packed but for the name, value and ms.
_SET_NX_HEAD = b"*6\r\n" + _bulk(b"SET")
_IN_PROGRESS_NX_PX = _bulk(_IN_PROGRESS) + _bulk(b"NX") + _bulk(b"PX")
_SET_HEAD = b"*5\r\n" + _bulk(b"SET")
_PX = _bulk(b"PX")


def _evalsha_head(script: AsyncScript, args: int) -> bytes:
    """``EVALSHA <sha> 1`` packed, for a script of one key and ``args`` arguments."""
    return b"*%d\r\n" % (4 + args) + _bulk(b"EVALSHA") + _bulk(script.sha.encode()) + _bulk(b"1")


def durability_risks(settings: dict[str, str]) -> list[str]:
    """What a Redis with these CONFIG values could lose, one sentence each; [] when durable."""
    risks = []
    if settings.get("appendonly") != "yes":
        if not settings.get("save"):
            risks.append(
                "no persistence (appendonly no, save \"\"): a restart loses the whole outbox "
                "(accepted messages not yet delivered), dedup claims and nonces"
            )
        else:
            risks.append(
                f"snapshots only (appendonly no, save {settings['save']!r}): a restart loses what "
                "the outbox accepted since the last snapshot"
            )
    elif settings.get("appendfsync") == "no":
        risks.append(
            "appendfsync no: a host crash loses the outbox entries the OS had not yet written "
            "(often 30 s of them)"
        )
    policy = settings.get("maxmemory-policy", "noeviction")
    if policy in _EVICTS_ANY:
        risks.append(
            f"maxmemory-policy {policy}: under memory pressure Redis deletes any key, outbox "
            "entries and in-progress dedup claims included"
        )
    elif policy in _EVICTS_VOLATILE:
        risks.append(
            f"maxmemory-policy {policy}: under memory pressure Redis deletes keys with a ttl: "
            "dedup claims and cached replies (a retry runs the handler again) and nonces "
            "(a replay is accepted)"
        )
    return risks


async def _config_get(execute: Callable[..., Awaitable[Any]], setting: str) -> str:
    reply = await execute("CONFIG", "GET", setting)
    if isinstance(reply, dict):
        value = reply.get(setting, reply.get(setting.encode())) or b""
    else:
        pairs = list(reply or [])
        value = pairs[1] if len(pairs) > 1 else b""
    return _text(value)


def _on_node(client: RedisCluster, node: ClusterNode) -> Callable[..., Awaitable[Any]]:
    async def execute(*args: Any) -> Any:
        return await client.execute_command(*args, target_nodes=node)

    return execute


def _spread_tags(count: int) -> list[str]:
    """``count`` hash tags whose slots fall one in each of ``count`` equal parts of the slot space.

    Redis Cluster gives each master a contiguous range of the 16384 slots, so evenly spaced
    slots put the outbox shards evenly on the masters.
    """
    tags = []
    for index in range(count):
        low, high = 16384 * index // count, 16384 * (index + 1) // count
        suffix = 0
        while not low <= key_slot(f"{index}.{suffix}".encode()) < high:
            suffix += 1
        tags.append(f"{index}.{suffix}")
    return tags


def _ms(seconds: float) -> int:
    # Round up: a ttl of 0.0001 s must still be a positive PX value.
    return max(1, math.ceil(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


def _age(item: OutboxItem | DeadLetter) -> tuple[int, ...]:
    """The order of the stream entry behind ``item``'s id: oldest first."""
    entry = item.id.rpartition(":")[2]
    return tuple(int(part) for part in entry.split("-"))


def _claim_result(value: bytes) -> ClaimResult:
    """A claim's state from its value (see the module docstring)."""
    if not value.startswith(_DONE):
        return IN_PROGRESS
    colon = value.find(b":", 1)
    if colon > 1 and value[1:colon].isdigit():
        end = colon + 1 + int(value[1:colon])
        if end <= len(value):
            try:
                return ClaimResult(ClaimState.DONE, CachedReply(value[end:], value[colon + 1:end].decode()))
            except UnicodeDecodeError:
                pass
    raise StoreError(f"a claim's value in Redis is not one this store wrote: {value[:40]!r}")


def _outbox_item(id: str, fields: list[bytes], attempts: int) -> OutboxItem:
    values = dict(zip(fields[::2], fields[1::2]))
    return OutboxItem(
        id=id,
        channel=values[b"channel"].decode(),
        payload=bytes(values[b"payload"]),
        idempotency_key=values[b"key"].decode(),
        attempts=int(attempts),
        enqueued_at=float(values[b"at"]),
    )


def _dead_letter(id: str, flat: list[bytes]) -> DeadLetter:
    values = dict(zip(flat[::2], flat[1::2]))
    return DeadLetter(
        id=id,
        channel=values[b"channel"].decode(),
        payload=bytes(values[b"payload"]),
        idempotency_key=values[b"key"].decode(),
        attempts=int(values[b"attempts"]),
        enqueued_at=float(values[b"at"]),
        dead_at=float(values[b"dead_at"]),
        reason=values[b"reason"].decode(),
    )
