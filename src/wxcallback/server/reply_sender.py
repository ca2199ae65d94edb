"""Replies sent through the platforms' message APIs: late ones, and a handler's own messages.

A handler that answers after its channel's deadline has missed the passive reply: the
platform got "no reply". With ``late_reply = "send"`` the reply goes out through the API
that still reaches the user:

- a smart robot: the callback's ``response_url`` (valid about an hour, usable once; no token);
- an Official Account or mini program: the customer-service message API (within the 48-hour
  interaction window; errcode 45015 past it), with the account's access_token;
- a WeCom app: the app message API, with the app's access_token;
- a third party's tenant (a component's authorizer, a suite's corp): the same two APIs, with
  the tenant's own token from the third party's chain (server/third_party.py).

A forwarding channel's backend that answers a retried delivery (it was slower than
``forward_timeout``, or down) is in the same place: the delivery worker hands its reply to
``forwarded_reply``, which reads the user and the response_url from the stored message.

Every send is durable before it is tried: written to the store's outbox (the one forwarded
messages use, server/forward.py), tried at once, and on a transient failure (API down, 5xx,
errcode -1, a rate limit, no token) left to the delivery worker, which retries it with
backoff (1 s doubling to ``RETRY_CAP``, 10 s); a permanent refusal (any other errcode, a 4xx)
or ``late_reply_max_age`` passing makes it a dead letter, which ``wxcallback outbox
list/show/retry/drop`` handle as any other.
Each send writes one log line (``late_reply_sent``, ``late_reply_failed`` with the next try,
``late_reply_dead``) and counts ``wxcallback_reply_sends{channel,result}``; neither a secret,
an access_token nor a response_url is ever written.

A handler sends its own messages through the same sender::

    from wxcallback.server.reply_sender import current_sender

    async def answer(message):
        await current_sender().send("oa", message.source, TextReply("done"))
"""

from __future__ import annotations

import contextvars
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx

from ..messages import InvalidReplyError, Message, Platform, Reply, StreamingReply
from .access_token import INVALID_TOKEN_CODES, AccessTokens, Credential, TokenError, TokenSource
from .config import ChannelConfig, ChannelKind, ConfigError
from .forward import backoff, reply_of
from .observe import Metrics
from .outbound import UnsendableReplyError, send_body
from .stores import OutboxItem, Store
from .third_party import ThirdParties

__all__ = ["RETRY_CAP", "LateReplyPolicy", "ReplySender", "SendResult", "current_sender"]

_LOG = logging.getLogger("wxcallback.send")
# What marks an outbox item as a send of this module (forwarded messages start {"channel": …).
_MARK = b'{"send": '
# errcodes worth another try: system busy, and the rate limits (per minute, per day).
_TRANSIENT_CODES = frozenset({-1, 45009, 45011, 45033})
# An item this young, tried once, may still be in its inline try: the worker leaves it a moment.
_FRESH_GRACE = 5.0
# The platform's API down for a minute: the reply goes out at most ~12 s (10 s and jitter) after
# it is back, not up to 75 s with a backend's one-minute cap. A few tries a minute per queued send
# is nothing to the platform.
RETRY_CAP = 10.0
_CURRENT: contextvars.ContextVar[ReplySender | None] = contextvars.ContextVar("wxcallback_reply_sender",
                                                                               default=None)

LateReplyPolicy = str  # "send" | "keep" | "drop": what a reply that missed the deadline becomes


def current_sender() -> ReplySender:
    """The sender of the server running this handler (a handler called by ``wxcallback serve``,
    or by any CallbackServer); LookupError outside one."""
    sender = _CURRENT.get()
    if sender is None:
        raise LookupError("no reply sender here: current_sender() works inside a handler the server runs "
                          "(elsewhere use CallbackServer.reply_sender)")
    return sender


class SendResult(NamedTuple):
    """What one try of a send gave: ``sent``, else whether to give up (``permanent``) and why."""

    sent: bool
    detail: str
    permanent: bool = False
    errcode: int | None = None  # the platform's, when it answered one


@dataclass(frozen=True)
class _Target:
    """One channel as the sender sees it."""

    name: str
    platform: Platform
    late_reply: LateReplyPolicy
    max_age: float
    api_base: str
    credential: Credential | None
    agent_id: int | None
    third_party: bool = False  # sends as the message's tenant, with its token (ThirdParties)


