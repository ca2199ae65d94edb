"""The callback URL's protocol: HTTP in, a typed message to the dispatch, HTTP out.

For a POST: verify → decrypt (key ring) → replay guard → parse → dispatch.py → seal the
answer with the key that decrypted the request → respond. (The replay guard of an
encrypted request is its timestamp window, checked once the signature is known good; a
plaintext request also passes the nonce cache.)
For a GET: the URL check of the channel's kind, answered as bare text.

The path picks the endpoint (routes.py): an exact path, or a template whose captured
segment is the request's tenant (an authorized account of a third party). When several
WeCom channels share a path, the one whose Token verifies the signature answers, and
between apps under one Token the envelope's AgentID decides; each candidate costs one SHA-1.

Every failure maps to a status here, once: signature or replay → 403, malformed → 400,
unknown path → 404, wrong method → 405, too large → 413 (read_body counts the body),
store down → 503. Bad input never yields a 500. A handler that raises is logged and
answered with the platform's "no reply", so the platform does not retry it three times.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..core import (
    DecryptedMessage,
    EnvelopeFormat,
    MessageCrypto,
    ReceiveIdError,
    ReceiveIdPolicy,
    SignatureError,
    Signer,
    WXCallbackError,
    extract_encrypt,
)
from ..core.safexml import parse_flat, parse_xml
from ..channel import ChannelKind
from ..messages import Instruction, Message, parse_message
from .config import ChannelConfig
from .dispatch import Answer, Channel, Dispatcher
from .http import JSON, TEXT, XML, CallbackRequest, CallbackResponse, QueryError, parse_query
from .observe import Outcome
from .replay import ReplayError, ReplayGuard
from .routes import Route, RouteTable
from .stores import Store, StoreError
from .tickets import remember_ticket

__all__ = ["Endpoint", "Handled", "InboundProtocol", "status_for"]

# The Official Account sends a random number (19 digits seen); allow room, refuse text.
_MAX_ECHOSTR_DIGITS = 32
# A signature-only gateway's echostr is not documented as digits: token characters only
_GATEWAY_ECHOSTR = re.compile(r"[A-Za-z0-9._~=+/-]{1,128}")


def _plausible_echostr(echostr: str, kind: ChannelKind) -> bool:
    if kind in (ChannelKind.OFFICIAL_ACCOUNT, ChannelKind.COMPONENT):
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
    """One callback URL: its configuration, what opens its requests, and its channel.

    ``path`` is the path or template served ("": the channel's ``path``). ``url_check``
    opens the GET echostr when it is sealed for another id than the POSTs (a WeCom suite's
    URL checks carry the provider's CorpID). ``tenant_is_receive_id``: a POST's frame must
    carry the tenant the path captured (a suite's data callbacks, one corp each).
    """

    config: ChannelConfig
    crypto: MessageCrypto | None
    signer: Signer
    replay: ReplayGuard
    channel: Channel
    path: str = ""
    url_check: MessageCrypto | None = None
    tenant_is_receive_id: bool = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def served_path(self) -> str:
        return self.path or self.config.path


class _Reject(Exception):
    def __init__(self, status: int, outcome: str, detail: str, code: int = 0) -> None:
        super().__init__(detail)
        self.status, self.outcome, self.detail, self.code = status, outcome, detail, code


class _Opened(NamedTuple):
    """A verified request: what sealing its answer needs."""

    nonce: str
    decrypted: DecryptedMessage | None  # None: a plaintext request, answered in clear


class InboundProtocol:
    """Answers CallbackRequests for a set of endpoints, handing their messages to one Dispatcher."""

    def __init__(self, endpoints: list[Endpoint], dispatcher: Dispatcher, store: Store | None = None,
                 notices: Callable[[str, Message], Awaitable[None]] | None = None) -> None:
        self._routes = RouteTable((endpoint.served_path, endpoint) for endpoint in endpoints)
        self._dispatcher = dispatcher
        self._store = store  # where suite / component tickets are kept (tickets.py)
        # A third party's authorization notices (server/third_party.py): kept before the answer.
        self._notices = notices

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown: let late handlers and streams finish, up to ``timeout``."""
        await self._dispatcher.drain(timeout)

    def endpoint_for(self, path: str) -> Endpoint | None:
        """The endpoint of ``path`` (the first, when channels share it), or None."""
        return self._routes.first(path)

    async def handle(self, request: CallbackRequest) -> Handled:
        route = self._routes.match(request.path)
        if route is None:
            return _refusal(404, b"unknown callback path", "-", "unknown_path", self._routes.miss(request.path))
        handled = await self._answer(route, request)
        if route.tenant and not handled.record.tenant:
            handled = Handled(handled.response, handled.record._replace(tenant=route.tenant))
        return handled

    async def _answer(self, route: Route[Endpoint], request: CallbackRequest) -> Handled:
        endpoint = route.candidates[0]
        name = endpoint.name
        try:
            query = parse_query(request.query_string)
            if request.method not in ("GET", "HEAD", "POST"):
                raise _Reject(405, "method_not_allowed", f"{request.method} is not a callback method")
            if len(route.candidates) > 1:
                endpoint = _choose(route.candidates, request.method == "POST", query, request.body)
                name = endpoint.name
            if request.method == "POST":
                return await self._callback(endpoint, query, request.body, route.tenant,
                                            shared=len(route.candidates) > 1)
            return self._verify_url(endpoint, query)
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
            crypto = endpoint.url_check or endpoint.crypto
            assert crypto is not None
            msg_signature, timestamp, nonce, echostr = _required(query, "msg_signature", "timestamp", "nonce",
                                                                 "echostr")
            plaintext = crypto.verify_url(msg_signature, timestamp, nonce, echostr)
            endpoint.replay.check_timestamp(timestamp)
        # The bare plaintext: no quotes, BOM or newline (a platform compares the body byte for byte).
        return Handled(CallbackResponse(200, plaintext.encode(), TEXT), Outcome("url_verified", channel=endpoint.name))

    # -- POST: callbacks --------------------------------------------------------------

    async def _callback(self, endpoint: Endpoint, query: dict[str, str], body: bytes, tenant: str = "",
                        shared: bool = False) -> Handled:
        opened = await self._open(endpoint, query, body, tenant)
        plaintext = opened.decrypted.text if opened.decrypted is not None else _plain_body(body)
        message = parse_message(plaintext, endpoint.channel.platform)
        message.tenant = tenant
        agent_id = endpoint.config.agent_id
        decrypted_agent = str(message.raw.get("AgentID", "")).strip()
        # Some app callbacks carry no AgentID (contact changes of the 通讯录 app): that is only
        # a mismatch where the envelope's AgentID chose this channel among several.
        if agent_id is not None and decrypted_agent != str(agent_id) and (decrypted_agent or shared):
            # The envelope's AgentID chose this channel, but only the decrypted one is signed.
            raise _Reject(403, "agent_mismatch", f"the decrypted message is not for AgentID {agent_id} "
                          "(the envelope said it was): a forged envelope, or two apps with one key")
        if self._store is not None and isinstance(message, Instruction):
            await remember_ticket(self._store, endpoint.name, message, tenant)  # before any handler can fail
            if self._notices is not None:
                await self._notices(endpoint.name, message)
        dispatched = await self._dispatcher.dispatch(endpoint.channel, message, tenant=tenant)
        answer = dispatched.answer
        record = Outcome(dispatched.outcome, channel=endpoint.name, tenant=tenant,
                         msg_type=message.msg_type + (f"/{message.event}" if message.event else ""),
                         detail="" if answer is not None else _HELD_ELSEWHERE,
                         plaintext=plaintext if endpoint.config.debug else None)
        if answer is None:
            return Handled(CallbackResponse(503, b"in progress elsewhere, retry", TEXT), record)
        return Handled(self._seal(endpoint, opened, message, answer), record)

    async def _open(self, endpoint: Endpoint, query: dict[str, str], body: bytes, tenant: str = "") -> _Opened:
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
            if endpoint.tenant_is_receive_id:
                # The console's $CORPID$ names the corp the frame is sealed for (doc 97172).
                ReceiveIdPolicy.exact(tenant).check(decrypted.receive_id)
            if tenant and not endpoint.tenant_is_receive_id:
                # An open-platform tenant is named by the path alone: every account's messages
                # are sealed for the platform and no signature covers the path. The nonce is
                # spent for all the channel's tenants at once, so a request captured on one
                # account's URL is refused on another's; its own retries pass.
                await endpoint.replay.check(timestamp, nonce, msg_signature, b"%s\0%s" % (tenant.encode(), body))
            else:
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


def _choose(candidates: tuple[Endpoint, ...], post: bool, query: dict[str, str], body: bytes) -> Endpoint:
    """The channel among those sharing a path whose Token signed the request (then AgentID)."""
    msg_signature, timestamp, nonce = _required(query, "msg_signature", "timestamp", "nonce")
    crypto = candidates[0].crypto
    assert crypto is not None  # only always-encrypted WeCom kinds share a path (config.py)
    signed = extract_encrypt(body, crypto.envelope) if post else _required(query, "echostr")[0]
    matched = [e for e in candidates if e.signer.is_valid(msg_signature, timestamp, nonce, signed)]
    names = ", ".join(e.name for e in candidates)
    if not matched:
        raise _Reject(403, "rejected", f"msg_signature matches none of the channels sharing this path ({names}): "
                      "check their Tokens", code=-40001)
    if len(matched) == 1:
        return matched[0]
    if not post:
        # A URL check has no AgentID: the candidate whose key opens the echostr answers it.
        for endpoint in matched:
            try:
                (endpoint.url_check or endpoint.crypto or crypto).verify_url(msg_signature, timestamp, nonce, signed)
                return endpoint
            except WXCallbackError:
                continue
        return matched[0]
    agent = _envelope_agent_id(body)
    if agent is None:
        raise _Reject(400, "rejected", f"the envelope has no AgentID, which must tell apart {names} "
                      "(they share a path and a Token)", code=-40002)
    for endpoint in matched:
        if str(endpoint.config.agent_id) == agent:
            return endpoint
    configured = ", ".join(f"{e.name}={e.config.agent_id}" for e in matched)
    raise _Reject(404, "unknown_agent", f"AgentID {agent[:20]!r} matches no channel on this path "
                  f"(configured: {configured}): add a channel with that agent_id")


def _envelope_agent_id(body: bytes) -> str | None:
    """The AgentID of a WeCom XML envelope (not signed: checked again after decryption)."""
    fields = parse_flat(body)
    if fields is not None:
        value = fields.get("AgentID")
        return value.strip() if value is not None else None
    try:
        element = parse_xml(body, what="envelope").find("AgentID")
    except WXCallbackError:
        return None
    return element.text.strip() if element is not None else None


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
