"""The state store interface shared by every server worker: nonces, dedup, robot streams, outbox, leases.

A callback server runs several workers, possibly on several hosts; whatever one worker learns
(a nonce was seen, a message was answered, a stream has new text, a delivery is due) must be
visible to the others. :class:`Store` states that contract once; ``memory``, ``sqlite`` and
``redis`` implement it. The public methods here check their arguments and translate backend
failures into :class:`StoreError`; implementations only supply the ``_``-prefixed primitives.

Its errors all derive from :class:`StoreError`; the whole error tree is drawn in
``wxcallback.core.errors``. Two leaves are the stores' own: :class:`StoreFullError` (a
:class:`StoreUnavailableError`: the memory store is full of work it must not drop) and
:class:`StoreNotDurableError` (``start()`` refused a backend that could lose the outbox).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

from wxcallback.core.errors import ErrorCode, WXCallbackError
from wxcallback.messages import MAX_STREAM_CONTENT_BYTES

__all__ = [
    "DEFAULT_DEDUP_TTL",
    "DEFAULT_NONCE_TTL",
    "DEFAULT_OUTBOX_KEY_TTL",
    "DEFAULT_STREAM_TTL",
    "MAX_STREAM_CONTENT_BYTES",
    "CachedReply",
    "ClaimResult",
    "ClaimState",
    "Clock",
    "DeadLetter",
    "OutboxItem",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreHealth",
    "StoreNotDurableError",
    "StoreURLError",
    "StoreUnavailableError",
    "StreamState",
    "StreamStateError",
]

# The robot doc guarantees a nonce is not reused for 2 hours (WeCom doc 101033).
DEFAULT_NONCE_TTL = 2 * 60 * 60
# A nonce's fingerprint is a digest (the replay guard's is 32 bytes), not a payload.
_MAX_FINGERPRINT = 64
# Longer than the platforms' retry window: 3 attempts x 5 s (OA passive-reply doc, WeCom doc 90238).
DEFAULT_DEDUP_TTL = 300
# WeCom polls a robot stream for at most 6 minutes after the user's message (§4.4); plus margin.
DEFAULT_STREAM_TTL = 6 * 60 + 60
# How long an outbox idempotency key absorbs a duplicate enqueue, delivered or not.
DEFAULT_OUTBOX_KEY_TTL = 24 * 60 * 60
# Robot stream content is the full cumulative text, at most 20480 bytes of UTF-8 (§4.3).

Clock = Callable[[], float]
StreamState = dict[str, Any]
_T = TypeVar("_T")
_S = TypeVar("_S", bound="Store")


class StoreError(WXCallbackError):
    """The state store cannot do what was asked; the request cannot be answered."""

    # Not a protocol failure: the official codes are kept for those (0 = none applies).
    code = ErrorCode.OK


class StoreURLError(StoreError):
    """open_store() was given a URL with an unknown scheme or a missing/invalid part."""


class StoreUnavailableError(StoreError):
    """The backend failed: the SQLite file is locked or unreadable, Redis does not answer."""


class StoreFullError(StoreUnavailableError):
    """The memory store reached its bounds with entries it must not evict (outbox, claims)."""


class StoreNotDurableError(StoreError):
    """``start()`` found a backend that could lose accepted messages, and durability is required."""


class StreamStateError(StoreError):
    """A robot stream update is refused: content too long, stream finished, state not JSON."""


class ClaimState(str, Enum):
    """Where a message stands in the dedup cache."""

    CLAIMED = "claimed"  # the caller holds the claim and runs the handler
    IN_PROGRESS = "in_progress"  # another attempt holds the claim and has not finished
    DONE = "done"  # the message was answered; the reply is cached


class CachedReply(NamedTuple):  # one per new message: a NamedTuple is built in half a frozen dataclass's time
    """A rendered reply kept so a platform retry gets the very same bytes."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class ClaimResult:
    """The answer of :meth:`Store.claim`; ``reply`` is set only when ``state`` is DONE."""

    state: ClaimState
    reply: CachedReply | None = None

    @property
    def claimed(self) -> bool:
        return self.state is ClaimState.CLAIMED

    @property
    def in_progress(self) -> bool:
        return self.state is ClaimState.IN_PROGRESS

    @property
    def done(self) -> bool:
        return self.state is ClaimState.DONE


