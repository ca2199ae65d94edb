"""/healthz and /metrics can leave the public callback port: on another address, or off."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.e2e.servers import serve, until, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform

CHANNELS = {"w": {"path": "/w", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                  "receive_id": APPID}}


def _ready_on(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)


def test_ops_endpoints_on_their_own_address_and_not_on_the_callback_port(tmp_path: Path) -> None:
    ops_port = free_port()
    config = write_config(tmp_path / "wx.toml", "memory://", CHANNELS, ops_listen=f"127.0.0.1:{ops_port}")
    with serve(config, workers=2, ready_path=None) as server:
        ops = f"http://127.0.0.1:{ops_port}"
        _ready_on(ops + "/healthz")
        for _ in range(4):  # every worker answers there
            health = httpx.get(ops + "/healthz", timeout=5)
            assert health.status_code == 200 and health.json()["channels"] == ["w"]
            # A worker hands its counts over within a second (observe.py), the other's included.
            until(lambda: "wxcallback_requests" in httpx.get(ops + "/metrics", timeout=5).text, 3.0,
                  "wxcallback_requests on /metrics")
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 404
        assert httpx.get(server.url + "/metrics", timeout=5).status_code == 404
        side = Platform("wecom-app", "/w")
        assert httpx.get(server.url + side.verify_url_request(), timeout=5).text == side.expected_echo


def test_ops_endpoints_off(tmp_path: Path) -> None:
    config = write_config(tmp_path / "wx.toml", "memory://", CHANNELS, ops_listen="off")
    with serve(config, ready_path=None) as server:
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 404
        assert httpx.get(server.url + "/metrics", timeout=5).status_code == 404
