"""The ASGI app: the callback server under Starlette.

``create_app(config)`` serves every configured channel on its path, plus ``/healthz``
and ``/metrics``. It can run alone (``wxcallback serve``) or be mounted in an existing
Starlette / FastAPI app (``app.mount("/wechat", create_app(config))``); a mounted app
gets no lifespan events, so the server starts itself on its first request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .config import ServerConfig, parse_listen
from .eager import start_eagerly
from .http import CallbackResponse, canonical_path
from .ops import OpsListener
from .runtime import RESERVED_PATHS, CallbackServer
from .stores import Store

__all__ = ["CallbackApp", "create_app"]


def _route_path(scope: Scope) -> str:
    # Under a Starlette Mount the path may or may not keep the mount prefix (it changed
    # across versions); root_path tells which part belongs to the parent app.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


class CallbackApp:
    """The ASGI app: callbacks handled directly, ``/healthz``, ``/metrics`` and lifespan by Starlette.

    Callbacks skip Starlette's routing and request/response objects: the server has its
    own routing by path and its own response, and this is the hot path.
    """

    def __init__(self, server: CallbackServer, starlette: Starlette, *, serves_ops: bool = True) -> None:
        self.server = server
        self.starlette = starlette
        self.state = starlette.state
        # False when /healthz and /metrics live on ops_listen (or nowhere): here they are unknown paths
        self.serves_ops = serves_ops

    def direct_path(self, raw_path: bytes) -> str | None:
        """The callback path ``raw_path`` names, if the HTTP protocol may answer it itself.

        None for what takes the ASGI path: /healthz and /metrics, and a path to refuse.
        """
        path = canonical_path(raw_path)
        if path is None or (path in RESERVED_PATHS and self.serves_ops):
            return None
        return path

    def respond_now(self, method: str, path: str, query_string: bytes, body: bytes,
                    loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[CallbackResponse]:
        """The answer to a callback whose whole body is here, run up to its first wait (on ``loop``,
        the running loop)."""
        return start_eagerly(self._respond(method, path, query_string, body), loop)

    async def _respond(self, method: str, path: str, query_string: bytes, body: bytes) -> CallbackResponse:
        return (await self.server.respond(method, path, query_string, body, len(body))).response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        path = _route_path(scope)
        if path in RESERVED_PATHS and self.serves_ops:
            await self.starlette(scope, receive, send)
            return
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        if raw_path is not None and canonical_path(raw_path) is None:
            response = self.server.refuse(method, path, 400, "noncanonical_path",
                                          f"path {raw_path[:200]!r} is not in canonical form (encoded characters "
                                          "that need no encoding, '//', '.' or '..'): refused").response
        else:
            length = None
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = int(value) if value.isdigit() else None
                    break
            # The usual body came with the head and is there already: taken as bytes, without
            # the timed stream read (a task and a timer) that a body still on its way needs.
            first = start_eagerly(receive())
            message = first.result() if first.done() and first.exception() is None else None
            body: bytes | AsyncIterator[bytes]
            if message is not None and message["type"] == "http.request" and not message.get("more_body", False):
                body = message.get("body", b"")
            else:
                body = _body_chunks(receive, first)
            response = (await self.server.respond(method, path, scope.get("query_string", b""), body,
                                                  length)).response
        body = b"" if method == "HEAD" else response.body
        await send({"type": "http.response.start", "status": response.status, "headers": [
            (b"content-type", response.content_type.encode("latin-1")),
            (b"content-length", str(len(response.body)).encode("latin-1")),
            # an echoed echostr or an error text is never to be read as HTML
            (b"x-content-type-options", b"nosniff"),
        ]})
        await send({"type": "http.response.body", "body": body})


async def _body_chunks(receive: Receive, first: Awaitable[Message]) -> AsyncIterator[bytes]:
    message = await first
    while True:
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
        message = await receive()


def create_app(config: ServerConfig, *, store: Store | None = None) -> CallbackApp:
    """The ASGI app for ``config``; pass ``store`` to share one (tests use a memory store)."""
    server = CallbackServer(config, store)

    async def healthz(request: Request) -> Response:
        status, body = await server.health()
        return Response(body, status, media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(await server.metrics_text(), media_type="text/plain; version=0.0.4")

    ops_routes = [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
    ops_address = parse_listen(config.ops_listen)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        listener = None
        if ops_address is not None:
            listener = OpsListener(ops_routes, *ops_address)
            await listener.start()
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            await server.stop()

    on_callback_port = config.ops_listen == ""
    starlette = Starlette(routes=ops_routes if on_callback_port else [], lifespan=lifespan)
    starlette.state.wxcallback = server
    return CallbackApp(server, starlette, serves_ops=on_callback_port)
