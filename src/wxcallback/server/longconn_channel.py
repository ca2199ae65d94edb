"""A smart robot served over its long connection: the dispatch's second transport.

A channel with ``transport = "websocket"`` has no callback URL: each worker runs a
``LongConnection`` (``wxcallback.longconn``) with a lease in the shared store, so exactly
one process among all workers and hosts holds the bot's connection (the platform keeps
one per bot, and two that reconnect evict each other forever). The others stand by and
take over when the holder's lease runs out.

Each callback is handed to the same ``Dispatcher`` as a callback URL's messages, with a
``PushTransport`` for what this transport does differently:

- the dedup key is the platform's msgid, so a redelivered callback is handled once;
- a handler's stream is pushed frame by frame (``respond_stream``: no refresh callbacks),
  and its final state is what a redelivery is answered with;
- a late handler's reply to a message is still sent on the callback's req_id (a welcome or
  card update after the 5 s window would be refused, so those are only logged);
- a ``MarkdownReply``, which no answer frame carries, goes to the callback's chat as a
  message of its own (``aibot_send_msg``), in time or late, and the callback gets no answer.

The rendered answer (the reply JSON of the callback-URL mode) is the body of the reply
frame, under the command the callback takes (``reply_command``). One access-log line per
callback, the request metrics by outcome, ``wxcallback_longconn_up`` and the reconnects
counter, and one log line per change of the connection's phase. The holder publishes its
connection's state in the store (``longconn-state:<bot_id>``, refreshed every lease_ttl / 3,
gone a lease_ttl after the holder dies), so ``/healthz`` and ``/metrics`` on any worker or
host show the bot's connection, not only their own process's.

Proactive messages and uploads (``LongConnClient``) may come from any process: the request
goes to the store's queue ``longconn-send:<bot_id>``, which the holder polls while
connected; the holder sends it over its connection and leaves the platform's ack in the
dedup cache under the request's key, where the sender waits for it. The queue is the
store's, so requests queued when a holder dies are taken by the next one. A request in a
holder's hands is tracked by a lease of its own (``_Hand``): *taken* by that holder, then
*sent* just before its first frame goes out, or *given up* by its sender. Each step is one
atomic hand-over, so a request is sent at most once; and the sender, which still has the
request, watches its holder: one that stopped with the request taken never sent it, and
the sender queues it again for the next holder; one that stopped with it sent leaves the
sender a ``DeliveryUnknown`` (an upload is simply done again: a second temporary file
costs nothing).

A connection that ends for good (evicted by another connection, or its subscribe refused)
does not let the next process in: its lease is handed to a marker ``down:<reason>:<holder>``
held for a day, so the whole server stays down instead of fighting or retrying. Starting
``wxcallback serve`` again clears the marker (``clear_stay_down``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from ..core import WXCallbackError
from ..longconn import (
    AckError,
    Callback,
    ConnectionState,
    DeliveryUnknown,
    LongConnection,
    LongConnError,
    LongConnSettings,
    NotConnected,
    UploadedMedia,
    default_holder,
    lease_name,
)
from ..longconn.frames import (
    MEDIA_TYPES,
    chunk_media,
    markdown_body,
    reply_command,
    respond_frame,
    send_msg_frame,
    template_card_body,
)
from ..messages import MarkdownReply, Message, Reply, StreamingReply
from .config import ChannelConfig, ServerConfig
from .dispatch import Answer, Channel, Dispatcher
from .observe import Metrics, Outcome, log_callback
from .stores import Store, StoreError, open_store

__all__ = ["STAY_DOWN", "LongConnChannel", "LongConnClient", "StoreLease", "clear_stay_down", "longconn_problem",
           "settings_for"]

_LOG = logging.getLogger("wxcallback.server")
# How long a connection that ended for good keeps the others down (a restart clears it).
STAY_DOWN = 24 * 60 * 60.0
_DOWN = "down:"
# How often the holder looks for proactive sends while idle (seconds).
_SEND_POLL = 0.1
# How often a sender looks at the holder of its request while waiting (seconds).
_WATCH = 0.25
# A request's hand outlives its sender's wait by this much (seconds).
_HAND_GRACE = 5.0


def _send_queue(bot_id: str) -> str:
    return f"longconn-send:{bot_id}"


class LongConnClient:
    """Proactive messages and uploads through a bot's long connection, from any process that
    shares the server's store (another worker, another host, a script, ``wxcallback send``).

    Each call waits for the platform's ack, up to ``timeout``; NotConnected when no process
    holding the bot answered by then (the server is down, standing by, or ended for good).
    """

    def __init__(self, store: Store, bot_id: str, *, timeout: float = 15.0) -> None:
        self._store = store
        self.bot_id = bot_id
        self.timeout = timeout

    async def send_message(self, chatid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Push a message (``aibot_send_msg``) to a chat: a userid for a single chat, a group's chatid.
        Returns the ack (``errcode`` 0); AckError when the platform refuses it."""
        frame = send_msg_frame(chatid, body)  # checked here, so a bad body fails in the caller
        assert frame.body is not None
        return await self._request({"op": "send", "chatid": chatid, "body": frame.body})

    async def send_markdown(self, chatid: str, content: str) -> dict[str, Any]:
        return await self.send_message(chatid, markdown_body(content))

    async def send_template_card(self, chatid: str, card: Mapping[str, Any]) -> dict[str, Any]:
        return await self.send_message(chatid, template_card_body(card))

    async def upload_media(self, data: bytes, *, media_type: str, filename: str) -> UploadedMedia:
        """Upload a temporary media file (valid 3 days) in chunks, through the holder."""
        if media_type not in MEDIA_TYPES:
            raise ValueError(f"media_type must be one of {sorted(MEDIA_TYPES)}, not {media_type!r}")
        chunk_media(data)  # the size limits, checked here
        result = await self._request({"op": "upload", "media_type": media_type, "filename": filename,
                                      "data": base64.b64encode(data).decode("ascii")})
        return UploadedMedia(str(result["media_id"]), str(result["type"]), result.get("created_at"))

    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        request_id = secrets.token_hex(12)
        key = _result_key(self.bot_id, request_id)
        hand = _Hand(self._store, self.bot_id, request_id)
        resendable = request["op"] == "upload"  # a second upload only leaves an unused media_id
        payload = json.dumps({"id": request_id, "hand_ttl": self.timeout + _HAND_GRACE, **request}).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        # In progress until the holder leaves its answer: wait_for watches this entry.
        await self._store.claim(key, self.timeout + _HAND_GRACE)
        await self._store.push_request(_send_queue(self.bot_id), payload, self.timeout)
        while True:
            remaining = deadline - loop.time()
            cached = await self._store.wait_for(key, max(0.0, min(_WATCH, remaining)))
            if cached is not None:
                return self._result(cached.body)
            if remaining <= 0:
                break
            phase, taker = await hand.state()
            owner = await self._store.lease_owner(lease_name(self.bot_id))
            if taker is None:
                if owner is not None and owner.startswith(_DOWN):
                    break  # still queued, and the bot's connection ended for good: nobody will take it
                continue
            if owner is not None and (owner == taker or owner.startswith(_DOWN) and owner.endswith(f":{taker}")):
                continue  # in the hands of the holder (or of one that ended for good and finishes what it has)
            if phase == _TAKEN or resendable:
                # The holder stopped before sending it: queue it again for the next one. If that
                # holder was only slow and sends it after all, the next one cannot take it.
                await hand.free(f"{phase}:{taker}")
                await self._store.push_request(_send_queue(self.bot_id), payload, max(remaining, 0.001))
                _LOG.warning(json.dumps({"outcome": "send_requeued", "bot_id": self.bot_id, "request": request_id,
                                         "detail": f"the process holding the bot ({taker}) stopped before it was "
                                                   "sent; queued again for the next holder"}))
                continue
            await self._store.release(key)
            raise DeliveryUnknown(f"the process holding bot {self.bot_id!r} ({taker}) stopped after sending the "
                                  "message and before the platform's ack: it may or may not have reached the chat")
        return await self._give_up(key, hand)

    async def _give_up(self, key: str, hand: _Hand) -> dict[str, Any]:
        """The wait is over: make sure the request is never sent later, or say that it was."""
        owner = await self._store.lease_owner(lease_name(self.bot_id))
        why = (f"the bot's long connection stopped for good ({owner.split(':')[1]}; see /healthz), and nothing "
               "will send it until `wxcallback serve` is started again" if owner is not None and
               owner.startswith(_DOWN) else
               f"no process holding bot {self.bot_id!r} sent it within {self.timeout:g} s, and none will: is "
               "`wxcallback serve` running with this channel, and connected (see /healthz)?")
        while True:
            phase, taker = await hand.state()
            if phase == _SENT:
                break
            # Still queued, or taken and not sent: take it back, unless a holder moves it on meanwhile.
            if await hand.give_up(None if taker is None else f"{phase}:{taker}"):
                await self._store.release(key)
                raise NotConnected(f"not sent: {why}")
        cached = await self._store.wait_for(key, 0)  # answered just now
        if cached is not None:
            return self._result(cached.body)
        await self._store.release(key)
        raise DeliveryUnknown(f"bot {self.bot_id!r}: the message was sent but the platform's ack did not come within "
                              f"{self.timeout:g} s: it may or may not have reached the chat")

    def _result(self, body: bytes) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(body)
        if result.get("ok"):
            return result
        if result.get("errcode"):
            raise AckError(str(result.get("error")), errcode=int(result["errcode"]),
                           errmsg=str(result.get("errmsg", "")), req_id=str(result.get("req_id", "")))
        raise NotConnected(str(result.get("error")))


