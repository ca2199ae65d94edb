"""The ASGI application: Starlette on top of the framework-neutral pipeline.

``create_app(config)`` serves every configured channel on its path, plus ``/healthz``
and ``/metrics``. It can run alone (``wxcallback serve``) or be mounted in an existing
Starlette / FastAPI app (``app.mount("/wechat", create_app(config))``); a mounted app
gets no lifespan events, so it also starts itself on its first request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .config import ConfigError, ServerConfig, load_config, parse_config
from .exchange import CallbackRequest, CallbackResponse
from .forward import DeliveryWorker, Forwarder
from .handlers import load_handler
from .observe import Metrics, log_exchange
from .pipeline import Channel, Pipeline
from .replay import ReplayGuard
from .stores import Store, open_store
from .streams import StreamDriver

__all__ = ["CallbackApp", "CallbackServer", "app_from_environment", "create_app"]

RESERVED_PATHS = ("/healthz", "/metrics")
_LOG = logging.getLogger("wxcallback.server")


class _TooLarge(Exception):
    pass


class CallbackServer:
    """The running state of one worker: store, pipeline, delivery worker, HTTP client."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self._given_store = store
        self.store: Store | None = store
        self.pipeline: Pipeline | None = None
        self.metrics = Metrics()
        self._client: httpx.AsyncClient | None = None
        self._worker: DeliveryWorker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        for channel in config.channels:
            if channel.path in RESERVED_PATHS:
                raise ConfigError(f"channels.{channel.name}.path: {channel.path} is reserved")
        # Import handlers now, so a wrong module name stops the start with the key named.
        self._dispatch = {c.name: load_handler(c.handler, f"channels.{c.name}", config.app_dir) for c in config.channels
                          if c.forward is None}

    async def start(self) -> None:
        async with self._lock:
            if self.pipeline is not None:
                return
            store = self.store or open_store(self.config.store)
            self.store = store
            self._client = httpx.AsyncClient()
            channels = []
            urls: dict[str, str] = {}
            for config in self.config.channels:
                forwarder = None
                if config.forward is not None:
                    forwarder = Forwarder(config.name, config.message_platform, config.forward, store,
                                          self._client, config.forward_timeout)
                    urls[config.name] = config.forward
                channels.append(Channel(config, config.crypto(), self._dispatch.get(config.name), forwarder,
                                        ReplayGuard(store, config.name, config.replay_window)))
            self.pipeline = Pipeline(channels, store, StreamDriver(store))
            if urls:
                consumer = f"{socket.gethostname()}-{os.getpid()}"
                self._worker = DeliveryWorker(store, urls, self._client, consumer=consumer)
                self._worker_task = asyncio.create_task(self._worker.run())

    async def stop(self) -> None:
        """Graceful stop: finish late handlers and streams, stop delivering, keep the outbox."""
        if self.pipeline is not None:
            await self.pipeline.drain(self.config.shutdown_grace)
        if self._worker is not None and self._worker_task is not None:
            self._worker.stop()
            await asyncio.wait({self._worker_task}, timeout=self.config.shutdown_grace)
        if self._client is not None:
            await self._client.aclose()
        if self.store is not None and self._given_store is None:
            await self.store.close()
        self.pipeline = None

    async def handle(self, request: CallbackRequest) -> CallbackResponse:
        """The pipeline's answer to a request whose body is already read."""
        if self.pipeline is None:
            await self.start()
        assert self.pipeline is not None
        return await self.pipeline.handle(request)

    async def respond(self, method: str, path: str, query_string: bytes,
                      body: bytes | AsyncIterator[bytes], content_length: int | None = None) -> CallbackResponse:
        """Everything a web adapter needs: read the body within the size and time limits,
        run the pipeline, write the access-log line and the metrics."""
        started = time.perf_counter()
        if self.pipeline is None:
            await self.start()
        try:
            data = b""
            if method == "POST":
                if isinstance(body, bytes):  # already read by the framework
                    data = await _read_limited(body, content_length, self.config.max_body_bytes)
                else:
                    data = await asyncio.wait_for(
                        _read_limited(body, content_length, self.config.max_body_bytes), self.config.body_timeout)
            response = await self.handle(CallbackRequest(method, path, query_string, data))
        except _TooLarge:
            response = CallbackResponse(413, b"body too large", outcome="too_large",
                                        detail=f"body exceeds max_body_bytes = {self.config.max_body_bytes}")
        except asyncio.TimeoutError:
            response = CallbackResponse(408, b"body too slow", outcome="body_timeout",
                                        detail=f"body not received within {self.config.body_timeout:g} s")
        except Exception as exc:
            # Only a defect gets here, never bad input; log it with its traceback once.
            _LOG.exception("unexpected error answering %s %s", method, path[:200])
            response = CallbackResponse(500, b"internal error", outcome="internal_error",
                                        detail=f"{type(exc).__name__}: {str(exc)[:200]}")
        if response.channel == "-" and self.pipeline is not None:
            channel = self.pipeline.channel_for(path)
            response.channel = channel.name if channel else "-"
        log_exchange(method, path, response, started)
        self.metrics.observe(response, time.perf_counter() - started)
        return response

    async def health(self) -> tuple[int, bytes]:
        """``/healthz``: 200 when the store answers, else 503."""
        if self.pipeline is None:
            await self.start()
        assert self.store is not None
        healthy = await self.store.healthy()
        body = json.dumps({"status": "ok" if healthy else "store unavailable",
                           "channels": [c.name for c in self.config.channels]})
        return (200 if healthy else 503), body.encode()

    async def metrics_text(self) -> bytes:
        """``/metrics`` in the Prometheus text format, the outbox depth read from the store."""
        if self.pipeline is None:
            await self.start()
        assert self.store is not None
        try:
            self.metrics.outbox_depth.set(await self.store.depth())
        except Exception:  # the store is down; /healthz says so, metrics still render
            pass
        return self.metrics.render()


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

    Callbacks skip Starlette's routing and request/response objects: the pipeline has its
    own routing by path and its own response, and this is the hot path.
    """

    def __init__(self, server: CallbackServer, starlette: Starlette) -> None:
        self.server = server
        self.starlette = starlette
        self.state = starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        path = _route_path(scope)
        if path in RESERVED_PATHS:
            await self.starlette(scope, receive, send)
            return
        method: str = scope["method"]
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
                break
        response = await self.server.respond(method, path, scope.get("query_string", b""),
                                             _body_chunks(receive), length)
        body = b"" if method == "HEAD" else response.body
        await send({"type": "http.response.start", "status": response.status, "headers": [
            (b"content-type", response.content_type.encode("latin-1")),
            (b"content-length", str(len(response.body)).encode("latin-1")),
        ]})
        await send({"type": "http.response.body", "body": body})


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def create_app(config: ServerConfig, *, store: Store | None = None) -> CallbackApp:
    """The ASGI app for ``config``; pass ``store`` to share one (tests use a memory store)."""
    server = CallbackServer(config, store)

    async def healthz(request: Request) -> Response:
        status, body = await server.health()
        return Response(body, status, media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(await server.metrics_text(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    starlette = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    starlette.state.wxcallback = server
    return CallbackApp(server, starlette)


async def _read_limited(body: bytes | AsyncIterator[bytes], declared: int | None, limit: int) -> bytes:
    if declared is not None and declared > limit:
        raise _TooLarge
    if isinstance(body, bytes):
        if len(body) > limit:
            raise _TooLarge
        return body
    chunks = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def app_from_environment() -> CallbackApp:
    """The app factory each ``wxcallback serve`` worker runs (configuration from the environment)."""
    inline = os.environ.get("WXCALLBACK_CONFIG_JSON")
    config = parse_config(json.loads(inline)) if inline else load_config(os.environ["WXCALLBACK_CONFIG"])
    overrides = json.loads(os.environ.get("WXCALLBACK_OVERRIDES", "{}"))
    if overrides:
        config = replace(config, **overrides)
    # A spawned worker starts with no logging configured: one JSON line per request to stderr.
    logging.basicConfig(level=config.log_level.upper(), format="%(message)s")
    return create_app(config)
