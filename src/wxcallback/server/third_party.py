"""The third parties' token chains: a component's and its authorizers', a suite's and its corps'.

An open-platform component (``platform = "component"``) calls the API for each account that
authorized it; a WeCom suite (``platform = "wecom-suite"``) for each corp that installed it.
Each chain starts from the ticket the platform pushes every ten minutes (tickets.py):

- component: ``POST /cgi-bin/component/api_component_token`` ``{component_appid,
  component_appsecret, component_verify_ticket}`` → component_access_token; an ``authorized`` /
  ``updateauthorized`` notice's AuthorizationCode → ``api_query_auth`` → the authorizer's
  access token and its ``authorizer_refresh_token``, which does not expire and is kept;
  ``api_authorizer_token`` with it → a new authorizer_access_token (and maybe a new refresh token).
- suite: ``POST /cgi-bin/service/get_suite_token`` ``{suite_id, suite_secret, suite_ticket}`` →
  suite_access_token; a ``create_auth`` notice's AuthCode → ``get_permanent_code`` → the
  corp, its permanent code and the suite's AgentID there; ``get_corp_token`` → the corp's token.

Every token is cached and refreshed single-flight through AccessTokens (access_token.py).

A notice is answered ``success`` at once: its code is kept in the store and an exchange item
put in the outbox (the one late replies use) before the answer, then exchanged in the
background; a failure (no ticket yet, API down) leaves the item to the delivery worker, which
retries it until the code expires (a dead letter then: the account must authorize again).
A retried notice adds nothing (the outbox item's key is the code's digest) and a code is
exchanged once (a marker, under a lease). ``unauthorized`` / ``cancel_auth`` replace the grant
with a tombstone: sends to that tenant become dead letters saying so. Neither a secret, a
code, a refresh token, a permanent code nor a token is written in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..channel import ChannelKind
from ..messages import (
    AuthorizedInstruction,
    CancelAuthInstruction,
    CreateAuthInstruction,
    Message,
    ResetPermanentCodeInstruction,
    UnauthorizedInstruction,
)
from .access_token import INVALID_TOKEN_CODES, AccessTokens, Fetched, TokenError, answer_field, fetched_from
from .config import ChannelConfig, ConfigError
from .forward import backoff
from .stores import OutboxItem, Store
from .tickets import latest_ticket

__all__ = ["ComponentCredential", "SuiteCredential", "TenantCredential", "ThirdParties"]

_LOG = logging.getLogger("wxcallback.third_party")
# What marks an outbox item as an authorization to exchange (sends start {"send": …).
_MARK = b'{"grant": '
# A refresh token or permanent code does not expire: kept "for ever" (the store wants a TTL).
_GRANT_TTL = 10 * 365 * 86400.0
# How long an exchange is retried when the notice gives no expiry (the open platform's carries
# AuthorizationCodeExpiredTime; WeCom's AuthCode says nothing, and is short-lived): then a dead letter.
_CODE_TTL = 3600.0
# How long a code exchanged is remembered, so that a late retry of its notice does nothing.
_DONE_TTL = 7 * 86400.0
_FRESH_GRACE = 5.0
# A component or suite token the API refuses: one refresh, one more try. WeCom suites answer
# 40082 (invalid suite_token) and 42009 (suite_token expired) besides the common codes.
_PARENT_INVALID = INVALID_TOKEN_CODES | {40082, 42009}
# Worth another try: busy, rate limits, and the ticket codes (the next push replaces it).
_TRANSIENT = _PARENT_INVALID | {-1, 45009, 45011, 61005, 61006, 40085}


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class ComponentCredential:
    """An open-platform component: its AppID and AppSecret, the channel that receives its ticket."""

    api_base: str
    app_id: str
    secret: str = field(repr=False)
    channel: str

    @property
    def cache_name(self) -> str:
        return f"component-token:{_digest(self.api_base, self.app_id, self.secret)}"

    async def fetch(self, tokens: AccessTokens) -> Fetched:
        ticket = await latest_ticket(tokens.store, self.channel, self.app_id)
        if ticket is None:
            raise TokenError(f"channels.{self.channel}: no component_verify_ticket has arrived yet (WeChat pushes "
                             "one to auth_path every 10 minutes once the platform is set up); tried again later")
        url = f"{self.api_base}/cgi-bin/component/api_component_token"
        answer = await tokens.call("POST", url, json_body={
            "component_appid": self.app_id, "component_appsecret": self.secret,
            "component_verify_ticket": ticket.value})
        return fetched_from(answer, "component_access_token", url)


@dataclass(frozen=True)
class SuiteCredential:
    """A WeCom suite: its SuiteID and Secret, the channel that receives its suite_ticket."""

    api_base: str
    suite_id: str
    secret: str = field(repr=False)
    channel: str

    @property
    def cache_name(self) -> str:
        return f"suite-token:{_digest(self.api_base, self.suite_id, self.secret)}"

    async def fetch(self, tokens: AccessTokens) -> Fetched:
        ticket = await latest_ticket(tokens.store, self.channel, self.suite_id)
        if ticket is None:
            raise TokenError(f"channels.{self.channel}: no suite_ticket has arrived yet (WeCom pushes one to "
                             "instruction_path every 10 minutes); tried again later")
        url = f"{self.api_base}/cgi-bin/service/get_suite_token"
        answer = await tokens.call("POST", url, json_body={
            "suite_id": self.suite_id, "suite_secret": self.secret, "suite_ticket": ticket.value})
        return fetched_from(answer, "suite_access_token", url)


Parent = ComponentCredential | SuiteCredential


def _first_agent_id(answer: dict[str, Any]) -> int | None:
    """The AgentID get_permanent_code granted (auth_info.agent[0].agentid), None if it names none."""
    auth_info = answer.get("auth_info")
    agents = auth_info.get("agent") if isinstance(auth_info, dict) else None
    first = agents[0] if isinstance(agents, list) and agents else None
    agent_id = first.get("agentid") if isinstance(first, dict) else None
    if isinstance(agent_id, bool) or not isinstance(agent_id, (int, str)) or not str(agent_id).isdigit():
        return None
    return int(agent_id)


class Grant(NamedTuple):
    """What an authorization left: the refresh token or permanent code (``secret``), or a tombstone."""

    secret: str
    agent_id: int | None
    revoked_at: float | None
    code: str  # digest of the code it came from

    def __repr__(self) -> str:
        return f"Grant(agent_id={self.agent_id!r}, revoked_at={self.revoked_at!r})"


def _grant_key(channel: str, tenant: str) -> str:
    return f"grant:{channel}/{tenant}"


async def _read_grant(store: Store, channel: str, tenant: str) -> Grant | None:
    data = await store.get_value(_grant_key(channel, tenant))
    if data is None:
        return None
    entry = json.loads(data)
    revoked = entry.get("revoked_at")
    agent = entry.get("agent_id")
    return Grant(str(entry.get("secret", "")), int(agent) if agent is not None else None,
                 float(revoked) if revoked is not None else None, str(entry.get("code", "")))


async def _write_grant(store: Store, channel: str, tenant: str, **entry: Any) -> None:
    await store.put_value(_grant_key(channel, tenant), json.dumps(entry).encode(), _GRANT_TTL)


async def _with_parent(tokens: AccessTokens, parent: Parent,
                       call: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """``call`` with the parent's token; refused as invalid: one fresh token, one more try."""
    token = await tokens.token(parent)
    try:
        return await call(token)
    except TokenError as exc:
        if exc.errcode not in _PARENT_INVALID:
            raise
    return await call(await tokens.token(parent, stale=token))


