"""The operations endpoints, /healthz and /metrics, on their own address.

By default they share the callback port, which the platforms require to be public:
anyone could read the channel names and the traffic volumes. ``[server] ops_listen``
moves them to another address (``"127.0.0.1:9100"``: only the machine, or a private
interface for the monitoring network) or turns them off (``"off"``). Each worker
listens there itself with SO_REUSEPORT, as uvicorn's workers share the callback port, so
a scrape lands on any one of them: the counters are summed across workers anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

__all__ = ["OpsListener"]


class _QuietServer(uvicorn.Server):
    # The worker's main server owns the process's signals; this one is stopped by it.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class OpsListener:
    """A small uvicorn server in this worker for the operations routes."""

    def __init__(self, routes: list[Route], host: str, port: int) -> None:
        self._app = Starlette(routes=routes)
        self._host, self._port = host, port
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self._host, self._port))
        sock.listen(128)
        sock.setblocking(False)
        config = uvicorn.Config(self._app, lifespan="off", access_log=False, log_config=None)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait({self._task}, timeout=5)
