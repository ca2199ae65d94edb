"""Forwarding to a business backend in any language, with no message lost.

A forwarding channel writes each message to the durable outbox **before** the answer
goes back to the platform, then tries to deliver it at once, within the channel's
forward timeout, so the backend's reply can still be the passive reply. If the
backend is slow or down, the platform gets its "no reply" answer and the delivery
worker keeps retrying with backoff until the backend acknowledges (any 2xx). The
dedup key is the idempotency key the backend sees, so a redelivery after a crash is
recognisable as the same message.

The backend receives ``POST <forward>`` with ``Content-Type: application/json``,
``Idempotency-Key: <channel>:<dedup key>`` and::

    {"channel": "oa", "platform": "official-account", "dedup_key": "…",
     "delivery": "inline" | "retry", "message": {…the typed message as a dict…}}

and may answer 2xx with an empty body, ``{}``, or ``{"reply": {"type": "text", "content": "…"}}``
(the reply schema of ``wxcallback.messages.reply_from_dict``). A reply to a retried
delivery (the backend was slower than ``forward_timeout``, or down) comes too late to be
passive: the delivery worker hands it to ``QueuedSends.forwarded_reply``, which sends it
through the platform's message API as the channel's ``late_reply`` says
(server/reply_sender.py), from what the stored item holds alone: the worker may run in
another process than the one that took the callback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import httpx

from ..core import WXCallbackError
from ..messages import Message, Platform, Reply, reply_from_dict
from .stores import OutboxItem, Store

__all__ = ["DeliveryWorker", "Forwarder", "Parcel", "QueuedSends", "backoff", "reply_of"]

_LOG = logging.getLogger("wxcallback.forward")
_MAX_BACKOFF = 60.0
#: how long an undeliverable message is retried before it becomes a dead letter
DEFAULT_MAX_AGE = 24 * 60 * 60.0


def backoff(attempts: int, cap: float = _MAX_BACKOFF) -> float:
    """Seconds before the next try: 1, 2, 4 … capped at ``cap`` (a minute), with jitter of a quarter."""
    base = min(cap, 2.0 ** max(attempts - 1, 0))
    return base * (0.75 + random.random() * 0.5)


# A reply is one passive message: a few KiB. A backend answering more is refused, not read
# (a 200 MB answer used to be read whole: 313 MB RSS).
MAX_REPLY_BYTES = 64 * 1024


# A backend that keeps refusing a message (4xx other than these) will not change its mind:
# after this many tries the message is a dead letter, kept for a person to retry or drop.
PERMANENT_FAILURE_TRIES = 3
_TRANSIENT_4XX = frozenset({408, 425, 429})


class Delivery(NamedTuple):
    """What one POST to the backend gave."""

    acknowledged: bool
    detail: str
    content: bytes | None = None  # the reply body when acknowledged and within MAX_REPLY_BYTES
    status: int | None = None  # None: no HTTP answer at all

    @property
    def permanent_failure(self) -> bool:
        return self.status is not None and 400 <= self.status < 500 and self.status not in _TRANSIENT_4XX


async def _post(client: httpx.AsyncClient, url: str, body: bytes, idempotency_key: str, timeout: float) -> Delivery:
    """POST one delivery."""
    try:
        async with client.stream("POST", url, content=body, timeout=timeout, headers={
                "Content-Type": "application/json", "Idempotency-Key": idempotency_key}) as response:
            status = response.status_code
            detail = f"backend answered {status}"
            if not 200 <= status < 300:
                return Delivery(False, detail, None, status)
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    return Delivery(True, f"{detail} with a reply over {MAX_REPLY_BYTES} bytes (not read)", None,
                                    status)
                chunks.append(chunk)
            return Delivery(True, detail, b"".join(chunks), status)
    except httpx.HTTPError as exc:
        return Delivery(False, f"backend unreachable ({type(exc).__name__})")


@dataclass(frozen=True)
class Parcel:
    """A message in the outbox, serialised once: its outbox id and the payload without ``delivery``."""

    outbox_id: str
    idempotency_key: str
    # The payload's JSON object without its closing brace, so that each delivery adds its
    # own "delivery" member without serialising the message again.
    head: bytes

    def body(self, delivery: str) -> bytes:
        return self.head + b', "delivery": "' + delivery.encode() + b'"}'


class Forwarder:
    """One forwarding channel's inline delivery."""

    def __init__(self, channel: str, platform: Platform, url: str, store: Store, client: httpx.AsyncClient,
                 timeout: float) -> None:
        self.channel = channel
        self.platform = platform
        self.url = url
        self._store = store
        self._client = client
        self._timeout = timeout

    async def persist(self, message: Message, dedup_key: str) -> Parcel:
        """Write the message to the outbox (idempotent per dedup key).

        Done before anything else, so the message is durable whichever instance handles
        it, and whatever happens to that instance next.
        """
        payload: dict[str, object] = {"channel": self.channel, "platform": self.platform.value,
                                      "dedup_key": dedup_key}
        if message.tenant:
            payload["tenant"] = message.tenant
        payload["message"] = message.to_dict()
        head = json.dumps(payload).encode()[:-1]
        parcel = Parcel("", f"{self.channel}:{dedup_key}", head)
        outbox_id = await self._store.enqueue(self.channel, parcel.body("retry"), parcel.idempotency_key)
        return Parcel(outbox_id, parcel.idempotency_key, head)

    async def deliver(self, parcel: Parcel) -> Reply | None:
        """Try the backend now, within the forward timeout; its reply, or None (left to the worker)."""
        delivery = await _post(self._client, self.url, parcel.body("inline"), parcel.idempotency_key,
                               self._timeout)
        if not delivery.acknowledged:
            _LOG.warning(json.dumps({"channel": self.channel, "outcome": "forward_deferred",
                                     "detail": f"{delivery.detail}; queued for retry"}))
            return None
        await self._store.ack(parcel.outbox_id)
        if delivery.content is None:
            _LOG.warning(json.dumps({"channel": self.channel, "outcome": "forward_bad_reply",
                                     "detail": f"{delivery.detail}; answering with no reply"}))
            return None
        return self._reply_of(delivery.content)

    def _reply_of(self, content: bytes) -> Reply | None:
        return reply_of(self.channel, self.platform, content)