@dataclass(frozen=True)
class TenantCredential:
    """One tenant's token: an authorizer's authorizer_access_token, or a corp's access token."""

    parent: Parent
    tenant: str

    @property
    def cache_name(self) -> str:
        return f"tenant-token:{_digest(self.parent.cache_name, self.tenant)}"

    async def fetch(self, tokens: AccessTokens) -> Fetched:
        channel = self.parent.channel
        grant = await _read_grant(tokens.store, channel, self.tenant)
        if grant is None:
            # A chain broken higher up (no ticket yet) is the reason to give: its code cannot be exchanged either.
            await tokens.token(self.parent)
            raise TokenError(f"channels.{channel}: {self.tenant} has no authorization here yet (no notice received, "
                             "or its code still waits in the outbox to be exchanged); tried again later")
        if grant.revoked_at is not None:
            raise TokenError(f"channels.{channel}: {self.tenant} revoked its authorization "
                             f"({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(grant.revoked_at))} UTC)",
                             permanent=True)
        if not grant.secret:
            raise TokenError(f"channels.{channel}: {self.tenant}'s authorization gave no refresh token (the "
                             "account granted no API permission)", permanent=True)
        base = self.parent.api_base
        if isinstance(self.parent, ComponentCredential):
            url = f"{base}/cgi-bin/component/api_authorizer_token"
            body = {"component_appid": self.parent.app_id, "authorizer_appid": self.tenant,
                    "authorizer_refresh_token": grant.secret}
            answer = await _with_parent(tokens, self.parent, lambda token: tokens.call(
                "POST", url, params={"component_access_token": token}, json_body=body))
            renewed = answer.get("authorizer_refresh_token")
            if isinstance(renewed, str) and renewed and renewed != grant.secret:
                # The old one may stop working: keep the new one before anything else can fail.
                await _write_grant(tokens.store, channel, self.tenant, secret=renewed, agent_id=grant.agent_id,
                                   code=grant.code)
            key = "authorizer_access_token"
        else:
            url = f"{base}/cgi-bin/service/get_corp_token"
            body = {"auth_corpid": self.tenant, "permanent_code": grant.secret}
            answer = await _with_parent(tokens, self.parent, lambda token: tokens.call(
                "POST", url, params={"suite_access_token": token}, json_body=body))
            key = "access_token"
        return fetched_from(answer, key, url)


