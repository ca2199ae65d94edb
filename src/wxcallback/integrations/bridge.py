"""Blocking calls into the async callback server, for WSGI frameworks.

A :class:`CallbackServer` is async: store clients, robot streams pumped in background
tasks, late handlers and the outbox delivery worker all live on one event loop. A WSGI
app has no loop, so :class:`BlockingCallbackServer` runs the server on a loop in a daemon
thread of its own (started on first use) and lets request threads wait for its answers.
Streams and late handlers keep running on that loop between requests.

The loop belongs to the process that started it: after a fork (gunicorn ``--preload``,
multiprocessing) the child finds no loop thread, so it starts a fresh loop and a fresh
server instead of waiting forever on its parent's.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import concurrent.futures.thread  # its exit hook must be registered before ours
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..server.runtime import CallbackServer
from ..server.config import ConfigError, ServerConfig, load_config, parse_config
from ..server.inbound import Handled
from ..server.stores import Store

__all__ = ["BlockingCallbackServer", "Readable", "server_config"]

T = TypeVar("T")
_LOG = logging.getLogger("wxcallback.server")

# Reading a request body in pieces keeps memory bounded by the limit, not by the sender.
_CHUNK = 64 * 1024
# Added to shutdown_grace when close() waits for the graceful stop to finish on the loop.
_CLOSE_MARGIN = 5.0


class Readable(Protocol):
    """A request body stream: werkzeug's ``request.stream``, Django's ``HttpRequest``, ``wsgi.input``."""

    def read(self, size: int, /) -> bytes: ...


def server_config(config: ServerConfig | Mapping[str, Any] | str | os.PathLike[str]) -> ServerConfig:
    """A :class:`ServerConfig` from itself, a TOML file path, or the TOML document as a mapping."""
    if isinstance(config, ServerConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(config)
    if isinstance(config, (str, os.PathLike)):
        return load_config(Path(config))
    raise ConfigError(f"the wxcallback configuration must be a ServerConfig, a mapping or a path to a "
                      f"TOML file, not {type(config).__name__}")


class _Running:
    """One process's loop thread and the server it runs."""

    def __init__(self, server: CallbackServer) -> None:
        self.pid = os.getpid()
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="wxcallback-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, call: Callable[[CallbackServer], Awaitable[T]]) -> concurrent.futures.Future[T]:
        async def on_loop() -> T:
            return await call(self.server)

        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop)

    def stop(self, timeout: float) -> None:
        try:
            self.submit(lambda server: server.stop()).result(timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout)
            if not self.thread.is_alive():
                self.loop.close()


