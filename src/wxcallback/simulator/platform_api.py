"""A local fake of the platforms' HTTP API: the tokens, the two send APIs and response_url.

It answers what the real API answers for what a bot sends after a callback's deadline:

- ``GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` (Official Account,
  mini program) and ``GET /cgi-bin/gettoken?corpid=…&corpsecret=…`` (WeCom): a fresh token
  with ``expires_in``; a wrong secret gets 40125 (OA) / 40001 (WeCom).
- ``POST /cgi-bin/message/custom/send?access_token=…`` and ``POST /cgi-bin/message/send?…``:
  40001 for a token never issued, invalidated or expired (42001), 45015 for a user outside
  the 48-hour window (``out_of_window``), else ``{"errcode": 0, "errmsg": "ok"}``.
- ``POST /cgi-bin/aibot/response?response_code=…``: a robot callback's response_url, usable
  once (``response_url()`` makes one).
- The third parties' chains (server/third_party.py): an open-platform component's
  ``POST /cgi-bin/component/api_component_token`` (a ticket from ``verify_ticket()``: 61006
  for another), ``api_query_auth`` (a code from ``authorize()``, usable once) and
  ``api_authorizer_token`` (61023 for a refresh token revoked by ``revoke()``); a WeCom
  suite's ``POST /cgi-bin/service/get_suite_token`` (``suite_ticket()``; 40085 for another),
  ``get_permanent_code`` (a code from ``install()``) and ``get_corp_token`` (40084 once
  ``cancel()`` ran). An authorizer's or corp's token sends as its account: ``Received.account``.

Switches for tests: ``down_for(seconds)`` (503 to everything), ``invalidate_tokens()``,
``token_delay`` (a slow token endpoint, to make refreshes overlap). It records every
send in ``received``, counts ``token_requests`` (every endpoint that issues a token) and
``calls`` per third-party endpoint; ``wxcallback fake-api`` serves it, with
``GET /_fake/received`` (``?wait=N``: once N sends are in) and ``POST /_fake/down?seconds=…`` /
``/_fake/invalidate`` for a person (or a test in another process) to look and steer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["FakePlatformAPI", "Received"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_INVALID = {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
_EXPIRED = {"errcode": 42001, "errmsg": "access_token expired"}
_OK = {"errcode": 0, "errmsg": "ok"}
# The third parties' endpoints, by the name of the method answering each.
_THIRD_PARTY = {
    "/cgi-bin/component/api_component_token": "component_token",
    "/cgi-bin/component/api_query_auth": "query_auth",
    "/cgi-bin/component/api_authorizer_token": "authorizer_token",
    "/cgi-bin/service/get_suite_token": "suite_token",
    "/cgi-bin/service/get_permanent_code": "permanent_code",
    "/cgi-bin/service/get_corp_token": "corp_token",
}


@dataclass(frozen=True)
class Received:
    """One send the fake accepted: which API (``custom/send``, ``message/send``, ``response_url``) and its JSON."""

    api: str
    body: dict[str, Any]
    at: float = field(default_factory=time.time)
    account: str = ""  # whose token sent it: the AppID or CorpID (a third party's tenant)


class FakePlatformAPI:
    """The platforms' HTTP API on a loopback port; ``api_base`` is what a channel's ``api_base`` takes."""

    def __init__(self, *, apps: dict[str, str] | None = None, corps: dict[str, str] | None = None,
                 components: dict[str, str] | None = None, suites: dict[str, str] | None = None,
                 token_ttl: int = 7200, host: str = "127.0.0.1", port: int = 0) -> None:
        #: AppID -> AppSecret accepted by /cgi-bin/token; CorpID -> Secret by /cgi-bin/gettoken
        self.apps = dict(apps or {})
        self.corps = dict(corps or {})
        #: component AppID -> its AppSecret; SuiteID -> its Secret
        self.components = dict(components or {})
        self.suites = dict(suites or {})
        #: answer each api_authorizer_token with a new refresh token (the old one stops working)
        self.rotate_refresh_tokens = False
        self.calls: Counter[str] = Counter()
        self.token_ttl = token_ttl
        self.token_delay = 0.0
        self.out_of_window: set[str] = set()
        self.received: list[Received] = []
        self.token_requests = 0
        self.refused: list[tuple[str, dict[str, Any]]] = []
        self.host = host
        self.port = port or _free_port(host)
        self._tokens: dict[str, float] = {}  # token -> expiry
        self._accounts: dict[str, str] = {}  # token -> the account it sends as
        self._owners: dict[str, str] = {}  # component / suite token -> its component AppID / SuiteID
        self._tickets: dict[str, str] = {}  # component AppID / SuiteID -> the ticket last pushed
        self._codes: dict[str, tuple[str, str, int]] = {}  # auth code -> (owner, account, agentid), usable once
        self._grants: dict[tuple[str, str], str] = {}  # (owner, account) -> refresh token / permanent code
        self._agents: dict[tuple[str, str], int] = {}
        self._response_codes: set[str] = set()
        self._down_until = 0.0
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._server: Any = None

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- switches -----------------------------------------------------------------------------

    def down_for(self, seconds: float) -> None:
        """Answer 503 to every request for ``seconds``."""
        self._down_until = time.time() + seconds

    def invalidate_tokens(self) -> None:
        """Every token issued so far is refused with 40001 from now on (a secret reset, a token
        fetched elsewhere)."""
        self._tokens.clear()

    def verify_ticket(self, component_appid: str) -> str:
        """The component_verify_ticket the platform pushes now (the last one is accepted)."""
        self._tickets[component_appid] = f"ticket@@@{secrets.token_urlsafe(12)}"
        return self._tickets[component_appid]

    def suite_ticket(self, suite_id: str) -> str:
        """The suite_ticket WeCom pushes now."""
        self._tickets[suite_id] = secrets.token_urlsafe(16)
        return self._tickets[suite_id]

    def authorize(self, component_appid: str, authorizer_appid: str) -> str:
        """An account authorizes the component: the AuthorizationCode of its notice."""
        code = f"queryauthcode@@@{secrets.token_urlsafe(16)}"
        self._codes[code] = (component_appid, authorizer_appid, 0)
        return code

    def install(self, suite_id: str, corpid: str, agent_id: int = 1) -> str:
        """A corp installs the suite: the AuthCode of its create_auth notice."""
        code = secrets.token_urlsafe(48)
        self._codes[code] = (suite_id, corpid, agent_id)
        return code

    def revoke(self, component_appid: str, authorizer_appid: str) -> None:
        """The account revokes its authorization: its refresh token and tokens stop working."""
        self._drop_grant(component_appid, authorizer_appid)

    def cancel(self, suite_id: str, corpid: str) -> None:
        """The corp uninstalls the suite: its permanent code and tokens stop working."""
        self._drop_grant(suite_id, corpid)

    def grant(self, owner: str, account: str) -> str | None:
        """The refresh token or permanent code ``account`` holds for ``owner`` now (None: none)."""
        return self._grants.get((owner, account))

    def _play(self, path: str, query: dict[str, str]) -> dict[str, Any] | None:
        """``/_fake/…`` for a person (or another process): what the platform pushes, as JSON."""
        component, suite = query.get("component", ""), query.get("suite", "")
        if path == "/_fake/verify_ticket":
            return {"component_verify_ticket": self.verify_ticket(component)}
        if path == "/_fake/suite_ticket":
            return {"suite_ticket": self.suite_ticket(suite)}
        if path == "/_fake/authorize":
            return {"authorization_code": self.authorize(component, query.get("authorizer", ""))}
        if path == "/_fake/install":
            return {"auth_code": self.install(suite, query.get("corp", ""), int(query.get("agentid", "1")))}
        if path == "/_fake/revoke":
            self.revoke(component, query.get("authorizer", ""))
            return _OK
        if path == "/_fake/cancel":
            self.cancel(suite, query.get("corp", ""))
            return _OK
        return None

    def _drop_grant(self, owner: str, account: str) -> None:
        self._grants.pop((owner, account), None)
        for token in [t for t, a in self._accounts.items() if a == account]:
            self._tokens.pop(token, None)

    def response_url(self) -> str:
        """A fresh response_url, valid for one POST."""
        code = secrets.token_hex(8)
        self._response_codes.add(code)
        return f"{self.api_base}/cgi-bin/aibot/response?response_code={code}"

    def sent(self, api: str | None = None) -> list[Received]:
        return [r for r in self.received if api is None or r.api == api]

    # -- the ASGI app -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        status, answer = await self._answer(scope["method"], scope["path"], query, body)
        data = json.dumps(answer, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def _steer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        """The /_fake/ endpoints, for a person or a test in another process to look and steer."""
        if path == "/_fake/received":
            # ?wait=N: answer once N sends are in (or after ?timeout=, 10 s), so a script or a
            # test in another process needs no sleep before it looks.
            until = time.monotonic() + float(query.get("timeout", "10"))
            while len(self.received) < int(query.get("wait", "0")) and time.monotonic() < until:
                await asyncio.sleep(0.01)
            return 200, [{"api": r.api, "body": r.body, "at": r.at, "account": r.account} for r in self.received]
        if path == "/_fake/stats":
            return 200, {"token_requests": self.token_requests, "received": len(self.received),
                         "calls": dict(self.calls)}
        if path == "/_fake/down":
            self.down_for(float(query.get("seconds", "60")))
            return 200, _OK
        if path == "/_fake/invalidate":
            self.invalidate_tokens()
            return 200, _OK
        played = self._play(path, query)
        if played is not None:
            return 200, played
        return 404, {"error": f"no {path}"}

    async def _answer(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path.startswith("/_fake/"):
            try:
                return await self._steer(path, query)
            except ValueError:
                return 400, {"error": f"not a number in {query}"}
        if time.time() < self._down_until:
            return 503, {"error": "the fake API is down"}
        if path in ("/cgi-bin/token", "/cgi-bin/gettoken"):
            return 200, await self._token(path, query)
        try:
            payload = json.loads(body) if method == "POST" else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return 200, {"errcode": 44002, "errmsg": "empty post data or not JSON"}
        third_party = _THIRD_PARTY.get(path)
        if third_party is not None:
            self.calls[third_party] += 1
            if third_party.endswith("_token"):
                self.token_requests += 1
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
            return 200, getattr(self, f"_{third_party}")(query, {k: str(v) for k, v in payload.items()})
        if path == "/cgi-bin/aibot/response":
            code = query.get("response_code", "")
            if code not in self._response_codes:
                self.refused.append(("response_url", payload))
                return 200, {"errcode": 60140, "errmsg": "response_code invalid or already used"}
            self._response_codes.discard(code)
            self.received.append(Received("response_url", payload))
            return 200, _OK
        api = {"/cgi-bin/message/custom/send": "custom/send", "/cgi-bin/message/send": "message/send"}.get(path)
        if api is None:
            return 404, {"errcode": 404, "errmsg": f"no API {path}"}
        expiry = self._tokens.get(query.get("access_token", ""))
        if expiry is None or time.time() >= expiry:
            self.refused.append((api, payload))
            return 200, _INVALID if expiry is None else _EXPIRED
        if payload.get("touser") in self.out_of_window:
            self.refused.append((api, payload))
            return 200, {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
        self.received.append(Received(api, payload, account=self._accounts.get(query.get("access_token", ""), "")))
        return 200, ({**_OK, "invaliduser": "", "msgid": f"m{next(self._ids)}"} if api == "message/send" else _OK)

    async def _token(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        self.token_requests += 1
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if path == "/cgi-bin/token":
            if self.apps.get(query.get("appid", "")) != query.get("secret") or not query.get("secret"):
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
        elif self.corps.get(query.get("corpid", "")) != query.get("corpsecret") or not query.get("corpsecret"):
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = f"token-{next(self._ids)}-{secrets.token_hex(4)}"
        self._tokens[token] = time.time() + self.token_ttl
        answer: dict[str, Any] = {"access_token": token, "expires_in": self.token_ttl}
        return {"errcode": 0, "errmsg": "ok", **answer} if path == "/cgi-bin/gettoken" else answer

    # -- the third parties' chains --------------------------------------------------------

    def _issue(self, account: str = "", owner: str = "") -> str:
        token = f"token-{next(self._ids)}-{secrets.token_hex(4)}"
        self._tokens[token] = time.time() + self.token_ttl
        if account:
            self._accounts[token] = account
        if owner:
            self._owners[token] = owner
        return token

    def _owner_of(self, token: str) -> str | None:
        """The component / suite a valid component / suite token belongs to."""
        expiry = self._tokens.get(token)
        return self._owners.get(token) if expiry is not None and time.time() < expiry else None

    def _component_token(self, query: dict[str, str], body: dict[str, str]) -> dict[str, Any]:
        appid = body.get("component_appid", "")
        if not body.get("component_appsecret") or self.components.get(appid) != body.get("component_appsecret"):
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if not body.get("component_verify_ticket") or self._tickets.get(appid) != body["component_verify_ticket"]:
            return {"errcode": 61006, "errmsg": "component ticket is invalid"}
        return {"component_access_token": self._issue(owner=appid), "expires_in": self.token_ttl}

    def _query_auth(self, query: dict[str, str], body: dict[str, str]) -> dict[str, Any]:
        owner = self._owner_of(query.get("component_access_token", ""))
        if owner is None or owner != body.get("component_appid"):
            return _INVALID
        found = self._codes.pop(body.get("authorization_code", ""), None)
        if found is None or found[0] != owner:
            return {"errcode": 61010, "errmsg": "authorization code is invalid, expired or used"}
        authorizer = found[1]
        refresh = f"refreshtoken@@@{secrets.token_urlsafe(16)}"
        self._grants[(owner, authorizer)] = refresh
        return {"authorization_info": {"authorizer_appid": authorizer, "authorizer_access_token":
                                       self._issue(account=authorizer), "expires_in": self.token_ttl,
                                       "authorizer_refresh_token": refresh, "func_info": []}}

    def _authorizer_token(self, query: dict[str, str], body: dict[str, str]) -> dict[str, Any]:
        owner = self._owner_of(query.get("component_access_token", ""))
        if owner is None or owner != body.get("component_appid"):
            return _INVALID
        authorizer = body.get("authorizer_appid", "")
        refresh = self._grants.get((owner, authorizer))
        if refresh is None or refresh != body.get("authorizer_refresh_token"):
            return {"errcode": 61023, "errmsg": "refresh_token is invalid"}
        if self.rotate_refresh_tokens:
            refresh = self._grants[(owner, authorizer)] = f"refreshtoken@@@{secrets.token_urlsafe(16)}"
        return {"authorizer_access_token": self._issue(account=authorizer), "expires_in": self.token_ttl,
                "authorizer_refresh_token": refresh}

    def _suite_token(self, query: dict[str, str], body: dict[str, str]) -> dict[str, Any]:
        suite = body.get("suite_id", "")
        if not body.get("suite_secret") or self.suites.get(suite) != body.get("suite_secret"):
            return {"errcode": 40001, "errmsg": "invalid credential"}
        if not body.get("suite_ticket") or self._tickets.get(suite) != body["suite_ticket"]:
            return {"errcode": 40085, "errmsg": "invalid suite_ticket"}
        return {"errcode": 0, "errmsg": "ok", "suite_access_token": self._issue(owner=suite),
                "expires_in": self.token_ttl}

    def _permanent_code(self, query: dict[str, str], body: dict[str, str]) -> dict[str, Any]:
        owner = self._owner_of(query.get("suite_access_token", ""))
        if owner is None:
            return {"errcode": 40082, "errmsg": "invalid suite_token"}
        found = self._codes.pop(body.get("auth_code", ""), None)
        if found is None or found[0] != owner:
            return {"errcode": 40078, "errmsg": "invalid auth_code"}
        _, corp, agent = found
        permanent = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
        self._grants[(owner, corp)] = permanent
        return {"errcode": 0, "errmsg": "ok", "access_token": self._issue(account=corp), "expires_in": self.token_ttl,
                "permanent_code": permanent, "auth_corp_info": {"corpid": corp, "corp_name": f"corp {corp}"},
                "auth_info": {"agent": [{"agentid": agent, "name": "the suite's app"}]}}

    def _corp_token(self, query: dict[str, str], body: dict[str, str]) -> dict[str, Any]:
        owner = self._owner_of(query.get("suite_access_token", ""))
        if owner is None:
            return {"errcode": 40082, "errmsg": "invalid suite_token"}
        corp = body.get("auth_corpid", "")
        if self._grants.get((owner, corp)) != body.get("permanent_code") or not body.get("permanent_code"):
            return {"errcode": 40084, "errmsg": "invalid permanent_code"}
        return {"errcode": 0, "errmsg": "ok", "access_token": self._issue(account=corp), "expires_in": self.token_ttl}

    # -- serving ------------------------------------------------------------------------------

    def _uvicorn(self) -> Any:
        import uvicorn

        config = uvicorn.Config(self, host=self.host, port=self.port, log_level="warning", lifespan="off")
        return uvicorn.Server(config)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakePlatformAPI]:
        """Serve in this event loop while the block runs."""
        server = self._uvicorn()
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[FakePlatformAPI]:
        """Serve from a thread of its own while the block runs (for tests driving other processes)."""
        server = self._uvicorn()
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake platform API did not start")
            time.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(10)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