_TAKEN = "taken"
_SENT = "sent"
_GIVEN_UP = "given-up"


class _Hand:
    """Who has one proactive request, as a lease ``longconn-send-hand:<bot_id>:<id>`` whose owner
    is ``taken:<holder>``, ``sent:<holder>`` or ``given-up``; every change is one atomic
    hand-over (``acquire_lease(…, replacing=…)``), so at most one process ever sends it."""

    def __init__(self, store: Store, bot_id: str, request_id: str) -> None:
        self._store = store
        self._name = f"longconn-send-hand:{bot_id}:{request_id}"

    async def state(self) -> tuple[str | None, str | None]:
        """(phase, holder): (None, None) while nobody has it, (given-up, None) once its sender left."""
        owner = await self._store.lease_owner(self._name)
        if owner is None:
            return None, None
        phase, _, holder = owner.partition(":")
        return phase, holder or None

    async def take(self, holder: str, ttl: float) -> bool:
        return await self._store.acquire_lease(self._name, f"{_TAKEN}:{holder}", ttl)

    async def send(self, holder: str, ttl: float) -> bool:
        """From taken to sent; False when its sender queued it again or gave up meanwhile."""
        return await self._store.acquire_lease(self._name, f"{_SENT}:{holder}", ttl, replacing=f"{_TAKEN}:{holder}")

    async def free(self, owner: str) -> None:
        await self._store.release_lease(self._name, owner)

    async def give_up(self, owner: str | None) -> bool:
        return await self._store.acquire_lease(self._name, _GIVEN_UP, _HAND_GRACE * 12, replacing=owner)