def reply_of(channel: str, platform: Platform, content: bytes) -> Reply | None:
    """The reply a backend's 2xx body carries; None for none, or a bad one (logged: forward_bad_reply)."""
    if not content.strip():
        return None
    try:
        data = json.loads(content)
    except ValueError:
        _LOG.warning(json.dumps({"channel": channel, "outcome": "forward_bad_reply",
                                 "detail": "backend reply is not JSON; answering with no reply"}))
        return None
    if not isinstance(data, dict) or data.get("reply") is None:
        return None
    try:
        return reply_from_dict(data["reply"], platform)
    except WXCallbackError as exc:
        _LOG.warning(json.dumps({"channel": channel, "outcome": "forward_bad_reply", "code": int(exc.code),
                                 "detail": str(exc)}))
        return None


class QueuedSends(Protocol):
    """Other work that shares the outbox (late replies, server/reply_sender.py): its own items, its own
    delivery, and what becomes of a backend's reply to a retried delivery."""

    def owns(self, item: OutboxItem) -> bool: ...

    async def deliver_queued(self, item: OutboxItem) -> int: ...

    async def forwarded_reply(self, item: OutboxItem, content: bytes) -> None: ...


class DeliveryWorker:
    """Delivers what the outbox holds, retrying with backoff until the backend acknowledges.

    A message the backend refuses for good (a 4xx other than 408/425/429, PERMANENT_FAILURE_TRIES
    times) or that is still undelivered after its channel's ``max_age`` becomes a dead letter:
    logged, counted on /metrics, listed and retried or dropped with ``wxcallback outbox``.
    """

    def __init__(self, store: Store, urls: dict[str, str], client: httpx.AsyncClient, *, consumer: str,
                 timeout: float = 10.0, visibility_timeout: float = 60.0, idle: float = 0.5,
                 fresh_grace: float = 5.0, max_ages: dict[str, float] | None = None,
                 sends: QueuedSends | None = None, inline_timeouts: dict[str, float] | None = None,
                 timeouts: dict[str, float] | None = None) -> None:
        self._store = store
        self._sends = sends
        self._urls = urls
        self._max_ages = max_ages or {}
        self._client = client
        self._consumer = consumer
        self._timeout = timeout
        # Per channel (forward_retry_timeout): a slow backend (an LLM) may take longer than the
        # default to give the answer that becomes its late reply.
        self._timeouts = timeouts or {}
        # A claimed item is invisible to other workers while it is delivered: longer than any delivery.
        self._visibility = max([visibility_timeout, *(t + 30.0 for t in self._timeouts.values())])
        self._idle = idle
        # An item younger than this may still be in its inline delivery: leave it a moment.
        self._fresh_grace = fresh_grace
        # A channel's inline delivery may last its forward_timeout: redelivering before it ends would
        # have the backend answer twice, once passively and once too late.
        self._graces = {name: max(fresh_grace, timeout + 1.0) for name, timeout in (inline_timeouts or {}).items()}
        self._stopping = asyncio.Event()
        self._wake: asyncio.Future[None] | None = None

    def stop(self) -> None:
        self._stopping.set()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self, concurrency: int = 16) -> None:
        """Deliver until stopped, up to ``concurrency`` items at once.

        Each item is delivered on its own: a backend that takes its forward_retry_timeout to
        answer holds one slot, not the items claimed with it (other channels, late replies).
        """
        loop = asyncio.get_running_loop()
        inflight: set[asyncio.Task[int]] = set()
        while not self._stopping.is_set():
            claimed: list[OutboxItem] = []
            if len(inflight) < concurrency:
                try:
                    claimed = await self._store.claim_batch(self._consumer, concurrency - len(inflight),
                                                            self._visibility)
                except Exception as exc:  # the store is down: say so and try again shortly
                    _LOG.error(json.dumps({"outcome": "outbox_unavailable",
                                           "detail": f"{type(exc).__name__}: {exc}"}))
            for item in claimed:
                task = asyncio.ensure_future(self._deliver_logged(item))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            if not claimed:
                # Idle, or every slot busy: look again when one frees, when stopped, or after a moment.
                # (A plain future, woken by stop(): nothing to cancel if this coroutine is closed.)
                self._wake = wake = loop.create_future()
                waits: set[asyncio.Future[Any]] = {wake, *inflight}
                await asyncio.wait(waits, timeout=self._idle, return_when=asyncio.FIRST_COMPLETED)
        if inflight:
            await asyncio.wait(set(inflight))  # the server's stop bounds this with shutdown_grace

    async def run_once(self, count: int = 16) -> int:
        """One batch, delivered before returning: how many were delivered (tests, tools)."""
        items = await self._store.claim_batch(self._consumer, count, self._visibility)
        if not items:
            return 0
        results = await asyncio.gather(*(self._deliver(item) for item in items))
        return sum(results)

    async def _deliver_logged(self, item: OutboxItem) -> int:
        try:
            return await self._deliver(item)
        except Exception as exc:  # the store failed mid-delivery: the item's claim lapses, it is tried again
            _LOG.error(json.dumps({"channel": item.channel, "outcome": "outbox_unavailable",
                                   "detail": f"{type(exc).__name__}: {exc}"}))
            return 0

    async def _deliver(self, item: OutboxItem) -> int:
        if self._sends is not None and self._sends.owns(item):
            return await self._sends.deliver_queued(item)
        now = time.time()
        grace = self._graces.get(item.channel, self._fresh_grace)
        if now - item.enqueued_at < grace and item.attempts <= 1:
            await self._store.nack(item.id, item.enqueued_at + grace)
            return 0
        url = self._urls.get(item.channel)
        if url is None:
            # The channel left the configuration: keep the message, look again later.
            await self._store.nack(item.id, now + _MAX_BACKOFF)
            return 0
        delivery = await _post(self._client, url, item.payload, item.idempotency_key,
                               self._timeouts.get(item.channel, self._timeout))
        if delivery.acknowledged:
            if delivery.content and self._sends is not None:
                # Queued (durable) before the ack: a crash in between redelivers, and the send's
                # key absorbs the backend's second answer.
                await self._sends.forwarded_reply(item, delivery.content)
            await self._store.ack(item.id)
            _LOG.info(json.dumps({"channel": item.channel, "outcome": "delivered", "attempts": item.attempts}))
            return 1
        detail = delivery.detail
        age = now - item.enqueued_at
        max_age = self._max_ages.get(item.channel, DEFAULT_MAX_AGE)
        if delivery.permanent_failure and item.attempts >= PERMANENT_FAILURE_TRIES:
            reason = f"{detail} {item.attempts} times: the backend refuses this message"
        elif age >= max_age:
            reason = f"undelivered after {age:.0f} s (max_age {max_age:g} s); last: {detail}"
        else:
            reason = ""
        if reason:
            await self._store.dead_letter(item.id, reason)
            _LOG.error(json.dumps({"channel": item.channel, "outcome": "dead_letter", "id": item.id,
                                   "attempts": item.attempts, "detail": reason + "; see: wxcallback outbox list"}))
            return 0
        delay = backoff(item.attempts)
        await self._store.nack(item.id, now + delay)
        _LOG.warning(json.dumps({"channel": item.channel, "outcome": "delivery_retry", "attempts": item.attempts,
                                 "detail": f"{detail}; next try in {delay:.1f} s"}))
        return 0
