"""SIGTERM: in-flight requests finish, and the outbox survives a restart."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.e2e.servers import Backend, ServerProcess, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text
from wxcallback.messages import parse_message


def test_sigterm_finishes_the_request_in_flight(tmp_path: Path) -> None:
    channels = {"slow": {"path": "/slow", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                         "receive_id": APPID, "handler": "tests.e2e.e2e_handlers:slow_echo", "deadline": 3.0}}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    server = ServerProcess(config, free_port())
    side = Platform("wecom-app", "/slow")
    url, data = side.callback(wecom_text("in flight"))
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(target=lambda: result.update(r=httpx.post(server.url + url, content=data, timeout=10)))
    request.start()
    time.sleep(0.4)
    server.process.send_signal(signal.SIGTERM)
    request.join(15)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    response = result["r"]
    assert response.status_code == 200
    assert "slow: in flight" in side.open_reply(response.content, side.last_nonce)


def test_the_outbox_survives_a_restart(tmp_path: Path) -> None:
    backend = Backend()
    channels = {"fwd": {"path": "/fwd", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                        "receive_id": APPID, "forward": backend.url, "forward_timeout": 0.3}}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    side = Platform("wecom-app", "/fwd")
    first = ServerProcess(config, free_port())
    sent = [wecom_text("keep me", msg_id=msg_id) for msg_id in (801, 802, 803)]
    for plaintext in sent:
        url, data = side.callback(plaintext)
        assert httpx.post(first.url + url, content=data, timeout=5).status_code == 200
    first.stop()  # SIGTERM with the backend still down
    backend.start()
    second = ServerProcess(config, free_port())
    try:
        deadline = time.monotonic() + 30
        while len(backend.deliveries) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(key for key, _ in backend.deliveries) == sorted(
            f"fwd:{parse_message(m, 'wecom-app').dedup_key}" for m in sent)
    finally:
        second.stop()
        backend.stop()


def test_a_grace_of_zero_does_not_wait_for_a_slow_handler(tmp_path: Path) -> None:
    # the handler thinks for 30 s, the deadline answers at 4.5 s: with shutdown_grace = 0 the
    # worker must not wait for either
    channels = {"slow": {"path": "/slow", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                         "receive_id": APPID, "handler": "tests.e2e.e2e_handlers:late_llm", "deadline": 4.5}}
    config = write_config(tmp_path / "wx.toml", "memory://", channels, shutdown_grace=0)
    server = ServerProcess(config, free_port(), env={"WXCALLBACK_E2E_THINK": "30",
                                                     "WXCALLBACK_E2E_CALLS": str(tmp_path / "calls.log")})
    side = Platform("wecom-app", "/slow")
    url, data = side.callback(wecom_text("too slow"))
    request = threading.Thread(target=lambda: _post_ignoring_errors(server.url + url, data), daemon=True)
    request.start()
    time.sleep(0.4)
    stopping = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert time.monotonic() - stopping < 3.0, server.output()


def _post_ignoring_errors(url: str, data: bytes) -> None:
    try:
        httpx.post(url, content=data, timeout=10)
    except httpx.HTTPError:
        pass  # the worker closed the connection: the platform would retry