class BlockingCallbackServer:
    """A :class:`CallbackServer` on its own event-loop thread, with blocking methods.

    Every method may be called from any thread. ``respond`` reads the body from a stream
    within ``max_body_bytes`` (the declared Content-Length is checked before any byte is
    read) and ``body_timeout``, then hands it to the server, which answers exactly as the
    ASGI app does, with the same access-log line and metrics.
    """

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self._store = store
        # Built here so a bad handler name or a reserved path stops the web app at import.
        self._fresh: CallbackServer | None = CallbackServer(config, store)
        self._running: _Running | None = None
        self._lock = threading.Lock()
        _instances.add(self)

    @property
    def server(self) -> CallbackServer:
        """This process's server (started if it was not)."""
        return self._ensure_running().server

    def _ensure_running(self) -> _Running:
        running = self._running
        if running is not None and running.pid == os.getpid():
            return running
        with self._lock:
            running = self._running
            if running is None or running.pid != os.getpid():
                # After a fork the parent's loop thread does not exist here: leave its
                # loop and server alone (their sockets are the parent's) and start anew.
                server = self._fresh or CallbackServer(self.config, self._store)
                self._fresh = None
                running = _Running(server)
                self._running = running
            return running

    def call(self, call: Callable[[CallbackServer], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``call(server)`` on the server's loop and wait for its result."""
        return self._ensure_running().submit(call).result(timeout)

    async def call_async(self, call: Callable[[CallbackServer], Awaitable[T]]) -> T:
        """Run ``call(server)`` on the server's loop; await it from another event loop."""
        return await asyncio.wrap_future(self._ensure_running().submit(call))

    # -- what an adapter needs -------------------------------------------------------

    def respond(self, method: str, path: str, query_string: bytes, body: bytes | Readable,
                content_length: int | None = None) -> Handled:
        """The answer to one request (blocking). ``body`` is the bytes or a stream to read them from."""
        data = self._read_body(method, body, content_length)
        return self.call(lambda server: server.respond(method, path, query_string, data, content_length))

    async def respond_async(self, method: str, path: str, query_string: bytes, body: bytes | Readable,
                            content_length: int | None = None) -> Handled:
        """:meth:`respond` for async views; ``body`` must be a stream that does not block (spooled)."""
        data = self._read_body(method, body, content_length)
        return await self.call_async(lambda server: server.respond(method, path, query_string, data,
                                                                   content_length))

    def health(self) -> tuple[int, bytes]:
        """``/healthz``: (200 or 503, JSON body)."""
        return self.call(lambda server: server.health())

    async def health_async(self) -> tuple[int, bytes]:
        return await self.call_async(lambda server: server.health())

    def metrics_text(self) -> bytes:
        """``/metrics`` in the Prometheus text format."""
        return self.call(lambda server: server.metrics_text())

    async def metrics_text_async(self) -> bytes:
        return await self.call_async(lambda server: server.metrics_text())

    def close(self, timeout: float | None = None) -> None:
        """Graceful stop: finish late handlers and streams, then stop the loop thread.

        A later call starts a new server. Called at interpreter exit for every instance.
        """
        with self._lock:
            running = self._running
            self._running = None
        if running is not None and running.pid == os.getpid() and running.thread.is_alive():
            running.stop(self.config.shutdown_grace + _CLOSE_MARGIN if timeout is None else timeout)

    def _read_body(self, method: str, body: bytes | Readable, content_length: int | None) -> bytes | AsyncIterator[bytes]:
        if method != "POST":
            return b""
        if isinstance(body, bytes):
            return body
        limit = self.config.max_body_bytes
        if content_length is not None and content_length > limit:
            return b""  # the server answers 413 from the declared length; nothing is read
        # One byte past the limit is enough for the server to know the body is too large.
        wanted = limit + 1 if content_length is None else content_length
        deadline = time.monotonic() + self.config.body_timeout
        chunks: list[bytes] = []
        size = 0
        while size < wanted:
            if chunks and time.monotonic() > deadline:
                return _too_slow()
            try:
                chunk = body.read(min(_CHUNK, wanted - size))
            except OSError:  # the client went away mid-body: the server refuses what arrived
                break
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


async def _too_slow() -> AsyncIterator[bytes]:
    # The server reads the body under ``body_timeout`` and answers 408 when it runs out,
    # so a body that trickled in too slowly here is reported the same way.
    raise asyncio.TimeoutError
    yield b""  # pragma: no cover - makes this an async generator


_instances: weakref.WeakSet[BlockingCallbackServer] = weakref.WeakSet()


def _reset_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    for instance in list(_instances):
        instance._lock = threading.Lock()


def _close_all() -> None:
    for instance in list(_instances):
        try:
            instance.close()
        except Exception as exc:  # noqa: BLE001 - exiting anyway; one stuck server must not keep the others open
            _LOG.warning("wxcallback: graceful stop at exit failed: %s: %s", type(exc).__name__, exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
# At exit, thread pools refuse new work before atexit handlers run, and the stores close
# through one; threading's own exit hooks run earlier (in reverse order of registration,
# so after concurrent.futures' registers, this one comes first).
_register_early_exit = getattr(threading, "_register_atexit", None)
if _register_early_exit is not None:
    _register_early_exit(_close_all)
else:  # pragma: no cover - every CPython since 3.9 has it
    atexit.register(_close_all)
