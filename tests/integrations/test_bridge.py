"""BlockingCallbackServer: the server on its own loop thread, called from blocking code."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

from tests.integrations import handlers
from tests.integrations.support import MAX_BODY, config_mapping
from tests.platform_requests import Platform, robot_text, wecom_text
from wxcallback.integrations.bridge import BlockingCallbackServer, server_config
from wxcallback.server.config import ConfigError, parse_config


class Source:
    """A request body stream that counts what was taken from it."""

    def __init__(self, size: int | None, *, piece: int = 1 << 20, pause: float = 0.0) -> None:
        self.left = size  # None: never ends
        self.piece = piece
        self.pause = pause
        self.taken = 0

    def read(self, size: int, /) -> bytes:
        time.sleep(self.pause)
        size = min(size, self.piece)
        if self.left is not None:
            size = min(size, self.left)
            self.left -= size
        self.taken += size
        return b"A" * size


@pytest.fixture
def bridge() -> Iterator[BlockingCallbackServer]:
    bridge = BlockingCallbackServer(parse_config(config_mapping("memory://")))
    yield bridge
    bridge.close()


def _query(side: Platform, plaintext: str) -> tuple[bytes, bytes]:
    url, data = side.callback(plaintext)
    return url.partition("?")[2].encode(), data


class BytesStream:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int, /) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def test_callback_read_from_a_stream_is_answered_like_the_standalone_server(
        bridge: BlockingCallbackServer) -> None:
    side = Platform("wecom-app", "/wecom")
    query, data = _query(side, wecom_text("bridged"))
    answer = bridge.respond("POST", "/wecom", query, BytesStream(data), len(data))
    assert answer.status == 200
    assert "echo: bridged" in side.open_reply(answer.body, side.last_nonce)


def test_declared_length_over_the_limit_is_refused_before_reading(bridge: BlockingCallbackServer) -> None:
    source = Source(MAX_BODY * 4)
    answer = bridge.respond("POST", "/wecom", b"", source, MAX_BODY * 4)
    assert answer.status == 413 and answer.outcome == "too_large"
    assert source.taken == 0


def test_undeclared_body_is_read_no_further_than_one_byte_past_the_limit(bridge: BlockingCallbackServer) -> None:
    source = Source(None)
    answer = bridge.respond("POST", "/wecom", b"", source, None)
    assert answer.status == 413
    assert source.taken == MAX_BODY + 1


def test_body_trickling_past_body_timeout_is_answered_408() -> None:
    bridge = BlockingCallbackServer(parse_config(config_mapping("memory://", body_timeout=0.1)))
    try:
        source = Source(None, piece=100, pause=0.05)
        answer = bridge.respond("POST", "/wecom", b"", source, None)
        assert answer.status == 408 and answer.outcome == "body_timeout"
        assert source.taken < MAX_BODY
    finally:
        bridge.close()


class Disconnecting(BytesStream):
    def read(self, size: int, /) -> bytes:
        if not self.data:
            raise OSError("connection reset by peer")
        return super().read(min(size, 10))


def test_a_client_gone_mid_body_gets_a_refusal_not_an_exception(bridge: BlockingCallbackServer) -> None:
    side = Platform("wecom-app", "/wecom")
    query, data = _query(side, wecom_text("cut short"))
    answer = bridge.respond("POST", "/wecom", query, Disconnecting(data[:40]), len(data))
    assert answer.status == 400


def test_get_and_head_read_no_body(bridge: BlockingCallbackServer) -> None:
    source = Source(10)
    side = Platform("wecom-app", "/wecom")
    query = side.verify_url_request().partition("?")[2].encode()
    for method in ("GET", "HEAD"):
        answer = bridge.respond(method, "/wecom", query, source, 10)
        assert answer.status == 200 and answer.body.decode() == side.expected_echo
    assert source.taken == 0


def test_concurrent_first_calls_start_one_server(bridge: BlockingCallbackServer) -> None:
    with ThreadPoolExecutor(8) as pool:
        servers = list(pool.map(lambda _: bridge.server, range(8)))
    assert all(server is servers[0] for server in servers)
    assert sum(t.name == "wxcallback-loop" and t.is_alive() for t in threading.enumerate()) >= 1
    status, body = bridge.health()
    assert status == 200 and json.loads(body)["channels"] == ["wecom", "robot"]


def test_close_finishes_a_running_stream_then_a_later_call_starts_anew(bridge: BlockingCallbackServer) -> None:
    side = Platform("wecom-robot", "/robot", receive_id="")
    query, data = _query(side, robot_text("bridge-close"))
    first = bridge.server
    answer = bridge.respond("POST", "/robot", query, data, len(data))
    reply = json.loads(side.open_reply(answer.body, side.last_nonce))
    assert reply["stream"]["finish"] is False
    bridge.close()
    assert handlers.streams_finished["bridge-close"] == 1
    assert first.pipeline is None
    assert bridge.health()[0] == 200 and bridge.server is not first


def _use_after_fork(bridge: BlockingCallbackServer, parent_server_id: int, results: multiprocessing.Queue[object]) -> None:
    status, _ = bridge.health()
    results.put((status, id(bridge.server) != parent_server_id))
    bridge.close()


def test_child_after_fork_gets_its_own_loop_and_server(bridge: BlockingCallbackServer) -> None:
    assert bridge.health()[0] == 200  # the parent's loop thread runs
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[object] = context.Queue()
    child = context.Process(target=_use_after_fork, args=(bridge, id(bridge.server), results))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=5) == (200, True)
    assert bridge.health()[0] == 200  # the parent's server is untouched


def test_server_config_reads_a_toml_file_a_mapping_or_a_config(tmp_path: Path) -> None:
    toml = tmp_path / "wx.toml"
    toml.write_text('[server]\nstore = "memory://"\n[channels.w]\npath = "/w"\nplatform = "signature-only"\n'
                    'token = "T0ken"\n', encoding="utf-8")
    from_file = server_config(toml)
    assert [c.path for c in from_file.channels] == ["/w"]
    assert [(c.name, c.token) for c in server_config(str(toml)).channels] == [("w", "T0ken")]
    assert server_config(from_file) is from_file
    assert server_config({"channels": {"w": {"path": "/w", "platform": "signature-only", "token": "T0ken"}}},
                         ).channels[0].name == "w"
    with pytest.raises(ConfigError, match="must be a ServerConfig, a mapping or a path"):
        server_config(42)  # type: ignore[arg-type]


def test_a_handler_that_cannot_be_imported_stops_the_adapter_at_construction() -> None:
    mapping = config_mapping("memory://")
    mapping["channels"]["wecom"]["handler"] = "tests.integrations.no_such_module:echo"
    with pytest.raises(ConfigError, match="channels.wecom.handler: cannot import"):
        BlockingCallbackServer(parse_config(mapping))


EXITING_APP = """
import json, sys
from tests.integrations.support import config_mapping
from tests.platform_requests import Platform, robot_text
from wxcallback.integrations.bridge import BlockingCallbackServer
from wxcallback.server.config import parse_config

mapping = config_mapping(sys.argv[1])  # SQLite: its store closes through a thread pool
mapping["channels"]["robot"]["handler"] = "tests.integrations.handlers:recorded_stream"
bridge = BlockingCallbackServer(parse_config(mapping))
side = Platform("wecom-robot", "/robot", receive_id="")
url, data = side.callback(robot_text("at exit"))
answer = bridge.respond("POST", "/robot", url.partition("?")[2].encode(), data, len(data))
print(json.loads(side.open_reply(answer.body, side.last_nonce))["stream"]["finish"])
"""


def test_a_stream_still_running_at_interpreter_exit_is_finished_first(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    done = subprocess.run([sys.executable, "-c", EXITING_APP, f"sqlite:///{tmp_path}/state.db"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "WXCALLBACK_TEST_RECORD": str(record)},
                          timeout=60, check=False)
    assert done.returncode == 0 and "failed" not in done.stderr, done.stderr
    assert done.stdout.strip() == "False"  # the process exited while the stream was running
    assert record.read_text(encoding="utf-8") == "finished at exit\n"
