"""The public-internet rules through a real `wxcallback serve`: what the in-process tests
(tests/server/test_internet_facing.py, test_blocking_handlers.py) cannot see.

Here requests cross uvicorn's HTTP parser as bytes on a socket: paths arrive exactly as a
client wrote them (dot segments and raw UTF-8 included, which an HTTP client library
normalises or encodes away), the configuration is refused by the command itself, and a
blocking handler holds a real thread of the worker.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.servers import ROOT, ServerProcess, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, wecom_text
from tests.server.test_internet_facing import CHANNELS as IN_PROCESS_CHANNELS, oa_url_check

# the in-process tests' channels, and a blocking handler's
CHANNELS: dict[str, dict[str, Any]] = IN_PROCESS_CHANNELS | {
    "blocking": {"path": "/blocking", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                 "receive_id": APPID, "handler": "tests.e2e.e2e_handlers:blocking_until_released",
                 "deadline": 0.5},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("internet")
    config = write_config(tmp / "wx.toml", "memory://", CHANNELS)
    env = {"WXCALLBACK_E2E_CALLS": str(tmp / "calls.txt"), "WXCALLBACK_E2E_RELEASE": str(tmp / "release")}
    with serve(config, env=env) as running:
        running.tmp = tmp  # type: ignore[attr-defined]
        yield running


def _raw(server: ServerProcess, target: bytes, method: bytes = b"GET", body: bytes = b"") -> tuple[int, bytes]:
    """Send a request line exactly as given; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: callback.example\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content


def test_the_url_check_echoes_only_a_number_as_nosniff_text(server: ServerProcess) -> None:
    ok = httpx.get(server.url + oa_url_check("1234567890123456789"), timeout=5)
    assert (ok.status_code, ok.text) == (200, "1234567890123456789")
    assert ok.headers["content-type"].startswith("text/plain")
    assert ok.headers["x-content-type-options"] == "nosniff"
    for hostile in ("<script>alert(1)</script>", "12<b>", "9" * 100, "", "123\r\nSet-Cookie: a=b"):
        refused = httpx.get(server.url + oa_url_check(hostile), timeout=5)
        assert refused.status_code == 400 and "<" not in refused.text and "set-cookie" not in refused.headers


@pytest.mark.parametrize("raw", [b"/wecom%2fapp", b"/wecom%2Fapp", b"/wecom/%61pp", b"//wecom/app",
                                 b"/wecom/./app", b"/wecom/x/../app", b"/wecom/app/.", b"/%e5%9b%9e%e8%b0%83",
                                 "/回调".encode()])
def test_paths_that_only_decode_to_a_channel_are_refused_as_they_arrive(server: ServerProcess, raw: bytes) -> None:
    side = Platform("wecom-app", "/wecom/app")
    query = side.verify_url_request().split("?", 1)[1].encode()
    assert _raw(server, b"/wecom/app?" + query) == (200, side.expected_echo.encode())
    status, body = _raw(server, raw + b"?" + query)
    assert status == 400, (raw, body)
    assert side.expected_echo.encode() not in body


def test_a_non_ascii_path_in_canonical_form_is_routed(server: ServerProcess) -> None:
    side = Platform("wecom-app", "/%E5%9B%9E%E8%B0%83")
    assert _raw(server, side.verify_url_request().encode()) == (200, side.expected_echo.encode())


def test_a_plaintext_request_captured_on_one_channel_does_not_replay_on_another(server: ServerProcess) -> None:
    a = Platform("official-account", "/plain-a")
    url, body = a.callback(oa_text("pay 100"), encrypted=False)
    assert _raw(server, url.encode(), b"POST", body)[0] == 200
    # the same signed query (token, timestamp, nonce) with another body, on the sibling channel
    query = url.split("?", 1)[1]
    assert _raw(server, f"/plain-b?{query}".encode(), b"POST", oa_text("pay 1000").encode())[0] == 403
    assert '"outcome": "replay"' in server.output()


def test_serve_refuses_to_start_when_dedup_would_end_inside_the_replay_window(tmp_path: Path) -> None:
    channel = CHANNELS["wecom"] | {"dedup_ttl": 30, "replay_window": 60}
    config = write_config(tmp_path / "wx.toml", "memory://", {"wecom": channel})
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "wxcallback", "serve", "--config", str(config), "--port",
                             str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "channels.wecom.dedup_ttl (30 s) is shorter than channels.wecom.replay_window" in result.stderr
    with pytest.raises(OSError):  # it never listened
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_blocking_sync_handler_holds_a_thread_not_the_worker(server: ServerProcess) -> None:
    tmp: Path = server.tmp  # type: ignore[attr-defined]
    blocking, other = Platform("wecom-app", "/blocking"), Platform("wecom-app", "/wecom/app")
    text = wecom_text("stuck")
    url, data = blocking.callback(text)
    # answered "no reply" at its deadline while the handler is still blocked in its thread
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post(url, content=data)
        assert (response.status_code, response.content) == (200, b"")
        calls = (tmp / "calls.txt").read_text().splitlines()
        assert len(calls) == 1 and not calls[0].startswith("finished")
        # the worker's loop serves everything else meanwhile
        for _ in range(3):
            assert client.get(other.verify_url_request()).text == other.expected_echo
            echoed = other.callback(wecom_text("free"))
            assert "free" in other.open_reply(client.post(echoed[0], content=echoed[1]).content)
        (tmp / "release").touch()
        for _ in range(500):
            if len((tmp / "calls.txt").read_text().splitlines()) == 2:
                break
            time.sleep(0.02)
        # the platform's retry gets the answer the handler gave late, without running it again
        url, data = blocking.callback(text)
        assert "blocked answer" in blocking.open_reply(client.post(url, content=data).content)
    assert [line.startswith("finished") for line in (tmp / "calls.txt").read_text().splitlines()] == [False, True]
