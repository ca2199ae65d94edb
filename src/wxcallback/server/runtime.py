"""The framework-neutral server: the running state of one worker, and its one front door.

``CallbackServer`` owns the store, the dispatcher, the delivery worker and the HTTP
client of the forwarding channels. Every web adapter (the ASGI app, Flask, Django)
calls ``respond`` with the request and the body (bytes or a stream) and writes back
what it returns; ``respond`` reads the body within the limits, runs the request
through inbound.py, writes the access-log line and the metrics. It imports no web
framework.

The server starts on first use (``respond``, ``health``, ``metrics_text``) or when
``start`` is called (the ASGI lifespan); ``stop`` finishes late handlers and streams.
A long-connection channel (``transport = "websocket"``) has no URL: ``start`` opens its
connection (server/longconn_channel.py), which hands callbacks to the same dispatcher.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..channel import ChannelKind
from ..core import ReceiveIdPolicy, Signer
from .config import ChannelConfig, ConfigError, ServerConfig
from .dispatch import Channel, Dispatcher
from .forward import DeliveryWorker, Forwarder
from .handlers import load_handler
from .http import TEXT, BodyTooLarge, CallbackRequest, CallbackResponse, checked_body, read_body
from .inbound import Endpoint, Handled, InboundProtocol
from .longconn_channel import LongConnChannel, LongConnClient, longconn_problem
from .observe import Metrics, Outcome, log_request
from .connections import STATS as CONNECTION_STATS
from .replay import ReplayGuard, replay_scope
from .reply_sender import ReplySender
from .stores import Store, open_store
from .streams import StreamDriver

__all__ = ["RESERVED_PATHS", "CallbackServer"]

RESERVED_PATHS = ("/healthz", "/metrics")
_LOG = logging.getLogger("wxcallback.server")


class CallbackServer:
    """The running state of one worker: store, pipeline, delivery worker, HTTP client."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self._given_store = store
        self.store: Store | None = store
        self.pipeline: InboundProtocol | None = None
        self.metrics = Metrics()
        self._client: httpx.AsyncClient | None = None
        self._worker: DeliveryWorker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._sender: ReplySender | None = None
        self._lock = asyncio.Lock()
        self.longconn: dict[str, LongConnChannel] = {}
        for channel in config.channels:
            for path in () if channel.websocket else channel.paths:
                if path in RESERVED_PATHS:
                    raise ConfigError(f"channels.{channel.name}: {path} is reserved")
        # Import handlers now, so a wrong module name stops the start with the key named.
        self._handlers = {c.name: load_handler(c.handler, f"channels.{c.name}", config.app_dir)
                          for c in config.channels if c.forward is None}

    async def start(self) -> InboundProtocol:
        """Open the store and build the pipeline (once; later calls return it)."""
        if self.pipeline is not None:
            return self.pipeline
        async with self._lock:
            if self.pipeline is not None:
                return self.pipeline
            store = self.store
            if store is None:
                store = open_store(self.config.store)
                await store.start()  # connects; warns once per worker of a store at risk
            self.store = store
            self._client = httpx.AsyncClient()
            endpoints = []
            urls: dict[str, str] = {}
            self._sender = ReplySender(store, self._client, self.config.channels, self.metrics)
            dispatcher = Dispatcher(store, StreamDriver(store), self._sender)
            for config in self.config.channels:
                forwarder = None
                if config.forward is not None:
                    forwarder = Forwarder(config.name, config.kind.platform, config.forward, store,
                                          self._client, config.forward_timeout)
                    urls[config.name] = config.forward
                channel = Channel(config.name, config.kind.platform, self._handlers.get(config.name), forwarder,
                                  config.deadline, config.dedup_ttl)
                if config.websocket:
                    self.longconn[config.name] = LongConnChannel(config, channel, dispatcher, store, self.metrics)
                    continue
                endpoints.extend(_endpoints(config, channel, store))
            self.pipeline = InboundProtocol(endpoints, dispatcher, store, self._sender.third_parties.notice)
            for longconn in self.longconn.values():
                longconn.start()
            if urls or self._sender.queues:
                consumer = f"{socket.gethostname()}-{os.getpid()}"
                max_ages = {c.name: c.forward_max_age for c in self.config.channels if c.forward is not None}
                inline = {c.name: c.forward_timeout for c in self.config.channels if c.forward is not None}
                retry = {c.name: c.forward_retry_timeout for c in self.config.channels if c.forward is not None}
                self._worker = DeliveryWorker(store, urls, self._client, consumer=consumer, max_ages=max_ages,
                                              sends=self._sender, inline_timeouts=inline, timeouts=retry)
                self._worker_task = asyncio.create_task(self._worker.run())
            return self.pipeline

    async def stop(self) -> None:
        """Graceful stop: finish late handlers and streams, stop delivering, keep the outbox."""
        for longconn in self.longconn.values():
            # Answer what came, then close and let go of the bot, so another process takes it at once.
            await longconn.stop(self.config.shutdown_grace)
        self.longconn = {}
        if self.pipeline is not None:
            await self.pipeline.drain(self.config.shutdown_grace)
        if self._sender is not None:
            await self._sender.third_parties.drain(self.config.shutdown_grace)
        if self._worker is not None and self._worker_task is not None:
            self._worker.stop()
            await asyncio.wait({self._worker_task}, timeout=self.config.shutdown_grace)
        if self._client is not None:
            await self._client.aclose()
        if self.store is not None and self._given_store is None:
            await self.store.close()
        self.pipeline = None
        self.metrics.flush()  # this worker's last second of counts, before it exits

    async def longconn_client(self, channel: str, timeout: float = 15.0) -> LongConnClient:
        """Proactive sends and uploads through ``channel``'s long connection, wherever it is held."""
        await self.start()
        longconn = self.longconn.get(channel)
        if longconn is None:
            names = ", ".join(sorted(self.longconn)) or "none"
            raise ConfigError(f"channels.{channel}: not a long-connection channel (those: {names})")
        return longconn.client(timeout)

    async def reply_sender(self) -> ReplySender:
        """Late replies' sender, for proactive messages from outside a handler (inside one:
        ``wxcallback.server.reply_sender.current_sender()``)."""
        await self.start()
        assert self._sender is not None
        return self._sender

    async def third_party_token(self, channel: str, tenant: str) -> str:
        """A third party's token for one tenant: the authorizer_access_token of the account
        ``tenant`` (AppID) on a component channel, the access token of the corp ``tenant``
        (CorpID) on a wecom-suite channel. Cached and refreshed for every process; TokenError
        when none can be had now (no ticket yet, API down, authorization revoked)."""
        await self.start()
        assert self._sender is not None
        return await self._sender.third_parties.token(channel, tenant)

    async def respond(self, method: str, path: str, query_string: bytes,
                      body: bytes | AsyncIterator[bytes], content_length: int | None = None) -> Handled:
        """Everything a web adapter needs: read the body within the size and time limits,
        run the pipeline, write the access-log line and the metrics."""
        started = time.perf_counter()
        pipeline = self.pipeline if self.pipeline is not None else await self.start()
        try:
            data = b""
            if method == "POST":
                limit = self.config.max_body_bytes
                if type(body) is bytes:  # the usual case: no coroutine to read what is already here
                    data = checked_body(body, content_length, limit)
                else:
                    data = await read_body(body, content_length, limit, self.config.body_timeout)
            handled = await pipeline.handle(CallbackRequest(method, path, query_string, data))
        except BodyTooLarge:
            handled = self._refused(path, 413, b"body too large", "too_large",
                                    f"body exceeds max_body_bytes = {self.config.max_body_bytes}")
        except asyncio.TimeoutError:
            handled = self._refused(path, 408, b"body too slow", "body_timeout",
                                    f"body not received within {self.config.body_timeout:g} s")
        except Exception as exc:
            # Only a defect gets here, never bad input; log it with its traceback once.
            _LOG.exception("unexpected error answering %s %s", method, path[:200])
            handled = self._refused(path, 500, b"internal error", "internal_error",
                                    f"{type(exc).__name__}: {str(exc)[:200]}")
        log_request(method, path, handled.status, handled.record, started)
        self.metrics.observe(handled.record, time.perf_counter() - started)
        return handled

    def refuse(self, method: str, path: str, status: int, outcome: str, detail: str) -> Handled:
        """Answer a request the adapter refused before the pipeline (logged and counted)."""
        started = time.perf_counter()
        handled = self._refused(path, status, f"refused: {outcome}".encode(), outcome, detail)  # no echo
        log_request(method, path, handled.status, handled.record, started)
        self.metrics.observe(handled.record, time.perf_counter() - started)
        return handled

    def _refused(self, path: str, status: int, body: bytes, outcome: str, detail: str) -> Handled:
        endpoint = self.pipeline.endpoint_for(path) if self.pipeline is not None else None
        return Handled(CallbackResponse(status, body, TEXT),
                       Outcome(outcome, detail=detail, channel=endpoint.name if endpoint else "-"))

    async def health(self) -> tuple[int, bytes]:
        """``/healthz``: 200 while the server can do its work, else 503 with the reason.

        503 when the store does not answer, or when a long connection has given up for good
        (evicted, subscribe refused: nobody serves that bot until a restart). ``degraded``
        lists what costs something without stopping the service: a long connection that is
        reconnecting or not yet held, and connections turned away with every slot busy.
        ``connections`` counts the connections the workers closed or refused to protect
        themselves (summed over every worker of ``wxcallback serve``) (oversized or slow request heads, idle ones closed to make room, and
        ``refused_full``: turned away with every slot busy, lost capacity).
        """
        await self.start()
        assert self.store is not None
        store_health = await self.store.health()
        problems = [] if store_health.ok else [f"store unavailable: {store_health.reason}"]
        report: dict[str, Any] = {"status": "ok", "channels": [c.name for c in self.config.channels]}
        degraded: list[str] = []
        connections = CONNECTION_STATS.snapshot()
        if connections is not None:  # served by wxcallback serve, not mounted in another framework
            report["connections"] = connections
            if connections["refused_full"]:
                degraded.append("connections refused: all slots busy")
        if self.longconn:
            report["longconn"] = {name: await channel.health() for name, channel in self.longconn.items()}
            for name, entry in report["longconn"].items():
                problem = longconn_problem(name, entry)
                if problem is None:
                    continue
                (problems if entry.get("terminal") else degraded).append(problem)
        if connections is not None or self.longconn:
            report["degraded"] = degraded
        if problems:
            report["status"] = "; ".join(problems)
        return (503 if problems else 200), json.dumps(report).encode()

    async def metrics_text(self) -> bytes:
        """``/metrics`` in the Prometheus text format, the outbox depth read from the store."""
        await self.start()
        assert self.store is not None
        try:
            depth: int | None = await self.store.depth()
            dead: int | None = await self.store.dead_count()
        except Exception:  # the store is down; /healthz says so, metrics still render
            depth = dead = None
        up = {name: bool((await channel.health())["connected"]) for name, channel in self.longconn.items()}
        return self.metrics.render(depth, CONNECTION_STATS.snapshot(), dead, up)


