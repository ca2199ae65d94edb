"""The request pipeline, independent of any web framework.

For a POST: verify → decrypt (key ring) → replay guard → parse → dedup → handler under a
deadline → encrypt the reply with the key that decrypted the request → respond. (The
replay guard of an encrypted request is its timestamp window, checked once the
signature is known good; a plaintext request also passes the nonce cache.)
For a GET: the URL check of the channel's platform, answered as bare text.

Every failure maps to a status here, once: signature or replay → 403, malformed → 400,
unknown path → 404, wrong method → 405, too large → 413 (the ASGI layer counts the
body). Bad input never yields a 500. A handler that raises is logged and answered
with the platform's "no reply", so the platform does not retry it three times.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from ..core import (
    DecryptedMessage,
    MessageCrypto,
    ReceiveIdError,
    SignatureError,
    Signer,
    WXCallbackError,
    extract_encrypt,
)
from ..core.envelope import EnvelopeFormat
from ..messages import (
    Message,
    NoReply,
    Platform,
    Reply,
    StreamingReply,
    StreamRefresh,
    parse_message,
    render_reply,
)
from .config import ChannelConfig
from .exchange import CallbackRequest, CallbackResponse, QueryError, parse_query
from .forward import Forwarder
from .handlers import Dispatch
from .replay import ReplayError, ReplayGuard
from .stores import CachedReply, ClaimState, Store, StoreError
from .streams import StreamDriver

__all__ = ["Channel", "Pipeline", "status_for"]

_LOG = logging.getLogger("wxcallback.pipeline")
# How long an in-progress claim outlives the deadline before another attempt may take over.
CLAIM_LEASE_MARGIN = 5.0
XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


def status_for(error: WXCallbackError) -> int:
    """The HTTP status for a library error: authentication failures 403, the rest 400."""
    if isinstance(error, (SignatureError, ReplayError, ReceiveIdError)):
        return 403
    return 400


@dataclass
class Channel:
    """A configured channel with what it needs at run time."""

    config: ChannelConfig
    crypto: MessageCrypto | None
    signer: Signer
    dispatch: Dispatch | None
    forwarder: Forwarder | None
    replay: ReplayGuard

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def platform(self) -> Platform:
        return self.config.kind.platform


class _Reject(Exception):
    def __init__(self, status: int, outcome: str, detail: str, code: int = 0) -> None:
        super().__init__(detail)
        self.status, self.outcome, self.detail, self.code = status, outcome, detail, code


@dataclass
class _Exchange:
    channel: Channel
    timestamp: str
    nonce: str
    encrypted: bool
    decrypted: DecryptedMessage | None = None


class Pipeline:
    """Answers CallbackRequests for a set of channels, sharing one store."""

    def __init__(self, channels: list[Channel], store: Store, streams: StreamDriver) -> None:
        self._channels = {channel.config.path: channel for channel in channels}
        self._store = store
        self._streams = streams
        self._late: set[asyncio.Future[Any]] = set()

    def channel_for(self, path: str) -> Channel | None:
        return self._channels.get(path) or self._channels.get(path.rstrip("/") or "/")

    async def handle(self, request: CallbackRequest) -> CallbackResponse:
        channel = self.channel_for(request.path)
        if channel is None:
            return CallbackResponse(404, b"unknown callback path", outcome="unknown_path",
                                    detail=f"no channel is configured for {request.path[:200]!r}")
        try:
            query = parse_query(request.query_string)
            if request.method in ("GET", "HEAD"):
                response = await self._verify_url(channel, query)
            elif request.method == "POST":
                response = await self._callback(channel, query, request.body)
            else:
                raise _Reject(405, "method_not_allowed", f"{request.method} is not a callback method")
        except _Reject as reject:
            response = CallbackResponse(reject.status, reject.detail.encode()[:200] if reject.status != 403 else
                                        b"forbidden", outcome=reject.outcome, code=reject.code, detail=reject.detail)
        except QueryError as exc:
            response = CallbackResponse(400, b"bad query string", outcome="bad_query", code=int(exc.code),
                                        detail=str(exc))
        except StoreError as exc:
            # The store is down: answer 503 so the platform retries later, rather than lose it.
            response = CallbackResponse(503, b"temporarily unavailable", outcome="store_error", code=int(exc.code),
                                        detail=str(exc))
        except WXCallbackError as exc:
            status = status_for(exc)
            response = CallbackResponse(status, b"forbidden" if status == 403 else b"bad request",
                                        outcome="replay" if isinstance(exc, ReplayError) else "rejected",
                                        code=int(exc.code), detail=str(exc))
        response.channel = channel.name
        return response

    # -- GET: URL verification ------------------------------------------------------

    async def _verify_url(self, channel: Channel, query: dict[str, str]) -> CallbackResponse:
        if channel.config.kind.plain_url_check:
            # The Official Account echostr is plaintext in every mode: verify, echo verbatim.
            signature, timestamp, nonce, echostr = _required(query, "signature", "timestamp", "nonce", "echostr")
            channel.signer.verify_signature(signature, timestamp, nonce)
            channel.replay.check_timestamp(timestamp)
            return CallbackResponse(200, echostr.encode(), TEXT, outcome="url_verified")
        assert channel.crypto is not None
        msg_signature, timestamp, nonce, echostr = _required(query, "msg_signature", "timestamp", "nonce", "echostr")
        plaintext = channel.crypto.verify_url(msg_signature, timestamp, nonce, echostr)
        channel.replay.check_timestamp(timestamp)
        # The bare plaintext: no quotes, BOM or newline (gotcha 8).
        return CallbackResponse(200, plaintext.encode(), TEXT, outcome="url_verified")

    # -- POST: callbacks --------------------------------------------------------------

    async def _callback(self, channel: Channel, query: dict[str, str], body: bytes) -> CallbackResponse:
        exchange = await self._open(channel, query, body)
        plaintext = exchange.decrypted.text if exchange.decrypted is not None else _plain_body(body)
        message = parse_message(plaintext, channel.platform)
        response = await self._answer(exchange, message)
        response.msg_type = message.msg_type + (f"/{message.event}" if message.event else "")
        if channel.config.debug:
            response.fields["plaintext"] = plaintext
        return response

    async def _open(self, channel: Channel, query: dict[str, str], body: bytes) -> _Exchange:
        """Verify the request, decrypt it, pass the replay guard."""
        config = channel.config
        if config.kind.always_encrypted:
            encrypted = True
        else:
            encrypt_type = query.get("encrypt_type", "raw")
            if encrypt_type not in ("raw", "aes"):
                raise _Reject(400, "bad_query", f"encrypt_type {encrypt_type!r} is neither raw nor aes")
            encrypted = encrypt_type == "aes"
        # The configuration decides which modes are allowed, never the request alone.
        if encrypted and not config.accepts_encrypted:
            raise _Reject(400, "mode_refused", "encrypted request on a channel configured for plaintext only")
        if not encrypted and not config.accepts_plaintext:
            raise _Reject(403, "mode_refused", "plaintext request refused: this channel requires encryption",
                          code=-40001)
        if encrypted:
            assert channel.crypto is not None
            msg_signature, timestamp, nonce = _required(query, "msg_signature", "timestamp", "nonce")
            encrypt = extract_encrypt(body, channel.crypto.envelope)
            # Verifies msg_signature first, so a forged request never reaches the AES code.
            decrypted = channel.crypto.decrypt_ciphertext(encrypt, msg_signature, timestamp, nonce)
            # The signature binds timestamp, nonce and ciphertext: the window is all a
            # replay check adds here (see replay.py).
            channel.replay.check_timestamp(timestamp)
            return _Exchange(channel, timestamp, nonce, True, decrypted)
        signature, timestamp, nonce = _required(query, "signature", "timestamp", "nonce")
        channel.signer.verify_signature(signature, timestamp, nonce)
        await channel.replay.check(timestamp, nonce, signature, body)
        return _Exchange(channel, timestamp, nonce, False)

    async def _answer(self, exchange: _Exchange, message: Message) -> CallbackResponse:
        channel = exchange.channel
        if isinstance(message, StreamRefresh):
            state = await self._streams.state(channel.name, message.stream_id)
            response = self._respond(exchange, message, state)
            response.outcome = "stream_refresh"
            return response
        key = f"{channel.name}:dedup:{message.dedup_key}"
        outbox_id = None
        if channel.forwarder is not None:
            # Durable before anything else: if this instance or a claim holder dies, the
            # delivery worker still has the message (the enqueue is idempotent per key).
            outbox_id = await channel.forwarder.persist(message, message.dedup_key)
        # The claim is a lease: an instance that dies holding it blocks retries only until
        # it runs out, then a retry takes the message over.
        claim = await self._store.claim(key, channel.config.deadline + CLAIM_LEASE_MARGIN)
        if claim.state is ClaimState.DONE:
            assert claim.reply is not None
            return self._replay_cached(exchange, message, claim.reply)
        if claim.state is ClaimState.IN_PROGRESS:
            # A retry while another attempt holds the message: wait for its answer.
            cached = await self._store.wait_for(key, channel.config.deadline)
            if cached is not None:
                return self._replay_cached(exchange, message, cached)
            if outbox_id is None:
                # Nothing here proves the holder is alive: a 2xx would acknowledge a message
                # that may be lost. Ask the platform to retry; the lease will have run out.
                return CallbackResponse(503, b"in progress elsewhere, retry", TEXT, outcome="in_progress_elsewhere",
                                        detail="another attempt holds this message; answered 503 so the platform "
                                               "retries after its lease")
            response = self._respond(exchange, message, message.no_reply)
            response.outcome = "duplicate_in_progress"  # safe: the message is in the outbox
            return response
        try:
            reply, outcome = await self._run(channel, message, key, outbox_id)
            if isinstance(reply, StreamingReply):
                reply = await self._streams.start(channel.name, reply)
                outcome = "stream_started"
            answer = self._render(channel, message, reply)
        except BaseException:
            await self._store.release(key)
            raise
        if answer.kind == "error":
            outcome = "handler_error"
        if outcome != "late":
            await self._store.complete(key, answer.to_cache(), JSON, channel.config.dedup_ttl)
        response = self._send(exchange, message, answer)
        response.outcome = outcome
        return response

    async def _run(self, channel: Channel, message: Message, key: str,
                   outbox_id: str | None) -> tuple[Reply | StreamingReply | None, str]:
        """The handler's reply under the channel's deadline, and an outcome word for the log."""
        if channel.forwarder is not None:
            assert outbox_id is not None
            return await channel.forwarder.deliver(message, message.dedup_key, outbox_id), "forwarded"
        assert channel.dispatch is not None
        task: asyncio.Future[Reply | StreamingReply | None] = asyncio.ensure_future(channel.dispatch(message))
        try:
            if not await _finished_within(task, channel.config.deadline):
                raise asyncio.TimeoutError
            return task.result(), "ok"
        except asyncio.TimeoutError:
            # Answer "no reply" now so the platform stops retrying; the handler goes on,
            # and its result is kept for a retry that still comes.
            self._late.add(task)
            task.add_done_callback(lambda t: self._finish_late(t, channel, message, key))
            return None, "late"
        except Exception as exc:
            _LOG.error(json.dumps({"channel": channel.name, "outcome": "handler_error",
                                   "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}), exc_info=exc)
            return None, "handler_error"

    def _finish_late(self, task: asyncio.Future[Any], channel: Channel, message: Message, key: str) -> None:
        self._late.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            _LOG.error(json.dumps({"channel": channel.name, "outcome": "late_handler_error",
                                   "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}))
            return
        reply = task.result()
        answer = self._render(channel, message, None if isinstance(reply, StreamingReply) else reply)
        cached = asyncio.create_task(self._store.complete(key, answer.to_cache(), JSON, channel.config.dedup_ttl))
        self._late.add(cached)
        cached.add_done_callback(self._late.discard)
        _LOG.warning(json.dumps({"channel": channel.name, "outcome": "late_reply_kept", "msg_type": message.msg_type,
                                 "dedup_key": message.dedup_key,
                                 "detail": "the handler answered after the deadline; the platform got no reply, "
                                           "send this one with the active message API"}))

    def _render(self, channel: Channel, message: Message, reply: Reply | None) -> _Answer:
        """Render the handler's reply once; a reply the platform would refuse becomes "no reply"."""
        if reply is None:
            return _Answer("none", "")
        if isinstance(reply, NoReply):
            return _Answer("raw", reply.body)
        try:
            return _Answer("reply", render_reply(reply, message))
        except WXCallbackError as exc:
            _LOG.error(json.dumps({"channel": channel.name, "outcome": "handler_error", "code": int(exc.code),
                                   "detail": f"the handler's reply cannot be sent: {exc}"}))
            return _Answer("error", "")

    def _replay_cached(self, exchange: _Exchange, message: Message, cached: CachedReply) -> CallbackResponse:
        response = self._send(exchange, message, _Answer.from_cache(cached.body))
        response.outcome = "duplicate"
        return response

    def _send(self, exchange: _Exchange, message: Message, answer: _Answer) -> CallbackResponse:
        if answer.kind in ("none", "error"):
            # "success" / empty body need no encryption in any mode (OA doc, WeCom doc 90238).
            return CallbackResponse(200, message.no_reply.body.encode(), TEXT)
        if answer.kind == "raw":
            return CallbackResponse(200, answer.text.encode(), TEXT)
        return self._encrypted_or_plain(exchange, answer.text)

    def _respond(self, exchange: _Exchange, message: Message, reply: Reply) -> CallbackResponse:
        return self._send(exchange, message, self._render(exchange.channel, message, reply))

    def _encrypted_or_plain(self, exchange: _Exchange, plaintext: str) -> CallbackResponse:
        channel = exchange.channel
        if not exchange.encrypted:
            return CallbackResponse(200, plaintext.encode(), XML)
        assert channel.crypto is not None
        # Echo the request nonce: required by Official Accounts and robots, allowed by WeCom.
        envelope = channel.crypto.encrypt(plaintext, exchange.nonce, reply_to=exchange.decrypted)
        content_type = JSON if channel.crypto.envelope is not EnvelopeFormat.XML else XML
        return CallbackResponse(200, envelope.encode(), content_type)

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown: let late handlers and streams finish, up to ``timeout``."""
        if self._late:
            await asyncio.wait(set(self._late), timeout=timeout)
        await self._streams.drain(timeout)


@dataclass(frozen=True)
class _Answer:
    """A rendered answer: "reply" (plaintext to encrypt), "raw" (sent as is), "none" or "error".

    This is what the dedup cache keeps; a retry's answer is encrypted again with the
    retry's own nonce and timestamp.
    """

    kind: str
    text: str

    def to_cache(self) -> bytes:
        return json.dumps({"kind": self.kind, "text": self.text}).encode()

    @classmethod
    def from_cache(cls, data: bytes) -> _Answer:
        entry = json.loads(data)
        return cls(str(entry["kind"]), str(entry["text"]))


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


def _required(query: dict[str, str], *names: str) -> tuple[str, ...]:
    missing = [name for name in names if name not in query]
    if missing:
        raise _Reject(400, "bad_query", f"query lacks {', '.join(missing)}")
    return tuple(query[name] for name in names)


def _plain_body(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(400, "rejected", f"body is not valid UTF-8 (byte {exc.start})", code=-40002) from None
