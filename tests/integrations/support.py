"""Real servers on loopback for the adapter tests, and the platform that drives them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn
from werkzeug.serving import make_server

from tests.conftest import free_port
from tests.platform_requests import APPID, KEY, TOKEN
from wxcallback.simulator import Simulator
from wxcallback.simulator.report import Report

Lifespan = Literal["auto", "on", "off"]
MAX_BODY = 65536
OVERSIZE = 100_000

WECOM = {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
         "receive_id": APPID, "handler": "tests.integrations.handlers:echo"}
ROBOT = {"path": "/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY,
         "handler": "tests.integrations.handlers:stream"}


def config_mapping(store: str, **server: Any) -> dict[str, Any]:
    """The TOML document, as a mapping, of a WeCom app channel and a streaming robot channel."""
    return {"server": {"store": store, "max_body_bytes": MAX_BODY, **server},
            "channels": {"wecom": dict(WECOM), "robot": dict(ROBOT)}}


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    """``app`` served by werkzeug (a thread per request) on a free loopback port; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class AsgiServer:
    """An ASGI app under uvicorn in a thread; ``stop()`` runs the app's shutdown."""

    def __init__(self, app: Any, lifespan: Lifespan = "on") -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@contextmanager
def asgi_server(app: Any, lifespan: Lifespan = "on") -> Iterator[AsgiServer]:
    server = AsgiServer(app, lifespan)
    try:
        yield server
    finally:
        server.stop()


def simulator(url: str, channel: dict[str, Any]) -> Simulator:
    return Simulator(url, platform=channel["platform"], token=TOKEN, encoding_aes_key=KEY,
                     receive_id=channel.get("receive_id", ""), stream_interval=0.2, stream_timeout=15,
                     oversize_bytes=OVERSIZE)


def run_suite(url: str, channel: dict[str, Any]) -> Report:
    """The platform's whole suite against ``url``: URL check, callbacks resent twice, hostile requests."""
    async def run() -> Report:
        async with simulator(url, channel) as sim:
            return await sim.run_suite(retries=2, hostile=True)

    return asyncio.run(run())


def stream_refreshes(report: Report) -> int:
    """How many refresh polls the robot's streamed text reply took to finish."""
    text = next(e for e in report.exchanges if e.name.startswith("text"))
    return len(text.refreshes)


def send_text_with_retries(url: str, channel: dict[str, Any], content: str, retries: int) -> Any:
    async def run() -> Any:
        async with simulator(url, channel) as sim:
            return await sim.send_text(content, retries=retries)

    return asyncio.run(run())