def longconn_problem(name: str, entry: Mapping[str, Any]) -> str | None:
    """What ``/healthz`` says of a long-connection channel's entry (``LongConnChannel.health``):
    None while its bot is connected, wherever it is held.

    A terminal state is lost capacity (nobody serves the bot until ``wxcallback serve`` is
    started again); a connection that is reconnecting, or not yet held, comes back by itself.
    """
    terminal = entry.get("terminal")
    if terminal:
        why = entry.get("terminal_message") or "the process that held it stopped for good"
        return f"long connection {name}: stopped for good ({terminal}: {why}); start wxcallback serve again once fixed"
    if entry.get("connected"):
        return None
    if entry.get("holder") is None:
        return f"long connection {name}: no process holds the bot (starting, or taking over from one that stopped)"
    return f"long connection {name}: not connected ({entry.get('phase')}: {entry.get('last_error') or 'connecting'})"


def _state_key(bot_id: str) -> str:
    return f"longconn-state:{bot_id}"


def _result_key(bot_id: str, request_id: str) -> str:
    return f"longconn-send:{bot_id}:{request_id}"


def settings_for(config: ChannelConfig) -> LongConnSettings:
    """The connection settings of a websocket channel."""
    return LongConnSettings(
        config.bot_id, config.secret, url=config.url, heartbeat_interval=config.heartbeat_interval,
        missed_pings=config.missed_pings, ack_timeout=config.ack_timeout, backoff_base=config.reconnect_delay,
        backoff_max=config.reconnect_max_delay, max_subscribe_failures=config.max_subscribe_failures,
        lease_ttl=config.lease_ttl, stream_interval=config.stream_interval)


