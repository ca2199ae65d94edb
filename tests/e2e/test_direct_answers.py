"""A callback whose body came with its head is answered by the HTTP protocol itself, past
the ASGI cycle: what the client gets is what the ASGI path gives, on every connection shape
(keep-alive, pipelined, HTTP/1.0, closed early, a worker stopping)."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import ServerProcess, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text

CHANNELS = {
    "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID},
    "slow": {"path": "/slow", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
             "receive_id": APPID, "handler": "tests.e2e.e2e_handlers:slow_echo", "deadline": 3.0},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = write_config(tmp_path_factory.mktemp("direct") / "wx.toml", "memory://", CHANNELS)
    with serve(config) as running:
        yield running


def _request(url: str, body: bytes = b"", *, method: str = "POST", version: str = "1.1",
             headers: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(head, body) of a request as a platform sends it."""
    lines = [f"{method} {url} HTTP/{version}", "Host: 127.0.0.1", "Content-Type: application/xml", *headers]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


class _Reader:
    """Responses read off one connection, one at a time (Content-Length framed)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"closed before a response head: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for field in fields:
            name, _, value = field.partition(":")
            assert name.lower() not in headers, f"{name} twice"
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "closed before the whole body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        self.sock.settimeout(5)
        try:
            return not self._fill()
        except ConnectionResetError:
            return True


def _connect(server: ServerProcess) -> tuple[socket.socket, _Reader]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock, _Reader(sock)


def test_a_body_with_its_head_and_a_body_after_it_get_the_same_answer(server: ServerProcess) -> None:
    side = Platform("wecom-app", "/wecom")
    answers = []
    for split in (False, True):
        url, data = side.callback(wecom_text(f"split {split}"))
        head, body = _request(url, data)
        sock, reader = _connect(server)
        with sock:
            if split:  # the body follows later: the ASGI path reads it
                sock.sendall(head)
                time.sleep(0.2)
                sock.sendall(body)
            else:
                sock.sendall(head + body)
            status, headers, reply = reader.response()
        assert status == 200 and f"split {split}" in side.open_reply(reply, side.last_nonce)
        headers.pop("date")
        headers.pop("content-length")  # the reply's own (framing is checked by the reader)
        answers.append((status, headers))
    assert answers[0] == answers[1]
    assert answers[0][1]["x-content-type-options"] == "nosniff"
    assert answers[0][1]["content-type"] == "application/xml; charset=utf-8"


def test_keep_alive_and_pipelined_callbacks_are_answered_in_order(server: ServerProcess) -> None:
    side = Platform("wecom-app", "/wecom")
    sock, reader = _connect(server)
    with sock:
        for n in range(3):  # one after another on one connection
            url, data = side.callback(wecom_text(f"kept {n}"))
            sock.sendall(b"".join(_request(url, data)))
            status, headers, reply = reader.response()
            assert status == 200 and "connection" not in headers
            assert f"kept {n}" in side.open_reply(reply, side.last_nonce)
        # two requests in one write: the second waits for the first's answer
        sent = []
        for n in range(2):
            url, data = side.callback(wecom_text(f"pipelined {n}"))
            sent.append((b"".join(_request(url, data)), side.last_nonce))
        sock.sendall(sent[0][0] + sent[1][0])
        for n, (_, nonce) in enumerate(sent):
            status, _, reply = reader.response()
            assert status == 200 and f"pipelined {n}" in side.open_reply(reply, nonce)


@pytest.mark.parametrize("version, headers", [("1.0", ()), ("1.1", ("Connection: close",))])
def test_a_connection_the_client_does_not_keep_is_closed_after_its_answer(
        server: ServerProcess, version: str, headers: tuple[str, ...]) -> None:
    side = Platform("wecom-app", "/wecom")
    url, data = side.callback(wecom_text("once"))
    sock, reader = _connect(server)
    with sock:
        sock.sendall(b"".join(_request(url, data, version=version, headers=headers)))
        status, response_headers, reply = reader.response()
        assert status == 200 and response_headers["connection"] == "close"
        assert "once" in side.open_reply(reply, side.last_nonce)
        assert reader.closed()


def test_refusals_and_other_routes_answer_as_before(server: ServerProcess) -> None:
    side = Platform("wecom-app", "/wecom")
    url, data = side.callback(wecom_text("forged"))
    sock, reader = _connect(server)
    with sock:
        sock.sendall(b"".join(_request(url.replace("msg_signature=", "msg_signature=0"), data)))
        assert reader.response()[0] == 403
        sock.sendall(b"".join(_request("/nowhere?x=1", data)))
        assert reader.response()[0] == 404
        sock.sendall(b"".join(_request("/healthz", method="GET")))
        status, _, body = reader.response()
        assert status == 200 and b'"status"' in body
        sock.sendall(b"".join(_request(side.verify_url_request(), method="GET")))
        status, headers, body = reader.response()
        assert (status, body.decode()) == (200, side.expected_echo)
        assert headers["content-type"] == "text/plain; charset=utf-8"
        sock.sendall(b"".join(_request("/wecom%2fx?x=1", data)))  # noncanonical: the ASGI path refuses it
        assert reader.response()[0] == 400


def test_a_client_gone_before_a_slow_answer_leaves_the_reply_cached_for_its_retry(server: ServerProcess) -> None:
    side = Platform("wecom-app", "/slow")
    url, data = side.callback(wecom_text("gone"))
    request = b"".join(_request(url, data))
    sock, _ = _connect(server)
    sock.sendall(request)
    time.sleep(0.2)
    sock.close()  # while the handler still runs
    time.sleep(1.2)
    sock, reader = _connect(server)
    with sock:
        sock.sendall(request)  # the platform's retry
        started = time.monotonic()
        status, _, reply = reader.response()
        assert status == 200 and time.monotonic() - started < 0.5  # the cached reply, not a second run
        assert "slow: gone" in side.open_reply(reply, side.last_nonce)
    assert "Traceback" not in server.output() and "unexpected error" not in server.output()


def test_a_stopping_worker_finishes_the_answer_in_flight_and_closes(tmp_path: Path) -> None:
    config = write_config(tmp_path / "wx.toml", "memory://", CHANNELS)
    side = Platform("wecom-app", "/slow")
    with serve(config) as running:
        url, data = side.callback(wecom_text("last one"))
        sock, reader = _connect(running)
        with sock:
            sock.sendall(b"".join(_request(url, data)))
            time.sleep(0.2)
            running.process.send_signal(signal.SIGTERM)
            status, headers, reply = reader.response()
            assert status == 200 and headers["connection"] == "close"
            assert "slow: last one" in side.open_reply(reply, side.last_nonce)
            assert reader.closed()
        running.process.wait(timeout=15)  # gone (uvicorn exits by the signal it got)
        with pytest.raises(httpx.HTTPError):
            httpx.get(running.url + "/healthz", timeout=1)


def test_a_request_pipelined_behind_a_slow_answer_waits_its_turn(server: ServerProcess) -> None:
    slow, fast = Platform("wecom-app", "/slow"), Platform("wecom-app", "/wecom")
    url, data = slow.callback(wecom_text("first"))
    first, first_nonce = b"".join(_request(url, data)), slow.last_nonce
    url, data = fast.callback(wecom_text("second"))
    second, second_nonce = b"".join(_request(url, data)), fast.last_nonce
    sock, reader = _connect(server)
    with sock:
        sock.sendall(first + second)  # the second's answer is ready long before the first's
        status, _, reply = reader.response()
        assert status == 200 and "slow: first" in slow.open_reply(reply, first_nonce)
        status, _, reply = reader.response()
        assert status == 200 and "second" in fast.open_reply(reply, second_nonce)


@pytest.mark.parametrize("target", ["http://127.0.0.1/wecom?x=1", "http://127.0.0.1", "*"])
def test_odd_request_targets_are_refused_not_crashed_on(server: ServerProcess, target: str) -> None:
    sock, reader = _connect(server)
    with sock:
        sock.sendall(b"".join(_request(target, b"<xml/>")))
        assert 400 <= reader.response()[0] < 500
    assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200


def test_a_body_that_never_comes_is_timed_out_whatever_came_before_it(tmp_path: Path) -> None:
    # A's body arrives in two reads (the ASGI path); B's head comes in A's last read and
    # announces a short body that never follows: B must get 408 at body_timeout, as any
    # request whose body is late, and not be held open for good
    config = write_config(tmp_path / "wx.toml", "memory://", CHANNELS, body_timeout=1.0)
    side = Platform("wecom-app", "/wecom")
    with serve(config) as running:
        url, data = side.callback(wecom_text("first"))
        head, body = _request(url, data)
        second_head, _ = _request(url.replace("nonce=", "nonce=x"), b"0123456789")
        sock, reader = _connect(running)
        with sock:
            sock.sendall(head + body[:len(body) // 2])
            time.sleep(0.2)
            sock.sendall(body[len(body) // 2:] + second_head)
            assert reader.response()[0] == 200
            started = time.monotonic()
            status, _, _ = reader.response()
            assert status == 408 and time.monotonic() - started < 5
