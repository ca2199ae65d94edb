"""A local fake of the platforms' HTTP API: access_token, the two send APIs and response_url.

It answers what the real API answers for what a bot sends after a callback's deadline:

- ``GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` (Official Account,
  mini program) and ``GET /cgi-bin/gettoken?corpid=…&corpsecret=…`` (WeCom): a fresh token
  with ``expires_in``; a wrong secret gets 40125 (OA) / 40001 (WeCom).
- ``POST /cgi-bin/message/custom/send?access_token=…`` and ``POST /cgi-bin/message/send?…``:
  40001 for a token never issued, invalidated or expired (42001), 45015 for a user outside
  the 48-hour window (``out_of_window``), else ``{"errcode": 0, "errmsg": "ok"}``.
- ``POST /cgi-bin/aibot/response?response_code=…``: a robot callback's response_url, usable
  once (``response_url()`` makes one).

Switches for tests: ``down_for(seconds)`` (503 to everything), ``invalidate_tokens()``,
``token_delay`` (a slow token endpoint, to make refreshes overlap). It records every
send in ``received`` and counts ``token_requests``; ``wxcallback fake-api`` serves it, with
``GET /_fake/received`` (``?wait=N``: once N sends are in) and ``POST /_fake/down?seconds=…`` /
``/_fake/invalidate`` for a person (or a test in another process) to look and steer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
import threading
import time
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


@dataclass(frozen=True)
class Received:
    """One send the fake accepted: which API (``custom/send``, ``message/send``, ``response_url``) and its JSON."""

    api: str
    body: dict[str, Any]
    at: float = field(default_factory=time.time)


class FakePlatformAPI:
    """The platforms' HTTP API on a loopback port; ``api_base`` is what a channel's ``api_base`` takes."""

    def __init__(self, *, apps: dict[str, str] | None = None, corps: dict[str, str] | None = None,
                 token_ttl: int = 7200, host: str = "127.0.0.1", port: int = 0) -> None:
        #: AppID -> AppSecret accepted by /cgi-bin/token; CorpID -> Secret by /cgi-bin/gettoken
        self.apps = dict(apps or {})
        self.corps = dict(corps or {})
        self.token_ttl = token_ttl
        self.token_delay = 0.0
        self.out_of_window: set[str] = set()
        self.received: list[Received] = []
        self.token_requests = 0
        self.refused: list[tuple[str, dict[str, Any]]] = []
        self.host = host
        self.port = port or _free_port(host)
        self._tokens: dict[str, float] = {}  # token -> expiry
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
            return 200, [{"api": r.api, "body": r.body, "at": r.at} for r in self.received]
        if path == "/_fake/stats":
            return 200, {"token_requests": self.token_requests, "received": len(self.received)}
        if path == "/_fake/down":
            self.down_for(float(query.get("seconds", "60")))
            return 200, _OK
        if path == "/_fake/invalidate":
            self.invalidate_tokens()
            return 200, _OK
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
        self.received.append(Received(api, payload))
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
