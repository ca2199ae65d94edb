"""A forwarding backend's answer is read only up to a cap: a huge one is refused, not buffered."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.forward import MAX_REPLY_BYTES
from wxcallback.server.stores import MemoryStore


@pytest.fixture
def huge_backend() -> Iterator[tuple[str, list[int]]]:
    sent: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            reply = json.dumps({"reply": {"type": "text", "content": "x" * 100}}).encode()
            body = reply + b" " * (50 * 1024 * 1024)  # a 50 MB answer
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                for start in range(0, len(body), 1 << 20):
                    self.wfile.write(body[start:start + (1 << 20)])
                    sent.append(1 << 20)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading, as it should

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", sent
    finally:
        server.shutdown()
        server.server_close()


def test_a_reply_over_the_cap_is_not_read(huge_backend: tuple[str, list[int]],
                                          caplog: pytest.LogCaptureFixture) -> None:
    url, sent = huge_backend
    caplog.set_level(logging.INFO, logger="wxcallback")
    channels = {"fwd": {"path": "/fwd", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                        "receive_id": APPID, "forward": url, "forward_timeout": 3.0}}
    side = Platform("wecom-app", "/fwd")

    async def main() -> None:
        store = MemoryStore()
        app = create_app(parse_config({"channels": channels}), store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            post_url, data = side.callback(wecom_text("hello"))
            response = await client.post(post_url, content=data)
            assert (response.status_code, response.content) == (200, b"")  # no reply, delivered once
            assert await store.depth() == 0
        await app.state.wxcallback.stop()

    asyncio.run(main())
    assert "forward_bad_reply" in caplog.text and f"over {MAX_REPLY_BYTES} bytes" in caplog.text
    assert sum(sent) < 40 * 1024 * 1024  # the server stopped reading long before 50 MB
