"""The long connection end to end: real `wxcallback serve` processes against the fake platform.

Two workers share a SQLite file, or two servers (two workers each) share one Redis; exactly one
process holds the bot's connection. Timings are shortened (heartbeat 1 s, backoff 0.2-1 s, lease
2 s) so drops, refusals, evictions and a SIGKILLed holder play out in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.fake_longconn import ThreadedFake, fake_platform
from tests.e2e.servers import ServerProcess, serve, write_config
from tests.conftest import free_port
from wxcallback.longconn import Cmd, DeliveryUnknown
from wxcallback.server.longconn_channel import LongConnClient
from wxcallback.server.stores import open_store

BOT_ID = "bot-e2e"
SECRET = "e2e-secret-4b8c"


@pytest.fixture
def fake() -> Iterator[ThreadedFake]:
    with fake_platform(bot_id=BOT_ID, secret=SECRET) as threaded:
        yield threaded


def _config(tmp_path: Path, fake: ThreadedFake, store: str, **channel: Any) -> Path:
    values: dict[str, Any] = {"platform": "wecom-robot", "transport": "websocket", "bot_id": BOT_ID,
                              "secret": SECRET, "url": fake.fake.url, "handler": "tests.e2e.longconn_handlers:router",
                              "heartbeat_interval": 1.0, "reconnect_delay": 0.2, "reconnect_max_delay": 1.0,
                              "lease_ttl": 2.0, "max_subscribe_failures": 3}
    values.update(channel)
    return write_config(tmp_path / "wxcallback.toml", store, {"assistant": values})


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _longconn(server: ServerProcess) -> dict[str, Any]:
    entry: dict[str, Any] = httpx.get(f"{server.url}/healthz", timeout=5).json()["longconn"]["assistant"]
    return entry


def _healths(server: ServerProcess, times: int = 6) -> list[tuple[int, dict[str, Any]]]:
    """/healthz asked several times on new connections, so that every worker answers some."""
    answers = []
    for _ in range(times):
        with httpx.Client(timeout=5) as client:
            response = client.get(f"{server.url}/healthz")
        answers.append((response.status_code, response.json()))
    return answers


def _holder_pid(fake: ThreadedFake, servers: list[ServerProcess]) -> int:
    """The pid of the worker that holds the lease, as /healthz on any worker reports it."""
    holder = _longconn(servers[0])["holder"]
    assert holder is not None and not holder.startswith("down:")
    return int(holder.split(":")[1])


def test_two_workers_hold_one_connection_and_answer_as_the_http_channel_does(
        tmp_path: Path, fake: ThreadedFake, calls_file: Path) -> None:
    config = _config(tmp_path, fake, f"sqlite:///{tmp_path / 'state.db'}")
    with serve(config, workers=2) as server:
        fake.wait_until(lambda: fake.fake.subscribed)
        time.sleep(3)  # time for the other worker to try (it stands by)
        assert (fake.fake.connections, fake.fake.subscribe_attempts) == (1, 1)

        # pings on time: every heartbeat_interval, within the platform's patience
        pings = list(fake.fake.pings)
        assert len(pings) >= 2
        assert all(0.7 <= later - earlier <= 1.5 for earlier, later in zip(pings, pings[1:])), pings

        # a text message: a well-formed stream (same id, cumulative, finished, no rule broken)
        text = fake.call(lambda: fake.fake.push_message("text", text="hello"))
        fake.wait_until(lambda: fake.fake.finished(text.req_id))
        last = text.replies[-1].body
        assert last is not None and last["stream"]["content"] == "you said: hello"

        # welcome and card update within 5 s
        welcome = fake.call(lambda: fake.fake.push_event("enter_chat"))
        card = fake.call(lambda: fake.fake.push_event("template_card_event", task_id="task_e2e"))
        fake.wait_until(lambda: bool(welcome.replies and card.replies))
        assert welcome.replies[0].cmd == Cmd.RESPOND_WELCOME and welcome.reply_times[0] - welcome.at < 5
        assert card.replies[0].cmd == Cmd.RESPOND_UPDATE and card.reply_times[0] - card.at < 5

        # the same msgid again: answered with the same text, the handler not run again
        again = fake.call(lambda: fake.fake.push(Cmd.MSG_CALLBACK, dict(text.body)))
        fake.wait_until(lambda: fake.fake.finished(again.req_id))
        body = again.replies[-1].body
        assert body is not None and body["stream"]["content"] == "you said: hello"
        assert [line for line in _calls(calls_file) if text.body["msgid"] in line] != []
        assert len([line for line in _calls(calls_file) if text.body["msgid"] in line]) == 1

        # a proactive message from another process (the CLI), sent by the holder
        sent = subprocess.run([sys.executable, "-m", "wxcallback", "send", "--config", str(config), "--chat",
                               "zhangsan", "--markdown", "**from the CLI**"], capture_output=True, text=True,
                              timeout=30)
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["errcode"] == 0
        frames = [r.frame for r in fake.fake.received if r.frame is not None and r.frame.cmd == Cmd.SEND_MSG]
        assert [f.body for f in frames] == [{"chatid": "zhangsan", "msgtype": "markdown",
                                             "markdown": {"content": "**from the CLI**"}}]

        health = _longconn(server)
        assert health["holder"] is not None and SECRET not in str(health)
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert 'wxcallback_longconn_up{channel="assistant"} 1.0' in metrics
    assert fake.fake.violations == []
    assert SECRET not in server.output()


def test_a_dropped_connection_comes_back_and_answers_again(tmp_path: Path, fake: ThreadedFake,
                                                           calls_file: Path) -> None:
    config = _config(tmp_path, fake, f"sqlite:///{tmp_path / 'state.db'}")
    with serve(config, workers=2) as server:
        fake.wait_until(lambda: fake.fake.subscribed)
        fake.call(fake.fake.drop)
        fake.wait_until(lambda: fake.fake.subscribed and fake.fake.subscribes_ok == 2, timeout=10)
        text = fake.call(lambda: fake.fake.push_message("text", text="back"))
        fake.wait_until(lambda: fake.fake.finished(text.req_id))
        assert fake.fake.connections == 2
        lines = [line for line in server.output().splitlines() if "longconn_backoff" in line]
        assert lines, server.output()
    assert fake.fake.violations == []


def test_a_refused_subscribe_is_not_retried_in_a_storm(tmp_path: Path, fake: ThreadedFake) -> None:
    config = _config(tmp_path, fake, f"sqlite:///{tmp_path / 'state.db'}", secret="wrong-secret")
    with serve(config, workers=2, ready_path=None) as server:
        fake.wait_until(lambda: fake.fake.subscribe_attempts >= 3, timeout=15)
        time.sleep(5)  # the other worker, and this one, stay down
        assert fake.fake.subscribe_attempts == 3
        health = _longconn(server)
        assert health["terminal"] == "subscribe_refused" and health["connected"] is False
        assert "853000" in server.output() and "wrong-secret" not in server.output()
        # nobody serves the bot until a restart: every worker's /healthz says so, naming it
        for status, report in _healths(server):
            assert status == 503, report
            assert "assistant" in report["status"] and "subscribe_refused" in report["status"], report
            assert "853000" in report["status"] and "wrong-secret" not in report["status"]


def test_an_evicted_server_stays_down(tmp_path: Path, fake: ThreadedFake) -> None:
    config = _config(tmp_path, fake, f"sqlite:///{tmp_path / 'state.db'}")
    with serve(config, workers=2) as server:
        fake.wait_until(lambda: fake.fake.subscribed)
        fake.call(fake.fake.evict)
        attempts = fake.fake.subscribe_attempts
        time.sleep(6)  # three lease lifetimes: nobody reconnects
        assert fake.fake.subscribe_attempts == attempts
        assert fake.fake.connections == 2  # ours, then the rival's
        assert _longconn(server)["terminal"] == "evicted"
        for status, report in _healths(server):
            assert status == 503, report
            assert "assistant" in report["status"] and "evicted" in report["status"], report


def test_a_sigkilled_holder_is_taken_over_by_the_other_server_on_one_redis(
        tmp_path: Path, fake: ThreadedFake, calls_file: Path, redis_url: str, redis_prefix: str) -> None:
    config = _config(tmp_path, fake, f"{redis_url}?prefix={redis_prefix}")
    first = ServerProcess(config, free_port(), workers=2)
    second = ServerProcess(config, free_port(), workers=2)
    try:
        fake.wait_until(lambda: fake.fake.subscribed)
        time.sleep(2)
        assert fake.fake.subscribe_attempts == 1
        holder = _holder_pid(fake, [first, second])
        os.kill(holder, signal.SIGKILL)
        fake.wait_until(lambda: fake.fake.subscribes_ok == 2, timeout=15)
        assert _holder_pid(fake, [second]) != holder
        text = fake.call(lambda: fake.fake.push_message("text", text="after"))
        fake.wait_until(lambda: fake.fake.finished(text.req_id))
        time.sleep(2)
        assert fake.fake.subscribe_attempts == 2  # one takeover, no fight
    finally:
        first.stop()
        second.stop()
    assert fake.fake.violations == []


def test_a_reconnecting_connection_is_reported_but_keeps_healthz_up(tmp_path: Path, fake: ThreadedFake) -> None:
    config = _config(tmp_path, fake, f"sqlite:///{tmp_path / 'state.db'}")
    with serve(config, workers=2) as server:
        fake.wait_until(lambda: fake.fake.subscribed)
        time.sleep(1)  # the holder publishes its state for the other worker
        for status, report in _healths(server):  # held by one worker, standing by in the other: all well
            assert (status, report["degraded"]) == (200, []), report
        # the next subscribes go unanswered: the connection keeps trying, nothing is lost for good
        fake.fake.withhold_acks.add(Cmd.SUBSCRIBE)
        fake.call(fake.fake.drop)
        fake.wait_until(lambda: fake.fake.subscribe_attempts >= 2)
        for status, report in _healths(server):
            assert status == 200, report
            assert [line for line in report["degraded"] if "assistant" in line], report
            assert report["longconn"]["assistant"]["terminal"] is None


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout} s in vain")
        await asyncio.sleep(0.05)


def _sent(fake: ThreadedFake, cmd: str) -> list[dict[str, Any]]:
    return [r.frame.body or {} for r in list(fake.fake.received) if r.frame is not None and r.frame.cmd == cmd]


def test_a_sigkilled_holder_passes_on_its_queued_requests_and_no_send_is_lost_silently(
        tmp_path: Path, fake: ThreadedFake, redis_url: str, redis_prefix: str) -> None:
    store_url = f"{redis_url}?prefix={redis_prefix}"
    config = _config(tmp_path, fake, store_url, ack_timeout=10.0)
    servers = [ServerProcess(config, free_port()), ServerProcess(config, free_port())]
    data = bytes(range(256)) * 40

    async def scenario() -> None:
        async with open_store(store_url) as store:
            client = LongConnClient(store, BOT_ID, timeout=20)
            # The holder sends a message and starts an upload; the platform has not acknowledged either
            # when the holder is killed.
            fake.fake.withhold_acks.update({Cmd.SEND_MSG, Cmd.UPLOAD_INIT})
            in_flight = asyncio.ensure_future(client.send_markdown("zhangsan", "in flight"))
            upload = asyncio.ensure_future(client.upload_media(data, media_type="file", filename="report.bin"))
            await _until(lambda: bool(_sent(fake, Cmd.SEND_MSG) and _sent(fake, Cmd.UPLOAD_INIT)))
            holder = _holder_pid(fake, servers)
            os.kill(holder, signal.SIGKILL)
            fake.fake.withhold_acks.clear()
            queued = asyncio.ensure_future(client.send_markdown("lisi", "queued meanwhile"))

            # sent, never acknowledged: the sender is told it may have arrived, not that nobody sent it
            with pytest.raises(DeliveryUnknown, match="may or may not have reached the chat"):
                await in_flight
            # the upload is done again by the next holder, and the request queued meanwhile is sent by it
            media = await upload
            assert fake.fake.uploads[media.media_id] == data
            assert (await queued)["errcode"] == 0
            assert _holder_pid(fake, [s for s in servers if s.process.pid != holder]) != holder

    try:
        fake.wait_until(lambda: fake.fake.subscribed)
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        for server in servers:
            server.stop()
    contents = [body["markdown"]["content"] for body in _sent(fake, Cmd.SEND_MSG)]
    assert sorted(contents) == ["in flight", "queued meanwhile"]  # each sent once, the first never again
    assert len(_sent(fake, Cmd.UPLOAD_INIT)) == 2
    assert fake.fake.subscribes_ok == 2
