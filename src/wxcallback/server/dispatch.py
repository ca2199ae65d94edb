"""From a typed message to its answer, whatever carried the message.

Transport-neutral: no HTTP, no signature, no encryption. A callback URL (inbound.py)
hands over the message it opened and seals the answer this module gives back; a
transport without crypto (the smart robot's long connection) can hand over the same
messages and send the same answers.

For one message: robot stream refresh → the stream's state; otherwise the forwarding
outbox first (durable before anything else), the dedup claim (a platform retry gets the
answer already given), the handler under the channel's deadline (a late one runs on; its
reply is sent through the platform's message API or kept for a retry, as the channel's
``late_reply`` says: server/reply_sender.py), a robot stream started, the reply rendered
once and cached under the dedup key.

The cached copy is written after the answer is handed back, not before: one store round trip
(the claim) stays on the request's path. Until the copy lands the claim is in progress, so a
retry waits for it (``Store.wait_for``) exactly as it waits while the handler runs.

A transport on which the bot pushes its own frames (the long connection) passes a
``PushTransport``: it names the callback's identity (the platform's msgid), pushes a
handler's stream itself (no refresh callbacks to answer from the store) and can still
send a late handler's reply. Without one, the callback URL's behaviour is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_string
from types import CoroutineType
from typing import Any, NamedTuple, Protocol

from ..core import WXCallbackError
from ..messages import (
    MarkdownReply,
    Message,
    NoReply,
    Platform,
    Reply,
    Router,
    StreamingReply,
    StreamRefresh,
    render_reply,
)
from .forward import Forwarder, Parcel
from .handlers import Dispatch
from .reply_sender import ReplySender
from .stores import ClaimState, MemoryStore, Store
from .streams import StreamDriver

__all__ = ["CLAIM_LEASE_MARGIN", "Answer", "Channel", "Dispatched", "Dispatcher", "PushTransport"]

_LOG = logging.getLogger("wxcallback.dispatch")
# How long an in-progress claim outlives the deadline before another attempt may take over.
CLAIM_LEASE_MARGIN = 5.0
_CACHE_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Channel:
    """A channel as the dispatch sees it: what answers its messages, and its time limits."""

    name: str
    platform: Platform
    handler: Dispatch | None
    forwarder: Forwarder | None
    deadline: float
    dedup_ttl: float


class Answer(NamedTuple):  # per message: a NamedTuple is built in half a frozen dataclass's time
    """A rendered answer: "reply" (plaintext to seal), "raw" (sent as is), "none" or "error".

    "none" and "error" are both sent as the message's "no reply". This is what the dedup
    cache keeps; a retry's answer is sealed again with the retry's own nonce and timestamp.
    """

    kind: str
    text: str = ""

    def to_cache(self) -> bytes:
        # json.dumps({"kind": ..., "text": ...}) byte for byte, without its generic machinery
        # (one per new message: 3.8 against 1.0 µs)
        return ('{"kind": %s, "text": %s}' % (_json_string(self.kind), _json_string(self.text))).encode()

    @classmethod
    def from_cache(cls, data: bytes) -> Answer:
        entry = json.loads(data)
        return cls(str(entry["kind"]), str(entry["text"]))


class Dispatched(NamedTuple):
    """The answer to one message and the outcome word for the log.

    ``answer`` is None when another attempt holds the message and nothing here proves
    it is alive: the transport must ask the platform to retry later.
    """

    answer: Answer | None
    outcome: str


class PushTransport(Protocol):
    """What a transport that keeps talking after the answer adds to one dispatch.

    ``identity``: the callback's dedup key, when the transport has a better one than the
    plaintext digest (None: ``message.dedup_key``). ``stream``: push a handler's stream to
    its end and return the final state (what a redelivery is answered with). ``late``: a
    handler that missed the deadline finished; send its reply if the transport still can.
    ``send``: a reply no answer of the transport can carry (markdown), to go out as a message
    of its own.
    """

    @property
    def identity(self) -> str | None: ...

    async def stream(self, streaming: StreamingReply) -> Reply: ...

    def late(self, reply: Reply | StreamingReply | None) -> None: ...

    def send(self, reply: MarkdownReply) -> None: ...


class Dispatcher:
    """Answers messages for any number of channels, sharing one store."""

    def __init__(self, store: Store, streams: StreamDriver, sender: ReplySender | None = None) -> None:
        self._store = store
        self._streams = streams
        # Sends late replies of channels with late_reply = "send"; a handler's current_sender().
        self._sender = sender
        self._late: set[asyncio.Future[Any]] = set()
        # A memory store's calls never wait: its claim and its reply's copy are made here, with
        # no coroutine; a shared store's copy goes through a task, started with the other
        # requests' calls of the same turn.
        self._memory = store if isinstance(store, MemoryStore) else None

    async def dispatch(self, channel: Channel, message: Message, push: PushTransport | None = None, *,
                       tenant: str = "") -> Dispatched:
        """Answer ``message``; ``tenant`` (a third party's account) scopes its dedup key and outbox entry."""
        if isinstance(message, StreamRefresh):
            state = await self._streams.state(channel.name, message.stream_id)
            return Dispatched(self._render(channel, message, state), "stream_refresh")
        dedup_key = (push.identity if push is not None else None) or message.dedup_key
        if tenant:
            # Two authorized accounts may send callbacks with the same identity.
            dedup_key = f"{tenant}:{dedup_key}"
        key = f"{channel.name}:dedup:{dedup_key}"
        parcel = None
        if channel.forwarder is not None:
            # Durable before anything else: if this instance or a claim holder dies, the
            # delivery worker still has the message (the enqueue is idempotent per key).
            parcel = await channel.forwarder.persist(message, dedup_key)
        # The claim is a lease: an instance that dies holding it blocks retries only until
        # it runs out, then a retry takes the message over.
        lease = channel.deadline + CLAIM_LEASE_MARGIN
        claim = self._memory.claim_now(key, lease) if self._memory is not None else await self._store.claim(key, lease)
        if claim.state is ClaimState.DONE:
            assert claim.reply is not None
            return Dispatched(Answer.from_cache(claim.reply.body), "duplicate")
        if claim.state is ClaimState.IN_PROGRESS:
            # A retry while another attempt holds the message: wait for its answer.
            cached = await self._store.wait_for(key, channel.deadline)
            if cached is not None:
                return Dispatched(Answer.from_cache(cached.body), "duplicate")
            if parcel is None:
                # Nothing here proves the holder is alive: a 2xx would acknowledge a message
                # that may be lost. The platform must retry; the lease will have run out.
                return Dispatched(None, "in_progress_elsewhere")
            # Safe to acknowledge: the message is in the outbox.
            return Dispatched(self._render(channel, message, message.no_reply), "duplicate_in_progress")
        try:
            reply, outcome = await self._run(channel, message, dedup_key, key, parcel, push)
            if isinstance(reply, MarkdownReply) and (push is not None or self._sends(channel, push)):
                # No passive reply can be markdown: it goes out now as a message of its own (the
                # message API, or the push transport's own), and the callback is answered "no
                # reply" (a channel that cannot send refuses it in _render).
                if push is not None:
                    push.send(reply)
                else:
                    self._send_late(channel, message, reply, dedup_key)
                reply = None
            if isinstance(reply, StreamingReply):
                if push is not None:
                    reply, outcome = await push.stream(reply), "streamed"
                else:
                    reply, outcome = await self._streams.start(channel.name, reply), "stream_started"
            answer = self._render(channel, message, reply)
        except BaseException:
            await self._store.release(key)
            raise
        if answer.kind == "error":
            outcome = "handler_error"
        if outcome != "late":
            self._cache_later(channel, key, answer)
        return Dispatched(answer, outcome)

    async def _run(self, channel: Channel, message: Message, dedup_key: str, key: str, parcel: Parcel | None,
                   push: PushTransport | None) -> tuple[Reply | StreamingReply | None, str]:
        """The handler's reply under the channel's deadline, and an outcome word for the log."""
        if channel.forwarder is not None:
            assert parcel is not None
            return await channel.forwarder.deliver(parcel), "forwarded"
        assert channel.handler is not None
        sender = self._sender
        bound = sender.bind() if sender is not None else None
        try:  # a task copies the context, an in-place run uses it: the handler finds current_sender()
            started = _start_handler(channel.handler, message)
        except Exception as exc:  # a plain function, called here, raised
            return self._handler_failed(channel, exc)
        finally:
            if bound is not None:
                ReplySender.unbind(bound)
        if not isinstance(started, asyncio.Future):
            return started, "ok"
        task = started
        try:
            if not await _finished_within(task, channel.deadline):
                raise asyncio.TimeoutError
            return task.result(), "ok"
        except asyncio.TimeoutError:
            # Answer "no reply" now so the platform stops retrying; the handler goes on,
            # and its result is kept for a retry that still comes.
            self._late.add(task)
            task.add_done_callback(lambda t: self._finish_late(t, channel, message, dedup_key, key, push))
            return None, "late"
        except Exception as exc:
            return self._handler_failed(channel, exc)

    def _handler_failed(self, channel: Channel, exc: Exception) -> tuple[None, str]:
        _LOG.error(json.dumps({"channel": channel.name, "outcome": "handler_error",
                               "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}), exc_info=exc)
        return None, "handler_error"

    def _finish_late(self, task: asyncio.Future[Any], channel: Channel, message: Message, dedup_key: str,
                     key: str, push: PushTransport | None) -> None:
        self._late.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            _LOG.error(json.dumps({"channel": channel.name, "outcome": "late_handler_error",
                                   "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}))
            return
        reply = task.result()
        if push is not None and isinstance(reply, MarkdownReply):  # a message of its own, as in time
            self._cache_later(channel, key, Answer("none"))
            push.late(reply)
            return
        policy = self._sender.policy(channel.name) if self._sender is not None and push is None else "keep"
        if policy != "keep":
            # A retry must not get, passively, the reply the message API delivers too.
            self._cache_later(channel, key, Answer("none"))
            if reply is None or isinstance(reply, NoReply):
                return  # nothing to say
            if policy == "drop":
                _LOG.info(json.dumps({"channel": channel.name, "outcome": "late_reply_dropped",
                                      "msg_type": message.msg_type, "dedup_key": dedup_key}))
                return
            self._send_late(channel, message, reply, dedup_key)
            return
        answer = self._render(channel, message, None if isinstance(reply, StreamingReply) else reply)
        self._cache_later(channel, key, answer)
        if push is not None:
            push.late(reply)
            return
        _LOG.warning(json.dumps({"channel": channel.name, "outcome": "late_reply_kept", "msg_type": message.msg_type,
                                 "dedup_key": dedup_key,
                                 "detail": "the handler answered after the deadline; the platform got no reply, "
                                           "send this one with the active message API"}))

    def _sends(self, channel: Channel, push: PushTransport | None) -> bool:
        """Whether this channel's replies may go through the platform's message API."""
        return self._sender is not None and push is None and self._sender.policy(channel.name) == "send"

    def _send_late(self, channel: Channel, message: Message, reply: Reply | StreamingReply, dedup_key: str) -> None:
        assert self._sender is not None
        sending = asyncio.ensure_future(self._sender.send_late(channel.name, message, reply, dedup_key))
        self._late.add(sending)
        sending.add_done_callback(lambda done: self._sent_late(done, channel, dedup_key))

    def _sent_late(self, done: asyncio.Future[Any], channel: Channel, dedup_key: str) -> None:
        self._late.discard(done)
        exc = None if done.cancelled() else done.exception()
        if exc is not None:  # the store failed before the reply was queued: it is lost, say so
            _LOG.error(json.dumps({"channel": channel.name, "outcome": "late_reply_failed", "dedup_key": dedup_key,
                                   "detail": f"not queued: {type(exc).__name__}: {str(exc)[:300]}"}))

    def _cache_later(self, channel: Channel, key: str, answer: Answer) -> None:
        """Cache ``answer`` for retries in the background (drain() waits for it)."""
        if self._memory is not None:  # nothing to wait for: no task
            try:
                self._memory.complete_now(key, answer.to_cache(), _CACHE_TYPE, channel.dedup_ttl)
            except Exception as exc:
                self._not_cached(exc, channel, key)
            return
        copy = self._store.complete(key, answer.to_cache(), _CACHE_TYPE, channel.dedup_ttl)
        # at the loop's next turn, with the other requests' calls (SQLite's batch, Redis's pipeline)
        cached = asyncio.get_running_loop().create_task(copy)  # ensure_future's checks: ~0.8 µs more
        self._late.add(cached)
        cached.add_done_callback(lambda done: self._cached(done, channel, key))

    def _cached(self, done: asyncio.Future[None], channel: Channel, key: str) -> None:
        self._late.discard(done)
        exc = None if done.cancelled() else done.exception()
        if exc is not None:
            self._not_cached(exc, channel, key)

    def _not_cached(self, exc: BaseException, channel: Channel, key: str) -> None:
        # The claim stays in progress until its lease runs out; then a retry runs the handler again.
        _LOG.error(json.dumps({"channel": channel.name, "outcome": "reply_not_cached", "dedup_key": key,
                               "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}))

    def _render(self, channel: Channel, message: Message, reply: Reply | None) -> Answer:
        """Render the reply once; a reply the platform would refuse becomes "no reply"."""
        if reply is None:
            return Answer("none")
        if isinstance(reply, NoReply):
            return Answer("raw", reply.body)
        try:
            return Answer("reply", render_reply(reply, message))
        except WXCallbackError as exc:
            _LOG.error(json.dumps({"channel": channel.name, "outcome": "handler_error", "code": int(exc.code),
                                   "detail": f"the handler's reply cannot be sent: {exc}"}))
            return Answer("error")

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown: let late handlers and streams finish, up to ``timeout``."""
        if self._late:
            await asyncio.wait(set(self._late), timeout=timeout)
        await self._streams.drain(timeout)


def _start_handler(handler: Dispatch, message: Message
                   ) -> Reply | StreamingReply | None | asyncio.Future[Reply | StreamingReply | None]:
    """The handler's reply itself, with no task, future or deadline timer, when its router calls
    a plain function on the loop for this message (the demo echo); otherwise a task from the
    start, so that what the handler does with its task (asyncio.timeout, a cancel scope) is its own."""
    router = getattr(handler, "__self__", None)
    if isinstance(router, Router) and getattr(handler, "__func__", None) is Router.dispatch:
        begun = router.begin_dispatch(message)
        if isinstance(begun, CoroutineType):
            return asyncio.get_running_loop().create_task(begun)
        return begun  # type: ignore[return-value]  # (a Coroutine that is no CoroutineType: none here)
    run = handler(message)
    if isinstance(run, CoroutineType):  # the usual: a task, without ensure_future's checks (~0.8 µs)
        return asyncio.get_running_loop().create_task(run)
    return asyncio.ensure_future(run)


async def _finished_within(task: asyncio.Future[Any], seconds: float) -> bool:
    """Wait for ``task`` up to ``seconds`` without cancelling it (a lighter wait_for(shield()))."""
    if task.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[bool] = loop.create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(task.done())

    timer = loop.call_later(seconds, wake, None)
    task.add_done_callback(wake)
    try:
        return await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