def _endpoints(config: ChannelConfig, channel: Channel, store: Store) -> list[Endpoint]:
    """The callback URLs of one channel: its path, and a third party's second URL.

    Receive ids per URL (open-platform 消息加解密说明; WeCom doc 97172 and WeCom's answer on
    suites in its developer community): a component seals everything for its own AppID; a
    WeCom suite its instruction callbacks for the SuiteID, each data callback for the
    authorized corp the path names, and every URL check for the provider's CorpID.
    """
    crypto = config.crypto()
    signer = crypto or Signer(config.token, digest=config.digest)
    # Templated channels (component, wecom-suite) are always encrypted: their replay guard is
    # the timestamp window, and a retry is told from a new message by the tenant's dedup key.
    replay = ReplayGuard(store, replay_scope(config.token, config.digest), config.replay_window)
    if config.kind is not ChannelKind.WECOM_SUITE:
        return [Endpoint(config, crypto, signer, replay, channel, path) for path in config.paths]
    data = config.crypto(ReceiveIdPolicy.any())
    instructions = config.crypto(ReceiveIdPolicy.exact(config.suite_id))
    return [Endpoint(config, data, signer, replay, channel, config.path, url_check=crypto, tenant_is_receive_id=True),
            Endpoint(config, instructions, signer, replay, channel, config.instruction_path, url_check=crypto)]