class StoreLease:
    """The ``Lease`` of ``wxcallback.longconn`` on the shared store (memory, SQLite, Redis).

    ``stay_down(reason)`` makes the next ``release`` hand the lease to a marker instead of
    freeing it: the connection ended for good, and no other process may take the bot.
    """

    def __init__(self, store: Store, hold: float = STAY_DOWN) -> None:
        self._store = store
        self._hold = hold
        self._down: str | None = None

    def stay_down(self, reason: str) -> None:
        self._down = reason

    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        return await self._store.acquire_lease(name, holder, ttl)

    async def renew(self, name: str, holder: str, ttl: float) -> bool:
        return await self._store.renew_lease(name, holder, ttl)

    async def release(self, name: str, holder: str) -> None:
        if self._down is None:
            await self._store.release_lease(name, holder)
            return
        marker = f"{_DOWN}{self._down}:{holder}"
        if not await self._store.acquire_lease(name, marker, self._hold, replacing=holder):
            _LOG.warning(json.dumps({"outcome": "longconn_stay_down_failed", "lease": name,
                                     "detail": "the lease had already passed to another holder"}))


async def clear_stay_down(config: ServerConfig) -> None:
    """Lift the markers a connection that ended for good left (``wxcallback serve`` at start)."""
    channels = [c for c in config.channels if c.websocket]
    if not channels:
        return
    try:
        async with open_store(config.store) as store:
            for channel in channels:
                name = lease_name(channel.bot_id)
                owner = await store.lease_owner(name)
                if owner is not None and owner.startswith(_DOWN):
                    await store.release_lease(name, owner)
                    _LOG.info(json.dumps({"outcome": "longconn_stay_down_cleared", "channel": channel.name,
                                          "detail": f"the previous run ended with {owner.split(':')[1]}; "
                                                    "connecting again"}))
    except StoreError as exc:  # the workers retry the store; a marker left expires by itself
        _LOG.warning(json.dumps({"outcome": "store_error", "detail": f"cannot clear the long-connection markers: "
                                                                     f"{exc}"}))


class _Push:
    """The PushTransport of one callback: its msgid, its stream, its late reply."""

    def __init__(self, channel: LongConnChannel, callback: Callback) -> None:
        self._channel = channel
        self._callback = callback
        self.streamed = False

    @property
    def identity(self) -> str | None:
        # The platform's msgid names the callback: a redelivery carries the same one.
        msgid = self._callback.msgid
        return f"msgid:{msgid}" if msgid else None

    async def stream(self, streaming: StreamingReply) -> Reply:
        self.streamed = True
        return await self._channel.connection.respond_stream(
            self._callback, streaming.source, stream_id=streaming.stream_id, feedback_id=streaming.feedback_id)

    def late(self, reply: Reply | StreamingReply | None) -> None:
        self._channel.send_late(self._callback, reply)

    def send(self, reply: MarkdownReply) -> None:
        self._channel.send_markdown(self._callback, reply, late=False)