CLAIMED = ClaimResult(ClaimState.CLAIMED)
IN_PROGRESS = ClaimResult(ClaimState.IN_PROGRESS)


@dataclass(frozen=True)
class OutboxItem:
    """One delivery waiting in the outbox.

    ``attempts`` counts the times the item was handed out by ``claim_batch``, this one included;
    ``enqueued_at`` is seconds since the epoch on the store's clock.
    """

    id: str
    channel: str
    payload: bytes
    idempotency_key: str
    attempts: int
    enqueued_at: float


@dataclass(frozen=True)
class DeadLetter:
    """An outbox item set aside after delivery failed for good; nothing delivers it any more.

    ``attempts`` is the number of deliveries tried, ``dead_at`` seconds since the epoch on the
    store's clock, ``reason`` what the caller of :meth:`Store.dead_letter` said.
    """

    id: str
    channel: str
    payload: bytes
    idempotency_key: str
    attempts: int
    enqueued_at: float
    dead_at: float
    reason: str


class StoreHealth(NamedTuple):
    """What :meth:`Store.health` found: ``ok``, and when not, one line saying why."""

    ok: bool
    reason: str = ""


_CLOSED = StoreHealth(False, "the store is closed")


class Store(ABC):
    """Shared server state. Every method is a coroutine; TTLs and timeouts are in seconds.

    Use it as ``async with open_store(url) as store:`` or call :meth:`close` when done.
    """

    #: Seconds between two looks at a claim while :meth:`wait_for` waits for it.
    poll_interval: float = 0.025

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock
        self._closed = False

    # -- replay guard -------------------------------------------------------------------------

    async def remember_nonce(self, key: str, ttl: float = DEFAULT_NONCE_TTL) -> bool:
        """Record ``key``; False when it was already recorded within its ttl (a replay)."""
        return await self.record_nonce(key, b"", ttl) is None

    async def record_nonce(self, key: str, fingerprint: bytes, ttl: float = DEFAULT_NONCE_TTL) -> bytes | None:
        """Record ``key`` with ``fingerprint`` unless it is recorded within its ttl, atomically.

        None when it is recorded now; else the fingerprint it was first recorded with, left as
        it was. A plaintext request's nonce is kept this way (server/replay.py): the same
        request again (a platform retry) finds its own fingerprint, any other request finds
        another, and a refused request leaves nothing behind that its next copy could find.
        """
        _check_key(key)
        if not isinstance(fingerprint, bytes) or len(fingerprint) > _MAX_FINGERPRINT:
            raise StoreError(f"a nonce's fingerprint is at most {_MAX_FINGERPRINT} bytes")
        _check_seconds(ttl, "ttl")
        return await self._guard(self._record_nonce(key, fingerprint, ttl))

    # -- dedup with cached replies ------------------------------------------------------------

    async def claim(self, key: str, ttl: float = DEFAULT_DEDUP_TTL) -> ClaimResult:
        """Atomically take the right to handle ``key``, or learn who has it or what it answered.

        An unseen key is marked in progress for ``ttl`` seconds (so a crashed worker's claim
        lapses) and CLAIMED is returned; otherwise IN_PROGRESS, or DONE with the cached reply.
        """
        _check_key(key)
        _check_seconds(ttl, "ttl")
        return await self._guard(self._claim(key, ttl))

    async def complete(
        self, key: str, reply: bytes, content_type: str, ttl: float = DEFAULT_DEDUP_TTL
    ) -> None:
        """Cache the reply for ``key`` for ``ttl`` seconds; later claims return it as DONE."""
        _check_key(key)
        body = _check_reply(reply, content_type)
        _check_seconds(ttl, "ttl")
        await self._guard(self._complete(key, CachedReply(body, content_type), ttl))

    async def release(self, key: str) -> None:
        """Drop an in-progress claim so a retry can run the handler again; a cached reply stays."""
        _check_key(key)
        await self._guard(self._release(key))

    async def wait_for(self, key: str, timeout: float) -> CachedReply | None:
        """Wait until the claim on ``key`` completes and return its reply.

        None when ``timeout`` passes first, or when the claim is released or lapses (the caller
        may then claim the key itself).
        """
        _check_key(key)
        _check_seconds(timeout, "timeout", allow_zero=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = await self._guard(self._peek_claim(key))
            if seen is None:
                return None
            if seen.reply is not None:
                return seen.reply
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(self.poll_interval, remaining))

    # -- robot stream state -------------------------------------------------------------------

    async def put_stream(
        self, stream_id: str, state: StreamState, ttl: float = DEFAULT_STREAM_TTL
    ) -> StreamState:
        """Store a stream's state (a JSON-able dict) and return it as stored.

        ``id``, ``content`` ("") and ``finish`` (False) are filled in when missing and
        ``updated_at`` is set from the store's clock.
        """
        _check_key(stream_id, "stream_id")
        _check_seconds(ttl, "ttl")
        if not isinstance(state, dict):
            raise StreamStateError(f"stream state must be a dict, not {type(state).__name__}")
        stored: StreamState = {"id": stream_id, "content": "", "finish": False, **state}
        if stored["id"] != stream_id:
            raise StreamStateError(f"stream state id {stored['id']!r} does not match {stream_id!r}")
        _check_stream_fields(stored)
        stored["updated_at"] = self.clock()
        encoded = _encode_stream(stored)
        await self._guard(self._put_stream(stream_id, encoded, ttl))
        return _decode_stream(encoded)

    async def get_stream(self, stream_id: str) -> StreamState | None:
        """The stream's state, or None when it is unknown or has expired."""
        _check_key(stream_id, "stream_id")
        encoded = await self._guard(self._get_stream(stream_id))
        return None if encoded is None else _decode_stream(encoded)

    async def update_stream(
        self, stream_id: str, content: str, finish: bool = False, ttl: float = DEFAULT_STREAM_TTL
    ) -> StreamState | None:
        """Replace the stream's cumulative ``content`` (and set ``finish``); None if unknown.

        The platform shows the full text of each reply, not a delta (WeCom doc 101031).
        """
        _check_key(stream_id, "stream_id")
        _check_text(content, "content")
        _check_seconds(ttl, "ttl")

        def change(state: StreamState) -> StreamState:
            return _changed_stream(state, content, finish, self.clock())

        return await self._guard(self._modify_stream(stream_id, change, ttl))

    async def append_stream(
        self, stream_id: str, text_chunk: str, finish: bool = False, ttl: float = DEFAULT_STREAM_TTL
    ) -> StreamState | None:
        """Add ``text_chunk`` to the stream's cumulative content; None if the stream is unknown."""
        _check_key(stream_id, "stream_id")
        _check_text(text_chunk, "text_chunk")
        _check_seconds(ttl, "ttl")

        def change(state: StreamState) -> StreamState:
            return _changed_stream(state, str(state["content"]) + text_chunk, finish, self.clock())

        return await self._guard(self._modify_stream(stream_id, change, ttl))

    # -- durable outbox -----------------------------------------------------------------------

    async def enqueue(self, channel: str, item: bytes, idempotency_key: str) -> str:
        """Durably add a delivery and return its id.

        A second enqueue with the same ``channel`` and ``idempotency_key`` (a platform retry)
        returns the first id and adds nothing.
        """
        _check_key(channel, "channel")
        _check_key(idempotency_key, "idempotency_key")
        if not isinstance(item, (bytes, bytearray, memoryview)):
            raise StoreError(f"outbox item must be bytes, not {type(item).__name__}")
        return await self._guard(self._enqueue(channel, bytes(item), idempotency_key))

    async def claim_batch(
        self, consumer: str, count: int, visibility_timeout: float
    ) -> list[OutboxItem]:
        """Hand up to ``count`` due items to ``consumer``, oldest first.

        An item not acked or nacked within ``visibility_timeout`` seconds becomes claimable
        again, so a consumer that crashed does not lose it.
        """
        _check_key(consumer, "consumer")
        _check_count(count, "count")
        _check_seconds(visibility_timeout, "visibility_timeout")
        return await self._guard(self._claim_batch(consumer, count, visibility_timeout))

    async def ack(self, id: str) -> None:
        """The item was delivered: remove it for good. An unknown id is ignored."""
        _check_key(id, "id")
        await self._guard(self._ack(id))

    async def nack(self, id: str, retry_at: float) -> None:
        """Delivery failed: give the item back, claimable again from ``retry_at`` (clock seconds).

        An unknown or already acked id is ignored.
        """
        _check_key(id, "id")
        _check_number(retry_at, "retry_at")
        await self._guard(self._nack(id, float(retry_at)))

    async def depth(self) -> int:
        """How many items are waiting or in flight (not yet acked, not dead), on every worker.

        It is read from the backend each time, so every worker and every host reports the same
        number whatever became of the others.
        """
        return await self._guard(self._depth())

    # -- leases -------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float, *, replacing: str | None = None) -> bool:
        """Atomically make ``holder`` the owner of ``name`` for ``ttl`` seconds.

        True when the lease is free, expired, already ``holder``'s (extended), or held by
        ``replacing`` (handed over in one step); False while anyone else holds it. Expiry is
        measured on the store's clock (Redis: the server's), so holders need no common clock.
        """
        _check_key(name, "name")
        _check_key(holder, "holder")
        _check_seconds(ttl, "ttl")
        if replacing is not None:
            _check_key(replacing, "replacing")
        return await self._guard(self._acquire_lease(name, holder, ttl, replacing))

    async def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend ``holder``'s lease to now + ``ttl``; False (and nothing taken) when it is not
        ``holder``'s or has expired: the holder must then stop using what it guards."""
        _check_key(name, "name")
        _check_key(holder, "holder")
        _check_seconds(ttl, "ttl")
        return await self._guard(self._renew_lease(name, holder, ttl))

    async def release_lease(self, name: str, holder: str) -> None:
        """Free the lease if ``holder`` owns it; otherwise do nothing (the next owner keeps it)."""
        _check_key(name, "name")
        _check_key(holder, "holder")
        await self._guard(self._release_lease(name, holder))

    async def lease_owner(self, name: str) -> str | None:
        """Who holds ``name`` unexpired, or None."""
        _check_key(name, "name")
        return await self._guard(self._lease_owner(name))

    # -- named values (the latest of something: a ticket) -------------------------------------

    async def put_value(self, name: str, value: bytes, ttl: float) -> None:
        """Keep ``value`` under ``name`` for ``ttl`` seconds, replacing what was there."""
        _check_key(name, "name")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise StoreError(f"value must be bytes, not {type(value).__name__}")
        _check_seconds(ttl, "ttl")
        await self._guard(self._put_value(name, bytes(value), ttl))

    async def get_value(self, name: str) -> bytes | None:
        """The unexpired value under ``name``, or None."""
        _check_key(name, "name")
        return await self._guard(self._get_value(name))

    async def _put_value(self, name: str, value: bytes, ttl: float) -> None:
        raise StoreError(f"{type(self).__name__} keeps no named values")

    async def _get_value(self, name: str) -> bytes | None:
        raise StoreError(f"{type(self).__name__} keeps no named values")

    # -- request queues (to whichever process holds a lease) ---------------------------------

    async def push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        """Append ``payload`` to ``queue``; it is dropped unread once ``ttl`` seconds have passed."""
        _check_key(queue, "queue")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise StoreError(f"payload must be bytes, not {type(payload).__name__}")
        _check_seconds(ttl, "ttl")
        await self._guard(self._push_request(queue, bytes(payload), ttl))

    async def pop_requests(self, queue: str, count: int) -> list[bytes]:
        """Take up to ``count`` unexpired payloads from ``queue``, oldest first; each is given
        to one caller only (what a taker that dies had taken is gone from the queue: the long
        connection's sender keeps its request and queues it again, server/longconn_channel.py)."""
        _check_key(queue, "queue")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StoreError(f"count must be a positive int, not {count!r}")
        return await self._guard(self._pop_requests(queue, count))

    # -- dead letters -------------------------------------------------------------------------

    async def dead_letter(self, id: str, reason: str) -> bool:
        """Take the item out of delivery for good, keeping it with ``reason``; False if unknown.

        A waiting or in-flight item can be dead-lettered; its idempotency key keeps absorbing
        duplicates, and a later ack or nack of its id changes nothing.
        """
        _check_key(id, "id")
        if not isinstance(reason, str):
            raise StoreError(f"reason must be a str, not {type(reason).__name__}")
        return await self._guard(self._dead_letter(id, reason))

    async def list_dead(self, channel: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters (of ``channel`` only, when given), oldest death first."""
        if channel is not None:
            _check_key(channel, "channel")
        _check_count(limit, "limit")
        return await self._guard(self._list_dead(channel, limit))

    async def retry_dead(self, id: str) -> str | None:
        """Give a dead letter back to the outbox, due at once with its attempts reset to 0.

        Returns the item's id in the outbox (a store may give it a new one), or None when ``id``
        is not a dead letter.
        """
        _check_key(id, "id")
        return await self._guard(self._retry_dead(id))

    async def drop_dead(self, id: str) -> bool:
        """Forget a dead letter for good; False if unknown.

        Its idempotency key stays for ``outbox_key_ttl``, as for a delivered item.
        """
        _check_key(id, "id")
        return await self._guard(self._drop_dead(id))

    async def dead_count(self) -> int:
        """How many dead letters are kept."""
        return await self._guard(self._dead_count())

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> list[str]:
        """Connect and check the backend before serving; return the problems found (logged).

        Redis checks its persistence and eviction settings and, built with
        ``require_durable=True``, raises :class:`StoreNotDurableError` instead of returning
        them; SQLite opens its file. Calling it is optional: stores connect on first use.
        """
        return await self._guard(self._start())

    async def health(self) -> StoreHealth:
        """Whether the store can serve, WRITES included, and why not; never raises.

        Each call does a small write (a heartbeat row in SQLite, a key with a ttl in Redis), so
        a full disk or a Redis refusing writes shows here; SQLite also reports a file that was
        deleted or replaced under it.
        """
        if self._closed:
            return _CLOSED
        try:
            return await self._health()
        except Exception as exc:
            return StoreHealth(False, f"{self!r} failed: {type(exc).__name__}: {exc}")

    async def healthy(self) -> bool:
        """``health().ok``; never raises."""
        return (await self.health()).ok

    async def close(self) -> None:
        """Release the backend's connections; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await self._close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    async def _guard(self, operation: Awaitable[_T]) -> _T:
        """Run one backend operation, turning backend exceptions into StoreUnavailableError."""
        if self._closed and asyncio.iscoroutine(operation):
            operation.close()  # never awaited on purpose: the store is closed
        self._check_open()
        try:
            return await operation
        except StoreError:
            raise
        except self._backend_errors as exc:
            raise StoreUnavailableError(f"{self!r} failed: {exc}") from exc

    # -- what an implementation supplies ------------------------------------------------------

    #: Exceptions of the backend that mean "the store failed" (wrapped as StoreUnavailableError).
    _backend_errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    async def _record_nonce(self, key: str, fingerprint: bytes, ttl: float) -> bytes | None:
        """``record_nonce``: None when recorded now, else the first recording's fingerprint."""

    @abstractmethod
    async def _claim(self, key: str, ttl: float) -> ClaimResult: ...

    @abstractmethod
    async def _complete(self, key: str, reply: CachedReply, ttl: float) -> None: ...

    @abstractmethod
    async def _release(self, key: str) -> None: ...

    @abstractmethod
    async def _peek_claim(self, key: str) -> ClaimResult | None:
        """The key's current state without claiming it; None when absent or expired."""

    @abstractmethod
    async def _put_stream(self, stream_id: str, encoded: str, ttl: float) -> None: ...

    @abstractmethod
    async def _get_stream(self, stream_id: str) -> str | None: ...

    @abstractmethod
    async def _modify_stream(
        self, stream_id: str, change: Callable[[StreamState], StreamState], ttl: float
    ) -> StreamState | None:
        """Atomically read the state, apply ``change``, store the result with ``ttl``."""

    @abstractmethod
    async def _enqueue(self, channel: str, payload: bytes, idempotency_key: str) -> str: ...

    @abstractmethod
    async def _claim_batch(
        self, consumer: str, count: int, visibility_timeout: float
    ) -> list[OutboxItem]: ...

    @abstractmethod
    async def _ack(self, id: str) -> None: ...

    @abstractmethod
    async def _nack(self, id: str, retry_at: float) -> None: ...

    @abstractmethod
    async def _depth(self) -> int: ...

    # Leases are optional for a backend: one that keeps none refuses them with a StoreError.

    async def _acquire_lease(self, name: str, holder: str, ttl: float, replacing: str | None) -> bool:
        raise StoreError(f"{self!r} keeps no leases")

    async def _renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        raise StoreError(f"{self!r} keeps no leases")

    async def _release_lease(self, name: str, holder: str) -> None:
        raise StoreError(f"{self!r} keeps no leases")

    async def _lease_owner(self, name: str) -> str | None:
        raise StoreError(f"{self!r} keeps no leases")

    async def _push_request(self, queue: str, payload: bytes, ttl: float) -> None:
        raise StoreError(f"{self!r} keeps no request queues")

    async def _pop_requests(self, queue: str, count: int) -> list[bytes]:
        raise StoreError(f"{self!r} keeps no request queues")

    @abstractmethod
    async def _dead_letter(self, id: str, reason: str) -> bool: ...

    @abstractmethod
    async def _list_dead(self, channel: str | None, limit: int) -> list[DeadLetter]: ...

    @abstractmethod
    async def _retry_dead(self, id: str) -> str | None: ...

    @abstractmethod
    async def _drop_dead(self, id: str) -> bool: ...

    @abstractmethod
    async def _dead_count(self) -> int: ...

    async def _start(self) -> list[str]:
        return []

    @abstractmethod
    async def _health(self) -> StoreHealth: ...

    @abstractmethod
    async def _close(self) -> None: ...


# -- argument checks and stream rules shared by the implementations ---------------------------


def _check_key(value: object, what: str = "key") -> None:
    if not isinstance(value, str) or not value:
        raise StoreError(f"{what} must be a non-empty str, not {value!r}")


def _check_reply(reply: object, content_type: object) -> bytes:
    """A reply to cache, as bytes, and its content type: checked as ``Store.complete`` takes them."""
    if not isinstance(reply, (bytes, bytearray, memoryview)):
        raise StoreError(f"reply must be bytes, not {type(reply).__name__}")
    if not isinstance(content_type, str):
        raise StoreError(f"content_type must be a str, not {type(content_type).__name__}")
    return bytes(reply)


def _check_count(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StoreError(f"{what} must be a positive int, not {value!r}")


def _check_number(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StoreError(f"{what} must be a finite number of seconds, not {value!r}")


def _check_seconds(value: object, what: str, *, allow_zero: bool = False) -> None:
    if type(value) is float and 0 < value < math.inf:  # the usual ttl: a positive, finite float
        return
    _check_number(value, what)
    assert isinstance(value, (int, float))
    if value < 0 or (value == 0 and not allow_zero):
        raise StoreError(f"{what} must be {'>= 0' if allow_zero else '> 0'} seconds, not {value!r}")


def _check_text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise StreamStateError(f"{what} must be a str, not {type(value).__name__}")


def _check_stream_fields(state: StreamState) -> None:
    content = state["content"]
    if not isinstance(content, str):
        raise StreamStateError(f"stream content must be a str, not {type(content).__name__}")
    if not isinstance(state["finish"], bool):
        raise StreamStateError(f"stream finish must be a bool, not {state['finish']!r}")
    try:
        size = len(content.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise StreamStateError(f"stream content is not valid Unicode text: {exc}") from exc
    if size > MAX_STREAM_CONTENT_BYTES:
        raise StreamStateError(
            f"stream content is {size} bytes of UTF-8; the platform accepts at most "
            f"{MAX_STREAM_CONTENT_BYTES}"
        )


def _changed_stream(state: StreamState, content: str, finish: bool, now: float) -> StreamState:
    if state.get("finish"):
        raise StreamStateError(f"stream {state.get('id')!r} is finished and cannot change")
    changed = {**state, "content": content, "finish": bool(finish)}
    _check_stream_fields(changed)
    changed["updated_at"] = now
    return changed


def _encode_stream(state: StreamState) -> str:
    try:
        return json.dumps(state, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StreamStateError(f"stream state must be plain JSON data: {exc}") from exc


def _decode_stream(encoded: str) -> StreamState:
    state: StreamState = json.loads(encoded)
    return state