def _target(config: ChannelConfig) -> _Target:
    credential = None
    receive_id = config.receive_id.reply_id or ""  # the AppID or CorpID the account answers as
    if config.kind is ChannelKind.WECOM_APP and config.corp_secret:
        credential = Credential(config.api_base, receive_id, config.corp_secret, wecom=True)
    elif config.app_secret:
        credential = Credential(config.api_base, receive_id, config.app_secret)
    if config.kind in (ChannelKind.COMPONENT, ChannelKind.WECOM_SUITE):
        # Each tenant's token comes from the chain; a suite's AgentID differs per corp (filled at send).
        third_party = bool(config.suite_secret if config.kind is ChannelKind.WECOM_SUITE else config.app_secret)
        return _Target(config.name, config.kind.platform, config.late_reply, config.late_reply_max_age,
                       config.api_base, None, 0 if config.kind is ChannelKind.WECOM_SUITE else None, third_party)
    return _Target(config.name, config.kind.platform, config.late_reply, config.late_reply_max_age,
                   config.api_base, credential, config.agent_id)


class ReplySender:
    """Sends replies through the platforms' message APIs for the channels of one server."""

    def __init__(self, store: Store, client: httpx.AsyncClient, channels: Sequence[ChannelConfig],
                 metrics: Metrics | None = None, tokens: AccessTokens | None = None, *,
                 timeout: float = 10.0) -> None:
        self._store = store
        self._client = client
        self._metrics = metrics
        self._tokens = tokens or AccessTokens(store, client)
        self._third_parties = ThirdParties(store, self._tokens, channels)
        self._timeout = timeout
        self._targets = {c.name: _target(c) for c in channels if not c.websocket}

    @property
    def tokens(self) -> AccessTokens:
        return self._tokens

    @property
    def third_parties(self) -> ThirdParties:
        """The component and suite channels' token chains (their tenants' tokens)."""
        return self._third_parties

    def policy(self, channel: str) -> LateReplyPolicy:
        """What a late reply of ``channel`` becomes ("keep" for a channel this sender does not know)."""
        target = self._targets.get(channel)
        return target.late_reply if target is not None else "keep"

    @property
    def queues(self) -> bool:
        """Whether any channel may queue sends (late_reply = "send", or credentials for proactive
        ones): the delivery worker must then run to retry them."""
        return any(t.late_reply == "send" or t.credential is not None or t.third_party
                   for t in self._targets.values()) or self._third_parties.queues

    def bind(self) -> contextvars.Token[ReplySender | None]:
        """Make this the ``current_sender()`` of what runs next in this context (a handler's task)."""
        return _CURRENT.set(self)

    @staticmethod
    def unbind(token: contextvars.Token[ReplySender | None]) -> None:
        _CURRENT.reset(token)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, channel: str, to_user: str, reply: Reply, *, response_url: str | None = None,
                   key: str | None = None, tenant: str = "") -> SendResult:
        """Send ``reply`` to ``to_user`` (OpenID, member UserID) through ``channel``'s message API.

        Durable: the send is in the outbox before it is tried, and retried there when the API
        fails for a moment, so a transient failure returns ``sent=False`` and still arrives.
        A robot channel sends to a callback's ``response_url`` instead of a user. ``key``
        makes a repeated call a no-op (default: every call is a new message). A component or
        suite channel sends as ``tenant`` (the authorizer's AppID, the corp's CorpID).
        UnsendableReplyError for a reply the API cannot carry, ConfigError for a channel
        without what sending needs.
        """
        target = self._targets.get(channel)
        if target is None:
            names = ", ".join(sorted(self._targets)) or "none"
            raise ConfigError(f"channels.{channel}: no such callback-URL channel (those: {names})")
        if target.platform is Platform.WECOM_ROBOT:
            if not response_url:
                raise ConfigError(f"channels.{channel}: a robot sends through a callback's response_url; pass one")
        elif target.third_party:
            self._third_parties.credential(channel, tenant)  # ConfigError without a tenant
        elif target.credential is None:
            needs = "corp_secret" if target.platform is Platform.WECOM_APP else "app_secret"
            raise ConfigError(f"channels.{channel}.{needs}: needed to send through the message API")
        body = send_body(target.platform, to_user, reply, agent_id=target.agent_id)
        return await self._persist_and_try(target, body, response_url or "", key or secrets.token_hex(16),
                                           "proactive", tenant if target.third_party else "")

    async def send_late(self, channel: str, message: Message, reply: Reply | StreamingReply,
                        dedup_key: str) -> SendResult | None:
        """Send a late handler's reply to the user who wrote ``message``; None when there is nothing
        to send or it cannot be sent (logged: late_reply_failed)."""
        return await self._send_late(channel, message.source, str(getattr(message, "response_url", "") or ""),
                                     message.msg_type, reply, dedup_key, message.tenant)

    async def forwarded_reply(self, item: OutboxItem, content: bytes) -> None:
        """A backend's reply to a retried delivery of forwarded ``item``: too late to be passive, so
        it is sent, kept (logged) or dropped as the channel's ``late_reply`` says.

        Everything comes from the stored item (channel, user, response_url, dedup key): the
        delivery worker may run in another process than the one that took the callback.
        """
        parcel = json.loads(item.payload)
        message = parcel.get("message") or {}
        dedup_key = str(parcel.get("dedup_key", ""))
        msg_type = str(message.get("msg_type") or "")
        platform = Platform.of(str(parcel.get("platform") or message.get("platform")))
        reply = reply_of(item.channel, platform, content)
        if reply is None:
            return
        policy = self.policy(item.channel)
        line = {"channel": item.channel, "msg_type": msg_type, "dedup_key": dedup_key}
        if policy == "send":
            cached = await self._store.wait_for(f"{item.channel}:dedup:{dedup_key}", 0)
            if cached is not None and json.loads(cached.body).get("kind") in ("reply", "raw"):
                # The platform got a passive reply to this message (an inline delivery answered in
                # time): a second answer from the backend is not sent on top of it.
                _LOG.info(json.dumps({**line, "outcome": "late_reply_dropped",
                                      "detail": "the platform already got a passive reply to this message"}))
                return
            await self._send_late(item.channel, str(message.get("source") or ""),
                                  str(message.get("response_url") or ""), msg_type, reply, dedup_key,
                                  str(parcel.get("tenant") or message.get("tenant") or ""))
        elif policy == "drop":
            _LOG.info(json.dumps({**line, "outcome": "late_reply_dropped"}))
        else:
            _LOG.warning(json.dumps({**line, "outcome": "late_reply_kept",
                                     "detail": "the backend answered a retried delivery; the platform got no reply, "
                                               "send this one with the active message API"}))

    async def _send_late(self, channel: str, to_user: str, response_url: str, msg_type: str,
                         reply: Reply | StreamingReply, dedup_key: str, tenant: str = "") -> SendResult | None:
        target = self._targets[channel]
        try:
            if isinstance(reply, StreamingReply):
                reply = await _whole_stream(reply)
            if target.platform is Platform.WECOM_ROBOT and not response_url:
                raise UnsendableReplyError("the callback carries no response_url")
            if target.platform is not Platform.WECOM_ROBOT and to_user in ("", "sys"):
                raise UnsendableReplyError("the callback comes from the platform itself, not from a user")
            if target.third_party and not tenant:
                # A notice on the auth / instruction URL: only "success" answers it, nobody reads a send.
                raise UnsendableReplyError("the callback names no tenant (a platform notice, or a path without "
                                           "{appid} / {corpid}): there is no tenant's user to send to")
            body = send_body(target.platform, to_user, reply, agent_id=target.agent_id)
        except InvalidReplyError as exc:  # the reply's type, or a stream's text past its limits
            self._count(channel, "refused")
            _LOG.error(json.dumps({"channel": channel, "outcome": "late_reply_failed", "msg_type": msg_type,
                                   "dedup_key": dedup_key, "detail": f"the late reply cannot be sent: {exc}"}))
            return None
        # One key per message: a second instance that ran the same message, or a backend answering
        # a second delivery of it, sends nothing more.
        return await self._persist_and_try(target, body, response_url, f"late:{dedup_key}", "late",
                                           tenant if target.third_party else "")

    async def _persist_and_try(self, target: _Target, body: dict[str, Any], url: str, key: str,
                               why: str, tenant: str = "") -> SendResult:
        send: dict[str, Any] = {"why": why, "platform": target.platform.value, "url": url, "body": body}
        if tenant:
            send["tenant"] = tenant
        payload = json.dumps({"send": send, "channel": target.name}, ensure_ascii=False).encode()
        item_id = await self._store.enqueue(target.name, payload, f"{target.name}:{key}")
        if not await self._store.remember_nonce(f"{target.name}:send-once:{key}", 24 * 3600.0):
            return SendResult(False, "already queued")  # the same send, queued before: the worker has it
        result = await self._try(target, url, body, tenant)
        if result.sent:
            await self._store.ack(item_id)
        elif result.permanent:
            await self._store.dead_letter(item_id, result.detail)
        self._log(target.name, why, item_id, 1, result, "queued for retry")
        return result

    # -- the delivery worker's part -----------------------------------------------------------

    def owns(self, item: OutboxItem) -> bool:
        """Whether ``item`` is a send of this module or a third party's exchange (else a forwarded message)."""
        return item.payload.startswith(_MARK) or self._third_parties.owns(item)

    async def deliver_queued(self, item: OutboxItem) -> int:
        """Try a queued send again; ack, retry later with backoff, or make it a dead letter."""
        if self._third_parties.owns(item):
            return await self._third_parties.deliver_queued(item)
        now = time.time()
        if now - item.enqueued_at < _FRESH_GRACE and item.attempts <= 1:
            await self._store.nack(item.id, item.enqueued_at + _FRESH_GRACE)
            return 0
        send = json.loads(item.payload)["send"]
        target = self._targets.get(item.channel)
        if target is None:
            # The channel left the configuration: keep the send, look again later.
            await self._store.nack(item.id, now + 60.0)
            return 0
        result = await self._try(target, str(send["url"]), send["body"], str(send.get("tenant", "")))
        age = now - item.enqueued_at
        if result.sent:
            await self._store.ack(item.id)
        elif result.permanent or age >= target.max_age:
            if not result.permanent:
                result = SendResult(False, f"unsent after {age:.0f} s (late_reply_max_age {target.max_age:g} s); "
                                           f"last: {result.detail}", True)
            await self._store.dead_letter(item.id, result.detail)
        else:
            delay = backoff(item.attempts, RETRY_CAP)
            await self._store.nack(item.id, now + delay)
            self._log(item.channel, str(send.get("why", "")), item.id, item.attempts, result,
                      f"next try in {delay:.1f} s")
            return 0
        self._log(item.channel, str(send.get("why", "")), item.id, item.attempts, result, "")
        return 1 if result.sent else 0

    # -- one try ------------------------------------------------------------------------------

    async def _try(self, target: _Target, url: str, body: dict[str, Any], tenant: str = "") -> SendResult:
        if target.platform is Platform.WECOM_ROBOT:
            return await self._post(url, body)
        path = "/cgi-bin/message/send" if target.platform is Platform.WECOM_APP else "/cgi-bin/message/custom/send"
        api = target.api_base + path
        try:
            credential: TokenSource
            if target.third_party and tenant:
                credential = self._third_parties.credential(target.name, tenant)
                if target.platform is Platform.WECOM_APP:
                    token = await self._tokens.token(credential)  # a first token exchanges, and learns the AgentID
                    body = {**body, "agentid": await self._third_parties.agent_id(target.name, tenant)}
            elif target.credential is not None:
                credential = target.credential
            else:
                return SendResult(False, "no credential configured for the message API", True)
            token = await self._tokens.token(credential)
            result = await self._post(api, body, token)
            if result.errcode in INVALID_TOKEN_CODES:
                # The stored token was refused: refresh once (unless refreshed elsewhere) and retry once.
                token = await self._tokens.token(credential, stale=token)
                result = await self._post(api, body, token)
                if result.errcode in INVALID_TOKEN_CODES:
                    return SendResult(False, result.detail + " (after a fresh access_token)", False, result.errcode)
        except TokenError as exc:
            return SendResult(False, str(exc), exc.permanent, exc.errcode)
        return result

    async def _post(self, url: str, body: dict[str, Any], token: str | None = None) -> SendResult:
        where = url.split("?", 1)[0]  # response_url's response_code and the token stay out of the detail
        try:
            response = await self._client.post(url, json=body, timeout=self._timeout,
                                               params={"access_token": token} if token is not None else None)
        except httpx.HTTPError as exc:
            return SendResult(False, f"{where} unreachable ({type(exc).__name__})")
        if response.status_code >= 500 or response.status_code in (408, 429):
            return SendResult(False, f"{where} answered {response.status_code}")
        if response.status_code != 200:
            return SendResult(False, f"{where} answered {response.status_code}", True)
        try:
            answer = response.json()
        except ValueError:
            return SendResult(False, f"{where} answered something other than JSON")
        errcode = answer.get("errcode", 0) if isinstance(answer, dict) else 0
        if not errcode:
            return SendResult(True, "")
        errmsg = str(answer.get("errmsg", ""))[:200]
        detail = f"errcode {errcode} {errmsg}".rstrip()
        permanent = errcode not in _TRANSIENT_CODES and errcode not in INVALID_TOKEN_CODES
        return SendResult(False, detail, permanent, errcode if isinstance(errcode, int) else None)

    # -- what is written about it -------------------------------------------------------------

    def _log(self, channel: str, why: str, item_id: str, attempts: int, result: SendResult, later: str) -> None:
        if result.sent:
            outcome, level, counted = "late_reply_sent", logging.INFO, "sent"
        elif result.permanent:
            outcome, level, counted = "late_reply_dead", logging.ERROR, "dead"
        else:
            outcome, level, counted = "late_reply_failed", logging.WARNING, "retry"
        self._count(channel, counted)
        line: dict[str, Any] = {"channel": channel, "outcome": outcome, "send": why, "id": item_id,
                                "attempts": attempts}
        if not result.sent:
            line["detail"] = result.detail + (f"; {later}" if later and not result.permanent else
                                              "; see: wxcallback outbox list" if result.permanent else "")
        _LOG.log(level, json.dumps(line, ensure_ascii=False))

    def _count(self, channel: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.reply_sends.labels(channel, result).inc()


async def _whole_stream(streaming: StreamingReply) -> Reply:
    """A robot stream that started too late to be polled: its whole text, as one reply."""
    state = streaming.first_reply()
    while not state.finish:
        state = await streaming.next_state(state)
    return state