class LongConnChannel:
    """One websocket channel in one worker: its connection, and its callbacks through the dispatch."""

    def __init__(self, config: ChannelConfig, channel: Channel, dispatcher: Dispatcher, store: Store,
                 metrics: Metrics, *, holder: str | None = None) -> None:
        self.config = config
        self.name = config.name
        self._channel = channel
        self._dispatcher = dispatcher
        self._store = store
        self._metrics = metrics
        self.lease = StoreLease(store)
        self.connection = LongConnection(settings_for(config), self._on_callback, lease=self.lease,
                                         holder=holder or default_holder(), on_state=self._on_state)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sends: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        self._published_at = 0.0
        self._phase = ""
        self._reconnects = 0

    @property
    def lease_name(self) -> str:
        return self.connection.lease_name

    def start(self) -> None:
        self.connection.start()
        self._sends = asyncio.ensure_future(self._serve_sends())

    async def stop(self, timeout: float) -> None:
        """Finish what is being answered (up to ``timeout``), then close and release the lease."""
        if self._sends is not None:
            self._sends.cancel()
            await asyncio.gather(self._sends, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        final = await self.connection.stop()
        if self._publishing is not None:
            await asyncio.gather(self._publishing, return_exceptions=True)
        if final.terminal is not None:
            await self._publish(final)

    def client(self, timeout: float = 15.0) -> LongConnClient:
        """Proactive sends and uploads for this channel's bot (from this process or any other)."""
        return LongConnClient(self._store, self.config.bot_id, timeout=timeout)

    # -- proactive sends, for whichever process asked ----------------------------------------

    async def _serve_sends(self) -> None:
        queue = _send_queue(self.config.bot_id)
        while True:
            state = self.connection.state
            if state.holds_lease and time.monotonic() - self._published_at >= self.config.lease_ttl / 3:
                await self._publish(state)
            if not state.connected:
                await asyncio.sleep(_SEND_POLL * 2)
                continue
            try:
                requests = await self._store.pop_requests(queue, 16)
            except StoreError:
                await asyncio.sleep(1.0)  # /healthz shows the store down; look again
                continue
            for raw in requests:
                task = asyncio.ensure_future(self._perform(raw))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not requests:
                await asyncio.sleep(_SEND_POLL)

    async def _perform(self, raw: bytes) -> None:
        started = time.perf_counter()
        try:
            request = json.loads(raw)
            request_id, op = str(request["id"]), str(request["op"])
        except (ValueError, KeyError, TypeError):
            _LOG.warning(json.dumps({"channel": self.name, "outcome": "send_refused", "detail": "unreadable request"}))
            return
        hand = _Hand(self._store, self.config.bot_id, request_id)
        holder = self.connection.holder
        ttl = float(request.get("hand_ttl") or 60.0)
        try:
            # Taken, then marked sent just before the first frame: a sender that sees this process
            # stop knows which of the two it did.
            if not await hand.take(holder, ttl) or not await hand.send(holder, ttl):
                _LOG.info(json.dumps({"channel": self.name, "outcome": "send_skipped", "request": request_id,
                                      "detail": "its sender gave up, or another process has it"}))
                return
        except StoreError:
            return  # not sent: its sender sees no holder take it and says so
        result: dict[str, Any]
        try:
            if op == "upload":
                media = await self.connection.upload_media(base64.b64decode(request["data"]),
                                                           media_type=str(request["media_type"]),
                                                           filename=str(request["filename"]))
                result = {"ok": True, "media_id": media.media_id, "type": media.type, "created_at": media.created_at}
            else:
                ack = await self.connection.send_message(str(request["chatid"]), request["body"])
                result = {"ok": True, "errcode": ack.errcode, "errmsg": ack.errmsg, "req_id": ack.req_id}
        except AckError as exc:
            result = {"ok": False, "error": str(exc), "errcode": exc.errcode, "errmsg": exc.errmsg, "req_id": exc.req_id}
        except (LongConnError, WXCallbackError, ValueError, KeyError, TypeError) as exc:
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        record = {"channel": self.name, "transport": "websocket", "cmd": op, "outcome": "sent" if result["ok"] else
                  "send_failed", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        if not result["ok"]:
            record["detail"] = result["error"]
        _LOG.log(logging.INFO if result["ok"] else logging.WARNING, json.dumps(record, ensure_ascii=False))
        try:
            await self._store.complete(_result_key(self.config.bot_id, request_id), json.dumps(result).encode(),
                                       "application/json", 60)
        except StoreError:
            pass  # the sender times out and says so

    async def health(self) -> dict[str, Any]:
        """The channel for ``/healthz``: the bot's connection as its holder published it (this
        process's own state when it holds the bot or nothing is published), who holds it, and
        this process's phase (``standby`` while another worker or host holds it)."""
        own = self.connection.state
        entry: dict[str, Any] = own.to_dict()
        try:
            owner = await self._store.lease_owner(self.lease_name)
            cached = None if owner == self.connection.holder else await self._store.wait_for(
                _state_key(self.config.bot_id), 0)
        except StoreError:
            owner, cached = None, None
        if cached is not None:
            entry = json.loads(cached.body)
        if owner is None or owner.startswith(_DOWN) or (cached is None and owner != self.connection.holder):
            entry["connected"] = False  # nobody holds the bot, or its holder published nothing yet
        entry["bot_id"] = self.config.bot_id
        entry["holder"] = owner
        entry["held_here"] = owner is not None and owner == self.connection.holder
        entry["this_process"] = own.phase.value
        if owner is not None and owner.startswith(_DOWN) and entry.get("terminal") is None:
            # Another process ended for good; this one stays down with it.
            entry["terminal"] = owner[len(_DOWN):].split(":", 1)[0]
        return entry

    async def _publish(self, state: ConnectionState) -> None:
        """Leave the holder's state in the store for every worker's /healthz and /metrics."""
        ttl = STAY_DOWN if state.terminal is not None else self.config.lease_ttl
        self._published_at = time.monotonic()
        try:
            await self._store.complete(_state_key(self.config.bot_id), json.dumps(state.to_dict()).encode(),
                                       "application/json", ttl)
        except StoreError:
            pass  # /healthz of this process still shows it; the others see it expire

    def _publish_soon(self, state: ConnectionState) -> None:
        if self._publishing is not None and not self._publishing.done():
            self._publishing.add_done_callback(lambda _: self._publish_soon(self.connection.state))
            return
        try:
            self._publishing = asyncio.ensure_future(self._publish(state))
        except RuntimeError:  # no running loop (the connection is being torn down)
            self._publishing = None

    # -- the connection's state ------------------------------------------------------------

    def _on_state(self, state: ConnectionState) -> None:
        if state.terminal is not None:
            self.lease.stay_down(state.terminal.value)
        if state.reconnects > self._reconnects:
            self._metrics.longconn_reconnects.labels(self.name).inc(state.reconnects - self._reconnects)
            self._reconnects = state.reconnects
        if state.holds_lease or state.terminal is not None:
            self._publish_soon(state)
        if state.phase.value == self._phase:
            return
        self._phase = state.phase.value
        record: dict[str, Any] = {"channel": self.name, "outcome": f"longconn_{state.phase.value}",
                                  "bot_id": self.config.bot_id, "holder": self.connection.holder,
                                  "reconnects": state.reconnects}
        if state.terminal is not None:
            record["terminal"] = state.terminal.value
        detail = state.terminal_message or state.last_error
        if detail and not state.connected:
            record["detail"] = detail
        level = logging.ERROR if state.terminal is not None else \
            logging.WARNING if state.phase.value == "backoff" else logging.INFO
        _LOG.log(level, json.dumps(record, ensure_ascii=False))

    # -- callbacks -------------------------------------------------------------------------

    async def _on_callback(self, callback: Callback) -> None:
        started = time.perf_counter()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            record = await self._answer(callback)
        finally:
            if task is not None:
                self._tasks.discard(task)
        log_callback(callback.cmd, callback.req_id, record, started)
        self._metrics.observe(record, time.perf_counter() - started)

    async def _answer(self, callback: Callback) -> Outcome:
        plaintext = callback.plaintext() if self.config.debug else None
        try:
            message = callback.message()
        except WXCallbackError as exc:
            return Outcome("rejected", int(exc.code), f"the callback cannot be read: {exc}", self.name,
                           callback.msgtype, plaintext)
        msg_type = message.msg_type + (f"/{message.event}" if message.event else "")
        push = _Push(self, callback)
        try:
            dispatched = await self._dispatcher.dispatch(self._channel, message, push)
        except StoreError as exc:
            # Unanswered, and the claim is not kept: a redelivery runs it again.
            return Outcome("store_error", int(exc.code), str(exc), self.name, msg_type, plaintext)
        except LongConnError as exc:
            return Outcome("send_failed", 0, f"{type(exc).__name__}: {exc}", self.name, msg_type, plaintext)
        outcome = dispatched.outcome
        answer = dispatched.answer
        if answer is None:
            return Outcome(outcome, 0, "another attempt holds this message; nothing sent", self.name, msg_type,
                           plaintext)
        if push.streamed and outcome == "streamed":
            return Outcome(outcome, 0, "", self.name, msg_type, plaintext)
        try:
            sent = await self._send(callback, message, answer)
        except LongConnError as exc:
            return Outcome("send_failed", 0, f"{type(exc).__name__}: {exc}", self.name, msg_type, plaintext)
        except WXCallbackError as exc:
            return Outcome("handler_error", int(exc.code), f"the reply cannot be sent: {exc}", self.name, msg_type,
                           plaintext)
        detail = "" if sent or outcome in ("late", "handler_error") else "no reply"
        return Outcome(outcome, 0, detail, self.name, msg_type, plaintext)

    async def _send(self, callback: Callback, message: Message, answer: Answer) -> bool:
        """Send the rendered answer as the reply frame; False when there is nothing to send."""
        if answer.kind != "reply" or not answer.text:
            return False
        body = json.loads(answer.text)
        await self.connection.request(respond_frame(reply_command(callback, message), callback.req_id, body))
        return True

    def send_late(self, callback: Callback, reply: Reply | StreamingReply | None) -> None:
        """A handler finished after the deadline: send its reply to a message on the callback's req_id."""
        if reply is None:
            return
        if isinstance(reply, MarkdownReply):
            self.send_markdown(callback, reply, late=True)
            return
        if callback.is_event:
            _LOG.warning(json.dumps({"channel": self.name, "outcome": "late_reply_dropped", "req_id": callback.req_id,
                                     "msg_type": f"event/{callback.eventtype}",
                                     "detail": "the handler answered after the deadline; an event's reply is "
                                               "refused after 5 s, send a proactive message instead"}))
            return
        task = asyncio.ensure_future(self._send_late(callback, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send_markdown(self, callback: Callback, reply: MarkdownReply, *, late: bool) -> None:
        """A handler's MarkdownReply: no answer frame carries markdown, so it goes to the chat the
        callback came from (its chatid in a group, the sender's userid in a single chat) as a
        message of its own (aibot_send_msg), as a callback-URL robot's goes to its response_url."""
        task = asyncio.ensure_future(self._send_markdown(callback, reply, "late_reply" if late else "markdown"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_markdown(self, callback: Callback, reply: MarkdownReply, word: str) -> None:
        outcome, detail = f"{word}_sent", ""
        try:
            message = callback.message()
            chat = getattr(message, "chat_id", None) or message.source
            await self.connection.send_markdown(chat, reply.content)
        except WXCallbackError as exc:  # the connection's refusals and a content over the limit alike
            outcome, detail = f"{word}_failed", f"{type(exc).__name__}: {exc}"
        _LOG.log(logging.INFO if not detail else logging.WARNING,
                 json.dumps({"channel": self.name, "outcome": outcome, "req_id": callback.req_id,
                             "msg_type": "markdown", "detail": detail}, ensure_ascii=False))

    async def _send_late(self, callback: Callback, reply: Reply | StreamingReply) -> None:
        outcome, detail = "late_reply_sent", ""
        try:
            if isinstance(reply, StreamingReply):
                await self.connection.respond_stream(callback, reply.source, stream_id=reply.stream_id,
                                                     feedback_id=reply.feedback_id)
            else:
                await self.connection.respond(callback, reply)
        except (LongConnError, WXCallbackError) as exc:
            outcome, detail = "late_reply_failed", f"{type(exc).__name__}: {exc}"
        _LOG.log(logging.INFO if not detail else logging.WARNING,
                 json.dumps({"channel": self.name, "outcome": outcome, "req_id": callback.req_id, "detail": detail}))
