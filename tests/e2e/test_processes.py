"""The server as real processes on loopback: every platform, two processes on one Redis, a backend outage."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.servers import Backend, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, robot_refresh, robot_text, wecom_text
from wxcallback.messages import parse_message

HANDLER = "tests.e2e.e2e_handlers:counting_echo"


def _channels() -> dict[str, dict[str, object]]:
    return {
        "oa": {"path": "/oa", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
               "receive_id": APPID, "modes": ["plaintext", "compatible", "safe"], "handler": HANDLER},
        "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                  "receive_id": APPID, "handler": HANDLER},
        "robot": {"path": "/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY,
                  "handler": "tests.e2e.e2e_handlers:slow_stream"},
    }


def _calls(path: Path) -> list[str]:
    return path.read_text().split()


def test_every_platform_over_http_with_the_sqlite_store(tmp_path: Path, calls_file: Path) -> None:
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", _channels())
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        for platform, path, body in (("official-account", "/oa", oa_text), ("wecom-app", "/wecom", wecom_text)):
            side = Platform(platform, path)
            assert client.get(side.verify_url_request()).text == side.expected_echo
            url, data = side.callback(body("über"))
            reply = side.open_reply(client.post(url, content=data).content, side.last_nonce)
            assert "echo: über" in reply
        plain = Platform("official-account", "/oa")
        url, data = plain.callback(oa_text("clear"), encrypted=False)
        assert b"echo: clear" in client.post(url, content=data).content
        robot = Platform("wecom-robot", "/robot", receive_id="")
        assert client.get(robot.verify_url_request()).text == robot.expected_echo
        assert client.get("/metrics").status_code == 200
    log = server.output()
    assert '"outcome": "ok"' in log and TOKEN not in log and KEY not in log


def test_two_processes_sharing_redis_behave_as_one(tmp_path: Path, calls_file: Path, redis_url: str,
                                                   redis_prefix: str) -> None:
    store = f"{redis_url}?prefix={redis_prefix}"
    config = write_config(tmp_path / "wx.toml", store, _channels())
    with serve(config) as a, serve(config) as b:
        side = Platform("wecom-app", "/wecom")
        text = wecom_text("shared", msg_id=99001)
        url, data = side.callback(text)
        first = side.open_reply(httpx.post(a.url + url, content=data).content)
        # The platform's retry lands on the other instance: same reply, handler not run again.
        url, data = side.callback(text)
        second = side.open_reply(httpx.post(b.url + url, content=data).content, side.last_nonce)
        assert first == second and "echo: shared" in first
        assert _calls(calls_file) == [parse_message(text, "wecom-app").dedup_key]

        # A stream started on A is refreshed on B until it finishes.
        robot = Platform("wecom-robot", "/robot", receive_id="")
        url, data = robot.callback(robot_text("stream please"))
        started = json.loads(robot.open_reply(httpx.post(a.url + url, content=data).content))
        stream_id = started["stream"]["id"]
        seen = []
        for _ in range(60):
            time.sleep(0.2)
            url, data = robot.callback(robot_refresh(stream_id))
            state = json.loads(robot.open_reply(httpx.post(b.url + url, content=data).content))
            seen.append(state["stream"]["content"])
            if state["stream"]["finish"]:
                break
        assert seen[-1] == "alpha beta gamma"


def test_backend_down_then_up_loses_nothing_and_delivers_once(tmp_path: Path) -> None:
    backend = Backend()
    channels = {"fwd": {"path": "/fwd", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                        "receive_id": APPID, "forward": backend.url, "forward_timeout": 0.5}}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    side = Platform("wecom-app", "/fwd")
    sent = [wecom_text(f"m{5000 + i}", msg_id=5000 + i) for i in range(12)]
    with serve(config) as server:
        for plaintext in sent:  # the backend is down: each is answered at once, and kept
            url, data = side.callback(plaintext)
            response = httpx.post(server.url + url, content=data, timeout=5)
            assert (response.status_code, response.content) == (200, b"")
        time.sleep(1.0)
        backend.start()
        try:
            deadline = time.monotonic() + 40
            while len({k for k, _ in backend.deliveries}) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.2)
            keys = [key for key, _ in backend.deliveries]
            # all of them, each once
            assert sorted(keys) == sorted(f"fwd:{parse_message(m, 'wecom-app').dedup_key}" for m in sent)
            payload = backend.deliveries[0][1]
            assert payload["channel"] == "fwd" and payload["message"]["msg_type"] == "text"
            metrics = httpx.get(server.url + "/metrics").text
            assert "wxcallback_outbox_depth 0.0" in metrics
        finally:
            backend.stop()


def test_backend_reply_becomes_the_passive_reply(tmp_path: Path) -> None:
    backend = Backend(reply={"type": "text", "content": "from the backend"})
    backend.start()
    channels = {"fwd": {"path": "/fwd", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                        "receive_id": APPID, "forward": backend.url}}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    try:
        with serve(config) as server:
            side = Platform("wecom-app", "/fwd")
            url, data = side.callback(wecom_text("ask the backend"))
            reply = side.open_reply(httpx.post(server.url + url, content=data, timeout=5).content)
            assert "from the backend" in reply
            time.sleep(1.5)  # nothing is redelivered after an inline success
            assert len(backend.deliveries) == 1
    finally:
        backend.stop()


def test_bad_config_is_refused_with_the_key_named(tmp_path: Path) -> None:
    import subprocess
    import sys

    channels = {"bad": {"path": "/x", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY + "=",
                        "receive_id": APPID}}
    config = write_config(tmp_path / "wx.toml", "memory://", channels)
    result = subprocess.run([sys.executable, "-m", "wxcallback", "serve", "--config", str(config), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "channels.bad.encoding_aes_key" in result.stderr and KEY not in result.stderr
    assert "Traceback" not in result.stderr