class Exchanged(NamedTuple):
    """What one try of an exchange gave: ``done``, else whether to give up (``permanent``) and why."""

    done: bool
    detail: str
    permanent: bool = False


class ThirdParties:
    """The token chains of a server's component and suite channels (those with their secret)."""

    def __init__(self, store: Store, tokens: AccessTokens, channels: Sequence[ChannelConfig]) -> None:
        self._store = store
        self._tokens = tokens
        self._parents: dict[str, Parent] = {}
        for config in channels:
            if config.kind is ChannelKind.COMPONENT and config.app_secret:
                component = config.receive_id.reply_id or ""
                self._parents[config.name] = ComponentCredential(config.api_base, component, config.app_secret,
                                                                 config.name)
            elif config.kind is ChannelKind.WECOM_SUITE and config.suite_secret:
                self._parents[config.name] = SuiteCredential(config.api_base, config.suite_id, config.suite_secret,
                                                             config.name)
        self._holder = f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self._background: set[asyncio.Task[None]] = set()

    @property
    def queues(self) -> bool:
        return bool(self._parents)

    def credential(self, channel: str, tenant: str) -> TenantCredential:
        """The source of ``tenant``'s token on ``channel``; ConfigError when the channel has no chain."""
        parent = self._parents.get(channel)
        if parent is None:
            names = ", ".join(sorted(self._parents)) or "none"
            raise ConfigError(f"channels.{channel}: not a component or wecom-suite channel with its secret "
                              f"(app_secret / suite_secret) (those: {names})")
        if not tenant:
            raise ConfigError(f"channels.{channel}: a third party's token is per tenant: name the AppID or CorpID")
        return TenantCredential(parent, tenant)

    async def token(self, channel: str, tenant: str, *, stale: str | None = None) -> str:
        """``tenant``'s token (authorizer_access_token, or the corp's access token); TokenError when
        none can be had (``permanent`` once the tenant revoked its authorization)."""
        return await self._tokens.token(self.credential(channel, tenant), stale=stale)

    async def agent_id(self, channel: str, tenant: str) -> int | None:
        """The suite's AgentID in ``tenant``'s corp (from get_permanent_code), None if not known yet."""
        grant = await _read_grant(self._store, channel, tenant)
        return grant.agent_id if grant is not None else None

    # -- notices --------------------------------------------------------------------------------

    async def notice(self, channel: str, message: Message) -> None:
        """Act on an authorization notice: keep its code for the exchange, or revoke. Called before
        the notice is answered; the exchange itself runs in the background."""
        if channel not in self._parents:
            return
        if isinstance(message, AuthorizedInstruction):  # authorized, updateauthorized
            expired = float(message.authorization_code_expired_time or 0)
            await self._keep_code(channel, message.authorization_code, message.authorizer_app_id,
                                  expired if expired > time.time() else time.time() + _CODE_TTL)
        elif isinstance(message, (CreateAuthInstruction, ResetPermanentCodeInstruction)):
            await self._keep_code(channel, message.auth_code, message.auth_corp_id or "", time.time() + _CODE_TTL)
        elif isinstance(message, UnauthorizedInstruction):
            await self.revoke(channel, message.authorizer_app_id, message.info_type)
        elif isinstance(message, CancelAuthInstruction) and message.auth_corp_id:
            await self.revoke(channel, message.auth_corp_id, message.info_type)

    async def revoke(self, channel: str, tenant: str, why: str) -> None:
        """``tenant`` no longer authorizes ``channel``: its token and grant are gone, sends to it refused."""
        if not tenant:
            return
        await _write_grant(self._store, channel, tenant, revoked_at=time.time(), why=why)
        await self._tokens.forget(self.credential(channel, tenant))
        _LOG.info(json.dumps({"channel": channel, "outcome": "authorization_revoked", "tenant": tenant,
                              "detail": why}))

    async def _keep_code(self, channel: str, code: str, tenant: str, expires_at: float) -> None:
        if not code:
            return
        digest = _digest(channel, code)
        key = f"auth-code:{channel}:{digest}"
        # A retried notice keeps the first arrival's time (a revocation between them must stand).
        retried = await self._store.get_value(key) is not None
        if not retried:
            kept = {"code": code, "received_at": time.time()}
            await self._store.put_value(key, json.dumps(kept).encode(), max(expires_at - time.time(), 1.0))
        payload = json.dumps({"grant": {"code": digest, "tenant": tenant, "expires_at": expires_at},
                              "channel": channel}).encode()
        # The same code is the same item: a retried notice queues nothing more.
        item_id = await self._store.enqueue(channel, payload, f"{channel}:grant:{digest}")
        if retried:
            return
        task = asyncio.ensure_future(self._exchange_now(item_id, channel, digest, tenant))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _exchange_now(self, item_id: str, channel: str, digest: str, tenant: str) -> None:
        try:
            result = await self._exchange(channel, digest)
        except Exception as exc:  # the store failed: the item waits for the delivery worker
            result = Exchanged(False, f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            if result.done:
                await self._store.ack(item_id)
            elif result.permanent:
                await self._store.dead_letter(item_id, result.detail)
        except Exception:
            pass  # the worker will find the item
        self._log(channel, tenant, 1, result, "retried by the delivery worker")

    # -- the delivery worker's part -------------------------------------------------------------

    def owns(self, item: OutboxItem) -> bool:
        return item.payload.startswith(_MARK)

    async def deliver_queued(self, item: OutboxItem) -> int:
        now = time.time()
        if now - item.enqueued_at < _FRESH_GRACE and item.attempts <= 1:
            await self._store.nack(item.id, item.enqueued_at + _FRESH_GRACE)  # the inline try may be running
            return 0
        grant = json.loads(item.payload)["grant"]
        digest, tenant, expires_at = str(grant["code"]), str(grant["tenant"]), float(grant["expires_at"])
        if item.channel not in self._parents:
            await self._store.nack(item.id, now + 60.0)  # the channel's secret left the configuration
            return 0
        result = await self._exchange(item.channel, digest)
        if result.done:
            await self._store.ack(item.id)
        elif result.permanent or now >= expires_at:
            if not result.permanent:
                result = Exchanged(False, "the authorization code expired before it could be exchanged (last: "
                                          f"{result.detail}): the account must authorize again", True)
            await self._store.dead_letter(item.id, result.detail)
        else:
            delay = backoff(item.attempts)
            await self._store.nack(item.id, now + delay)
            self._log(item.channel, tenant, item.attempts, result, f"next try in {delay:.1f} s")
            return 0
        self._log(item.channel, tenant, item.attempts, result, "")
        return 1 if result.done else 0

    # -- one exchange ---------------------------------------------------------------------------

    async def _exchange(self, channel: str, digest: str) -> Exchanged:
        done_key = f"auth-code-done:{channel}:{digest}"
        lease = f"auth-code:{channel}:{digest}:exchange"
        if not await self._store.acquire_lease(lease, self._holder, 30.0):
            return Exchanged(False, "another process is exchanging this code")
        try:
            if await self._store.get_value(done_key) is not None:
                return Exchanged(True, "exchanged already")
            kept = await self._store.get_value(f"auth-code:{channel}:{digest}")
            if kept is None:
                return Exchanged(False, "the authorization code expired before it could be exchanged: the account "
                                        "must authorize again", True)
            try:
                code = json.loads(kept)
                result = await self._call_exchange(self._parents[channel], str(code["code"]), digest,
                                                   float(code["received_at"]))
            except TokenError as exc:
                return Exchanged(False, str(exc), exc.errcode not in _TRANSIENT and exc.errcode is not None)
            await self._store.put_value(done_key, b"1", _DONE_TTL)
            return result
        finally:
            await self._store.release_lease(lease, self._holder)

    async def _call_exchange(self, parent: Parent, code: str, digest: str, received_at: float) -> Exchanged:
        """Exchange ``code``; keep the grant and the token it came with (the detail: the tenant)."""
        tokens = self._tokens
        if isinstance(parent, ComponentCredential):
            url = f"{parent.api_base}/cgi-bin/component/api_query_auth"
            body: dict[str, Any] = {"component_appid": parent.app_id, "authorization_code": code}
            answer = await _with_parent(tokens, parent, lambda token: tokens.call(
                "POST", url, params={"component_access_token": token}, json_body=body, what="api_query_auth"))
            info = answer.get("authorization_info")
            info = info if isinstance(info, dict) else {}
            tenant = answer_field(info, "authorizer_appid", url)
            secret = str(info.get("authorizer_refresh_token") or "")
            access, agent_id = info.get("authorizer_access_token"), None
            expires_in = info.get("expires_in", 7200)
        else:
            url = f"{parent.api_base}/cgi-bin/service/get_permanent_code"
            answer = await _with_parent(tokens, parent, lambda token: tokens.call(
                "POST", url, params={"suite_access_token": token}, json_body={"auth_code": code},
                what="get_permanent_code"))
            corp = answer.get("auth_corp_info")
            tenant = answer_field(corp if isinstance(corp, dict) else {}, "corpid", url)
            secret = answer_field(answer, "permanent_code", url)
            agent_id = _first_agent_id(answer)
            access, expires_in = answer.get("access_token"), answer.get("expires_in", 7200)
        kept = await _read_grant(self._store, parent.channel, tenant)
        if kept is not None and kept.revoked_at is not None and kept.revoked_at > received_at:
            # Exchanged late (no ticket at first): the revocation that came meanwhile stands.
            return Exchanged(False, f"{tenant} revoked this authorization before its code could be exchanged", True)
        await _write_grant(self._store, parent.channel, tenant, secret=secret, agent_id=agent_id, code=digest)
        if isinstance(access, str) and access:
            await tokens.keep(TenantCredential(parent, tenant), fetched_from(
                {"access_token": access, "expires_in": expires_in}, "access_token", url))
        return Exchanged(True, tenant)

    # -- what is written about it ---------------------------------------------------------------

    def _log(self, channel: str, tenant: str, attempts: int, result: Exchanged, later: str) -> None:
        if result.done:
            _LOG.info(json.dumps({"channel": channel, "outcome": "authorization_exchanged",
                                  "tenant": result.detail if result.detail != "exchanged already" else tenant,
                                  "attempts": attempts}))
            return
        outcome, level = (("authorization_dead", logging.ERROR) if result.permanent
                          else ("authorization_exchange_failed", logging.WARNING))
        detail = result.detail + ("; see: wxcallback outbox list" if result.permanent else f"; {later}")
        _LOG.log(level, json.dumps({"channel": channel, "outcome": outcome, "tenant": tenant, "attempts": attempts,
                                    "detail": detail}))

    async def drain(self, timeout: float) -> None:
        """Let the background exchanges finish (what does not stays in the outbox)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
