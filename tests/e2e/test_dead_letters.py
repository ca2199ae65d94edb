"""A message the backend refuses for good becomes a visible dead letter, which can be retried."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.e2e.servers import ROOT, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text


class RefusingBackend:
    """Answers 400 until told otherwise; counts every POST."""

    def __init__(self) -> None:
        self.status = 400
        self.posts: list[str] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                backend.posts.append(self.headers.get("idempotency-key", ""))
                self.send_response(backend.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _outbox(config: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "wxcallback", "outbox", *args, "--config", str(config), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _metric(url: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", httpx.get(url + "/metrics", timeout=5).text, re.MULTILINE)
    assert match
    return float(match.group(1))


def test_a_refused_message_is_dead_lettered_then_retried(tmp_path: Path) -> None:
    backend = RefusingBackend()
    channels = {"fwd": {"path": "/fwd", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                        "receive_id": APPID, "forward": backend.url, "forward_timeout": 0.5}}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    side = Platform("wecom-app", "/fwd")
    try:
        with serve(config) as server:
            url, data = side.callback(wecom_text("refused"))
            assert httpx.post(server.url + url, content=data, timeout=5).status_code == 200
            deadline = time.monotonic() + 40
            while _metric(server.url, "wxcallback_dead_letters") < 1 and time.monotonic() < deadline:
                time.sleep(0.3)
            assert _metric(server.url, "wxcallback_dead_letters") == 1
            assert _metric(server.url, "wxcallback_outbox_depth") == 0
            tries = len(backend.posts)
            assert 3 <= tries <= 4  # the inline try and three from the outbox: bounded, not forever
            time.sleep(2.5)
            assert len(backend.posts) == tries  # no more tries once it is a dead letter
            listed = _outbox(config, "list")
            [letter] = listed["dead_letters"]
            assert letter["channel"] == "fwd" and "400" in letter["reason"]
            assert '"outcome": "dead_letter"' in server.output()

            backend.status = 200  # the backend is fixed
            retried = _outbox(config, "retry", letter["id"])
            assert retried["retried"][0]["id"] == letter["id"]
            deadline = time.monotonic() + 20
            while backend.posts[-1:] and len(backend.posts) == tries and time.monotonic() < deadline:
                time.sleep(0.2)
            deadline = time.monotonic() + 20
            while _metric(server.url, "wxcallback_dead_letters") != 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(backend.posts) == tries + 1 and len(set(backend.posts)) == 1  # one message throughout
            assert _outbox(config, "list")["dead_letters"] == []
    finally:
        backend.stop()
