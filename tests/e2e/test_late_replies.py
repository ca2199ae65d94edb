"""Late replies through `wxcallback serve`, delivered to a local fake of the platforms' API.

A handler that thinks past its channel's deadline (an LLM, a slow backend): the platform gets
"no reply" in time, and the reply then arrives through the API of the channel's platform:
a robot's response_url, an Official Account's customer-service message, a WeCom app
message. Two processes on one Redis that need a token at once fetch it once; an API that is
down (for a minute: half of it not listening, half answering 503) loses nothing; a token
refused as invalid is refreshed once; a permanent refusal is a dead letter `wxcallback outbox
list` shows. A forwarding channel's slow backend has its reply sent by whichever process's
delivery worker redelivers the message.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.servers import ROOT, Backend, serve, until, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, wecom_text
from wxcallback.simulator.platform_api import FakePlatformAPI

OA_SECRET = "oa-secret-e2e-0123456789abcdef"
CORP_SECRET = "corp-secret-e2e-0123456789"
DEADLINE = 0.3
HANDLER = "tests.e2e.e2e_handlers:late_llm"


@pytest.fixture
def fake() -> Iterator[FakePlatformAPI]:
    api = FakePlatformAPI(apps={APPID: OA_SECRET}, corps={APPID: CORP_SECRET})
    with api.in_thread():
        yield api


def _channels(fake: FakePlatformAPI) -> dict[str, dict[str, Any]]:
    base = {"token": TOKEN, "encoding_aes_key": KEY, "deadline": DEADLINE, "handler": HANDLER}
    return {
        "oa": {"path": "/oa", "platform": "official-account", "receive_id": APPID, "app_secret": OA_SECRET,
               "api_base": fake.api_base, **base},
        "wecom": {"path": "/wecom", "platform": "wecom-app", "receive_id": APPID, "corp_secret": CORP_SECRET,
                  "agent_id": 1000002, "api_base": fake.api_base, **base},
        "robot": {"path": "/robot", "platform": "wecom-robot", **base},
    }


def _robot_text(content: str, response_url: str) -> str:
    return json.dumps({"msgid": f"m{time.time_ns()}", "aibotid": "bot1", "chattype": "single",
                       "from": {"userid": "lisi"}, "response_url": response_url, "msgtype": "text",
                       "text": {"content": content}})


def _post(client: httpx.Client, side: Platform, plaintext: str) -> tuple[httpx.Response, float]:
    url, body = side.callback(plaintext)
    started = time.perf_counter()
    response = client.post(url, content=body)
    return response, time.perf_counter() - started


def test_a_late_reply_arrives_through_each_platforms_send_api(tmp_path: Path, calls_file: Path,
                                                               fake: FakePlatformAPI) -> None:
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", _channels(fake))
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        oa, took_oa = _post(client, Platform("official-account", "/oa"), oa_text("weather?", user="oALICE"))
        wecom, took_wecom = _post(client, Platform("wecom-app", "/wecom"), wecom_text("report?"))
        robot, took_robot = _post(client, Platform("wecom-robot", "/robot", receive_id=""),
                                  _robot_text("summary?", fake.response_url()))
        # In time, "no reply": the platform stops waiting and retrying.
        assert (oa.status_code, oa.content) == (200, b"success")
        assert (wecom.status_code, wecom.content) == (200, b"")
        assert (robot.status_code, robot.content) == (200, b"")
        assert max(took_oa, took_wecom, took_robot) < DEADLINE + 1.0
        until(lambda: len(fake.received) == 3, 10, "three late replies")
        sent = {r.api: r.body for r in fake.received}
        assert sent == {
            "custom/send": {"touser": "oALICE", "msgtype": "text", "text": {"content": "after thinking: weather?"}},
            "message/send": {"touser": "zhangsan", "agentid": 1000002, "msgtype": "text",
                             "text": {"content": "after thinking: report?"}},
            "response_url": {"msgtype": "markdown", "markdown": {"content": "after thinking: summary?"}},
        }
        assert len(calls_file.read_text().split()) == 3
        metrics = client.get("/metrics").text
        assert 'wxcallback_reply_sends_total{channel="robot",result="sent"} 1.0' in metrics
    log = server.output()
    assert log.count('"outcome": "late_reply_sent"') == 3
    assert OA_SECRET not in log and CORP_SECRET not in log and "token-" not in log and "response_code" not in log


def test_two_processes_on_one_redis_needing_a_token_at_once_fetch_it_once(
        tmp_path: Path, calls_file: Path, fake: FakePlatformAPI, redis_url: str, redis_prefix: str) -> None:
    fake.token_delay = 0.5  # a slow token endpoint: both processes ask while the first fetch is in flight
    channels = {"oa": _channels(fake)["oa"]}
    config = write_config(tmp_path / "wx.toml", f"{redis_url}?prefix={redis_prefix}", channels)
    with serve(config) as first, serve(config) as second:
        side = Platform("official-account", "/oa")
        answers: list[int] = []

        def one(url: str, user: str) -> None:
            response, _ = _post(httpx.Client(base_url=url, timeout=10), side, oa_text("at once", user=user))
            answers.append(response.status_code)

        threads = [threading.Thread(target=one, args=(server.url, user))
                   for server, user in ((first, "oONE"), (second, "oTWO"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200, 200]
        until(lambda: len(fake.received) == 2, 10, "both late replies")
    assert {r.body["touser"] for r in fake.received} == {"oONE", "oTWO"}
    assert fake.token_requests == 1


def test_the_api_down_loses_nothing_and_a_permanent_refusal_is_a_dead_letter(
        tmp_path: Path, calls_file: Path, fake: FakePlatformAPI) -> None:
    channels = {"oa": _channels(fake)["oa"]}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        side = Platform("official-account", "/oa")
        fake.down_for(4.0)
        response, _ = _post(client, side, oa_text("during the outage", user="oPATIENT"))
        assert response.content == b"success"
        until(lambda: '"late_reply_failed"' in server.output(), 10, "the failed first try")
        assert fake.received == []
        until(lambda: len(fake.received) == 1, 30, "the reply once the API is back")
        assert fake.received[0].body["text"] == {"content": "after thinking: during the outage"}

        fake.out_of_window.add("oGONE")  # 45015: the 48-hour window closed; never retried
        _post(client, side, oa_text("too late", user="oGONE"))
        until(lambda: '"late_reply_dead"' in server.output(), 10, "the dead letter")
    listed = subprocess.run([sys.executable, "-m", "wxcallback", "outbox", "list", "--config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "0 waiting, 1 dead letter(s)" in listed.stdout and "errcode 45015" in listed.stdout
    assert len(fake.received) == 1 and [api for api, _ in fake.refused] == ["custom/send"]


def test_a_slow_backends_reply_is_sent_by_another_process_than_the_one_that_took_the_callback(
        tmp_path: Path, fake: FakePlatformAPI, redis_url: str, redis_prefix: str) -> None:
    backend = Backend(reply={"type": "text", "content": "the backend, late"}, slow_inline=1.0)
    backend.start()
    try:
        channels = {name: {k: v for k, v in channel.items() if k != "handler"}
                    | {"forward": backend.url, "forward_timeout": 0.2}
                    for name, channel in _channels(fake).items() if name in ("oa", "robot")}
        config = write_config(tmp_path / "wx.toml", f"{redis_url}?prefix={redis_prefix}", channels)
        with serve(config) as taker, serve(config) as other:
            with httpx.Client(base_url=taker.url, timeout=10) as client:
                oa, _ = _post(client, Platform("official-account", "/oa"), oa_text("who sends?", user="oFAR"))
                robot, _ = _post(client, Platform("wecom-robot", "/robot", receive_id=""),
                                 _robot_text("who sends?", fake.response_url()))
            assert (oa.content, robot.content) == (b"success", b"")
            taker.kill()  # before its delivery worker's first retry: only the stored parcel is left
            until(lambda: len(fake.received) == 2, 30, "both late replies, from the other process")
        assert {r.api: r.body for r in fake.received} == {
            "custom/send": {"touser": "oFAR", "msgtype": "text", "text": {"content": "the backend, late"}},
            "response_url": {"msgtype": "markdown", "markdown": {"content": "the backend, late"}},
        }
        assert other.output().count('"outcome": "late_reply_sent"') == 2
        assert OA_SECRET not in other.output()
    finally:
        backend.stop()


def test_the_api_down_for_a_minute_refused_then_503_loses_nothing(tmp_path: Path, calls_file: Path) -> None:
    # The one long test here: the claim is a minute, so the outage lasts one.
    api = FakePlatformAPI(apps={APPID: OA_SECRET}, corps={APPID: CORP_SECRET})  # not listening yet
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", _channels(api))
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        outage_ends = time.monotonic() + 60.0
        answers = [_post(client, Platform("official-account", "/oa"), oa_text("a minute", user="oMINUTE"))[0],
                   _post(client, Platform("wecom-app", "/wecom"), wecom_text("a minute"))[0],
                   _post(client, Platform("wecom-robot", "/robot", receive_id=""),
                         _robot_text("a minute", api.response_url()))[0]]
        assert [a.status_code for a in answers] == [200, 200, 200]
        until(lambda: server.output().count("unreachable (ConnectError)") >= 3, 10, "the refused first tries")
        time.sleep(max(0.0, outage_ends - 30.0 - time.monotonic()))
        # Half the minute refused (nothing listening), the other half answered 503.
        api.down_for(outage_ends - time.monotonic())
        with api.in_thread():
            until(lambda: "answered 503" in server.output(), 30, "a 503 during the outage")
            until(lambda: len(api.received) == 3, 60 + 30, "the three replies once the API is back")
            assert time.monotonic() >= outage_ends - 0.5 and api.token_requests == 2
            until(lambda: server.output().count('"outcome": "late_reply_sent"') == 3, 10, "three sent lines")
    assert sorted(r.api for r in api.received) == ["custom/send", "message/send", "response_url"]
    assert all(r.body.get("text", r.body.get("markdown")) == {"content": "after thinking: a minute"}
               for r in api.received)
    log = server.output()
    delays = [float(d) for d in re.findall(r"next try in ([0-9.]+) s", log)]
    assert delays and max(delays) <= 12.5, delays  # at most ~12 s from the API's return to the reply
    assert '"late_reply_dead"' not in log
    listed = subprocess.run([sys.executable, "-m", "wxcallback", "outbox", "list", "--config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "0 waiting, 0 dead letter(s)" in listed.stdout, listed.stdout + listed.stderr


def test_an_invalid_credential_through_serve_forces_exactly_one_refresh(
        tmp_path: Path, calls_file: Path, fake: FakePlatformAPI) -> None:
    channels = {"oa": _channels(fake)["oa"]}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        side = Platform("official-account", "/oa")
        _post(client, side, oa_text("first", user="oCRED"))
        until(lambda: len(fake.received) == 1, 10, "the first reply")
        assert fake.token_requests == 1
        fake.invalidate_tokens()  # the AppSecret's token fetched elsewhere: the stored one is refused (40001)
        _post(client, side, oa_text("second", user="oCRED"))
        until(lambda: len(fake.received) == 2, 10, "the second reply, with a fresh token")
        _post(client, side, oa_text("third", user="oCRED"))
        until(lambda: len(fake.received) == 3, 10, "the third reply, with the same fresh token")
    assert fake.token_requests == 2
    assert [api for api, _ in fake.refused] == ["custom/send"]  # the one send the stale token made
    assert [r.body["text"]["content"] for r in fake.received] == [
        "after thinking: first", "after thinking: second", "after thinking: third"]
    assert server.output().count('"outcome": "late_reply_sent"') == 3
    assert '"late_reply_failed"' not in server.output()
