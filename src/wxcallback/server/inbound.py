"""The callback URL's protocol: HTTP in, a typed message to the dispatch, HTTP out.

For a POST: verify → decrypt (key ring) → replay guard → parse → dispatch.py → seal the
answer with the key that decrypted the request → respond. (The replay guard of an
encrypted request is its timestamp window, checked once the signature is known good; a
plaintext request also passes the nonce cache.)
For a GET: the URL check of the channel's kind, answered as bare text.

Every failure maps to a status here, once: signature or replay → 403, malformed → 400,
unknown path → 404, wrong method → 405, too large → 413 (read_body counts the body),
store down → 503. Bad input never yields a 500. A handler that raises is logged and
answered with the platform's "no reply", so the platform does not retry it three times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ..core import (
    DecryptedMessage,
    EnvelopeFormat,
    MessageCrypto,
    ReceiveIdError,
    SignatureError,
    Signer,
    WXCallbackError,
    extract_encrypt,
)
from ..channel import ChannelKind
from ..messages import Instruction, Message, parse_message
from .config import ChannelConfig
from .dispatch import Answer, Channel, Dispatcher
from .http import JSON, TEXT, XML, CallbackRequest, CallbackResponse, QueryError, parse_query
from .observe import Outcome
from .replay import ReplayError, ReplayGuard
from .stores import Store, StoreError
from .tickets import remember_ticket

__all__ = ["Endpoint", "Handled", "InboundProtocol", "status_for"]

# The Official Account sends a random number (19 digits seen); allow room, refuse text.
_MAX_ECHOSTR_DIGITS = 32
# A signature-only gateway's echostr is not documented as digits: token characters only
_GATEWAY_ECHOSTR = re.compile(r"[A-Za-z0-9._~=+/-]{1,128}")


def _plausible_echostr(echostr: str, kind: ChannelKind) -> bool:
    if kind is ChannelKind.OFFICIAL_ACCOUNT:
        return 0 < len(echostr) <= _MAX_ECHOSTR_DIGITS and echostr.isascii() and echostr.isdigit()
    return _GATEWAY_ECHOSTR.fullmatch(echostr) is not None

_HELD_ELSEWHERE = "another attempt holds this message; answered 503 so the platform retries after its lease"


def status_for(error: WXCallbackError) -> int:
    """The HTTP status for a library error: authentication failures 403, the rest 400."""
    if isinstance(error, (SignatureError, ReplayError, ReceiveIdError)):
        return 403
    return 400


class Handled(NamedTuple):
    """One request's response, and the outcome the log and metrics record.

    What ``CallbackServer.respond`` returns; an adapter writes back ``response`` (the
    properties read through to it and to the record's outcome word and channel).
    """

    response: CallbackResponse
    record: Outcome

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def body(self) -> bytes:
        return self.response.body

    @property
    def content_type(self) -> str:
        return self.response.content_type

    @property
    def outcome(self) -> str:
        return self.record.outcome

    @property
    def channel(self) -> str:
        return self.record.channel


@dataclass(frozen=True)
class Endpoint:
    """One callback URL: its configuration, what opens its requests, and its channel."""

    config: ChannelConfig
    crypto: MessageCrypto | None
    signer: Signer
    replay: ReplayGuard
    channel: Channel

    @property
    def name(self) -> str:
        return self.config.name


class _Reject(Exception):
    def __init__(self, status: int, outcome: str, detail: str, code: int = 0) -> None:
        super().__init__(detail)
        self.status, self.outcome, self.detail, self.code = status, outcome, detail, code


@dataclass(frozen=True)
class _Opened:
    """A verified request: what sealing its answer needs."""

    nonce: str
    decrypted: DecryptedMessage | None  # None: a plaintext request, answered in clear


class InboundProtocol:
    """Answers CallbackRequests for a set of endpoints, handing their messages to one Dispatcher."""

    def __init__(self, endpoints: list[Endpoint], dispatcher: Dispatcher, store: Store | None = None) -> None:
        self._endpoints = {endpoint.config.path: endpoint for endpoint in endpoints}
        self._dispatcher = dispatcher
        self._store = store  # where suite / component tickets are kept (tickets.py)

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown: let late handlers and streams finish, up to ``timeout``."""
        await self._dispatcher.drain(timeout)

    def endpoint_for(self, path: str) -> Endpoint | None:
        return self._endpoints.get(path) or self._endpoints.get(path.rstrip("/") or "/")

    async def handle(self, request: CallbackRequest) -> Handled:
        endpoint = self.endpoint_for(request.path)
        if endpoint is None:
            return _refusal(404, b"unknown callback path", "-", "unknown_path",
                            f"no channel is configured for {request.path[:200]!r}")
        name = endpoint.name
        try:
            query = parse_query(request.query_string)
            if request.method in ("GET", "HEAD"):
                return self._verify_url(endpoint, query)
            if request.method == "POST":
                return await self._callback(endpoint, query, request.body)
            raise _Reject(405, "method_not_allowed", f"{request.method} is not a callback method")
        except _Reject as reject:
            # The detail goes to the log; the body names the refusal without echoing input.
            body = b"forbidden" if reject.status == 403 else f"refused: {reject.outcome}".encode()
            return _refusal(reject.status, body, name, reject.outcome, reject.detail, reject.code)
        except QueryError as exc:
            return _refusal(400, b"bad query string", name, "bad_query", str(exc), int(exc.code))
        except StoreError as exc:
            # The store is down: answer 503 so the platform retries later, rather than lose it.
            return _refusal(503, b"temporarily unavailable", name, "store_error", str(exc), int(exc.code))
        except WXCallbackError as exc:
            status = status_for(exc)
            return _refusal(status, b"forbidden" if status == 403 else b"bad request", name,
                            "replay" if isinstance(exc, ReplayError) else "rejected", str(exc), int(exc.code))

    # -- GET: URL verification ------------------------------------------------------

    def _verify_url(self, endpoint: Endpoint, query: dict[str, str]) -> Handled:
        if endpoint.config.kind.plain_url_check:
            # The Official Account echostr is plaintext in every mode: verify, echo verbatim.
            signature, timestamp, nonce, echostr = _required(query, "signature", "timestamp", "nonce", "echostr")
            endpoint.signer.verify_signature(signature, timestamp, nonce)
            endpoint.replay.check_timestamp(timestamp)
            # The echostr is not signed: echo only what a platform sends, so the URL cannot
            # be made to reflect arbitrary content (it is answered text/plain, nosniff, too).
            if not _plausible_echostr(echostr, endpoint.config.kind):
                raise _Reject(400, "bad_query", f"echostr {echostr[:20]!r} is not what the platform sends")
            plaintext = echostr
        else:
            assert endpoint.crypto is not None
            msg_signature, timestamp, nonce, echostr = _required(query, "msg_signature", "timestamp", "nonce",
                                                                 "echostr")
            plaintext = endpoint.crypto.verify_url(msg_signature, timestamp, nonce, echostr)
            endpoint.replay.check_timestamp(timestamp)
        # The bare plaintext: no quotes, BOM or newline (a platform compares the body byte for byte).
        return Handled(CallbackResponse(200, plaintext.encode(), TEXT), Outcome("url_verified", channel=endpoint.name))

    # -- POST: callbacks --------------------------------------------------------------

    async def _callback(self, endpoint: Endpoint, query: dict[str, str], body: bytes) -> Handled:
        opened = await self._open(endpoint, query, body)
        plaintext = opened.decrypted.text if opened.decrypted is not None else _plain_body(body)
        message = parse_message(plaintext, endpoint.channel.platform)
        if self._store is not None and isinstance(message, Instruction):
            await remember_ticket(self._store, endpoint.name, message)  # before any handler can fail
        dispatched = await self._dispatcher.dispatch(endpoint.channel, message)
        answer = dispatched.answer
        record = Outcome(dispatched.outcome, channel=endpoint.name,
                         msg_type=message.msg_type + (f"/{message.event}" if message.event else ""),
                         detail="" if answer is not None else _HELD_ELSEWHERE,
                         plaintext=plaintext if endpoint.config.debug else None)
        if answer is None:
            return Handled(CallbackResponse(503, b"in progress elsewhere, retry", TEXT), record)
        return Handled(self._seal(endpoint, opened, message, answer), record)

    async def _open(self, endpoint: Endpoint, query: dict[str, str], body: bytes) -> _Opened:
        """Verify the request, decrypt it, pass the replay guard."""
        config = endpoint.config
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
            assert endpoint.crypto is not None
            msg_signature, timestamp, nonce = _required(query, "msg_signature", "timestamp", "nonce")
            encrypt = extract_encrypt(body, endpoint.crypto.envelope)
            # Verifies msg_signature first, so a forged request never reaches the AES code.
            decrypted = endpoint.crypto.decrypt_ciphertext(encrypt, msg_signature, timestamp, nonce)
            # The signature binds timestamp, nonce and ciphertext: the window is all a
            # replay check adds here (see replay.py).
            endpoint.replay.check_timestamp(timestamp)
            return _Opened(nonce, decrypted)
        signature, timestamp, nonce = _required(query, "signature", "timestamp", "nonce")
        endpoint.signer.verify_signature(signature, timestamp, nonce)
        await endpoint.replay.check(timestamp, nonce, signature, body)
        return _Opened(nonce, None)

    def _seal(self, endpoint: Endpoint, opened: _Opened, message: Message, answer: Answer) -> CallbackResponse:
        if answer.kind in ("none", "error"):
            # "success" / empty body need no encryption in any mode (OA doc, WeCom doc 90238).
            return CallbackResponse(200, message.no_reply.body.encode(), TEXT)
        if answer.kind == "raw":
            return CallbackResponse(200, answer.text.encode(), TEXT)
        if opened.decrypted is None:
            return CallbackResponse(200, answer.text.encode(), XML)
        crypto = endpoint.crypto
        assert crypto is not None
        # Echo the request nonce: required by Official Accounts and robots, allowed by WeCom.
        envelope = crypto.encrypt(answer.text, opened.nonce, reply_to=opened.decrypted)
        return CallbackResponse(200, envelope.encode(), XML if crypto.envelope is EnvelopeFormat.XML else JSON)


def _refusal(status: int, body: bytes, channel: str, outcome: str, detail: str, code: int = 0) -> Handled:
    return Handled(CallbackResponse(status, body, TEXT), Outcome(outcome, code, detail, channel))


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
