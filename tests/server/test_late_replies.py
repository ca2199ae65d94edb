"""Late replies and proactive sends through the platforms' APIs, in process, against the local fake API.

A real CallbackServer (memory or SQLite store, its delivery worker) answers signed, encrypted
callbacks; the fake (wxcallback.simulator.platform_api) plays the token, send and response_url
endpoints and records what arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, wecom_text
from wxcallback.cli import main
from wxcallback.server.config import ConfigError, parse_config
from wxcallback.server.runtime import CallbackServer
from wxcallback.server.stores import MemoryStore, Store, open_store
from wxcallback.simulator.platform_api import FakePlatformAPI

OA_SECRET = "oa-app-secret-0123456789abcdef"
CORP_SECRET = "corp-app-secret-0123456789"
BASE = {"token": TOKEN, "encoding_aes_key": KEY, "deadline": 0.1}


def channels(api_base: str, handler: str = "tests.server.handlers:late_llm", **extra: Any) -> dict[str, Any]:
    return {
        "oa": {"path": "/oa", "platform": "official-account", "receive_id": APPID, "app_secret": OA_SECRET,
               "api_base": api_base, "handler": handler, **BASE, **extra},
        "wecom": {"path": "/wecom", "platform": "wecom-app", "receive_id": APPID, "corp_secret": CORP_SECRET,
                  "agent_id": 1000002, "api_base": api_base, "handler": handler, **BASE, **extra},
        "robot": {"path": "/robot", "platform": "wecom-robot", "handler": handler, **BASE, **extra},
    }


def robot_text(content: str, response_url: str, msg_id: str) -> str:
    return json.dumps({"msgid": msg_id, "aibotid": "bot1", "chattype": "single", "from": {"userid": "zhangsan"},
                       "response_url": response_url, "msgtype": "text", "text": {"content": content}})


async def post(server: CallbackServer, side: Platform, plaintext: str) -> tuple[int, bytes]:
    url, body = side.callback(plaintext)
    path, _, query = url.partition("?")
    handled = await server.respond("POST", path, query.encode(), body)
    return handled.response.status, handled.response.body


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


Scenario = Callable[[CallbackServer, FakePlatformAPI, Store], Awaitable[None]]


def run(scenario: Scenario, store_url: str = "memory://", **extra: Any) -> None:
    async def main_() -> None:
        fake = FakePlatformAPI(apps={APPID: OA_SECRET}, corps={APPID: CORP_SECRET})
        async with fake.running():
            store = MemoryStore() if store_url == "memory://" else open_store(store_url)
            server = CallbackServer(parse_config({"channels": channels(fake.api_base, **extra)}), store)
            try:
                await server.start()
                await scenario(server, fake, store)
            finally:
                await server.stop()
                await store.close()

    asyncio.run(main_())


def test_a_late_text_reply_arrives_through_each_platforms_api() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        oa_side, wecom_side = Platform("official-account", "/oa"), Platform("wecom-app", "/wecom")
        robot_side = Platform("wecom-robot", "/robot", receive_id="")
        answers = [await post(server, oa_side, oa_text("hello", user="oUSER1")),
                   await post(server, wecom_side, wecom_text("hi")),
                   await post(server, robot_side, robot_text("hey", fake.response_url(), "m-late-1"))]
        # In time, the platform got "no reply": success for the OA, an empty body for WeCom.
        assert answers == [(200, b"success"), (200, b""), (200, b"")]
        assert fake.received == []
        await until(lambda: len(fake.received) == 3)
        by_api = {r.api: r.body for r in fake.received}
        assert by_api["custom/send"] == {"touser": "oUSER1", "msgtype": "text",
                                         "text": {"content": "thought about: hello"}}
        assert by_api["message/send"] == {"touser": "zhangsan", "agentid": 1000002, "msgtype": "text",
                                          "text": {"content": "thought about: hi"}}
        assert by_api["response_url"] == {"msgtype": "markdown", "markdown": {"content": "thought about: hey"}}
        assert fake.token_requests == 2  # one per credential (the robot needs none)
        assert await store.depth() == 0
        metrics = (await server.metrics_text()).decode()
        assert 'wxcallback_reply_sends_total{channel="oa",result="sent"} 1.0' in metrics

    run(scenario)


def test_a_platform_retry_after_the_late_send_gets_no_reply_not_the_text_again() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        side = Platform("official-account", "/oa")
        plaintext = oa_text("once", user="oUSER2")
        url, body = side.callback(plaintext)
        path, _, query = url.partition("?")
        assert (await server.respond("POST", path, query.encode(), body)).response.body == b"success"
        await until(lambda: len(fake.received) == 1)
        retry = await server.respond("POST", path, query.encode(), body)
        assert retry.response.body == b"success"
        await asyncio.sleep(0.3)
        assert len(fake.received) == 1

    run(scenario)


def test_the_api_down_loses_nothing_the_reply_arrives_once_it_is_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback.send")

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        fake.down_for(3.0)
        await post(server, Platform("official-account", "/oa"), oa_text("while down", user="oUSER3"))
        await until(lambda: any('"late_reply_failed"' in r.message for r in caplog.records))
        assert fake.received == [] and await store.depth() == 1
        await until(lambda: len(fake.received) == 1, timeout=20)
        assert fake.received[0].body["text"] == {"content": "thought about: while down"}
        await until(lambda: any('"late_reply_sent"' in r.message for r in caplog.records))
        assert await store.depth() == 0

    run(scenario)
    lines = [json.loads(r.message) for r in caplog.records if r.name == "wxcallback.send"]
    assert [line["outcome"] for line in lines][-1] == "late_reply_sent"
    assert "answered 503; queued for retry" in lines[0]["detail"]
    assert not any(OA_SECRET in r.message or "token-" in r.message or "access_token=" in r.message
                   for r in caplog.records)


def test_out_of_the_48_hour_window_is_a_dead_letter_the_outbox_command_shows(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback.send")
    store_url = f"sqlite:///{tmp_path / 'late.db'}"

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        fake.out_of_window.add("oGONE")
        await post(server, Platform("official-account", "/oa"), oa_text("too late", user="oGONE"))
        await until(lambda: any('"late_reply_dead"' in r.message for r in caplog.records))
        dead = await store.list_dead()
        assert len(dead) == 1 and "errcode 45015" in dead[0].reason
        assert json.loads(dead[0].payload)["send"]["body"]["touser"] == "oGONE"
        assert fake.received == [] and len(fake.refused) == 1  # tried once, not retried

    run(scenario, store_url)
    config = tmp_path / "wxcallback.toml"
    config.write_text(f'[server]\nstore = "{store_url}"\n\n[channels.oa]\npath = "/oa"\n'
                      f'platform = "official-account"\ntoken = "{TOKEN}"\nencoding_aes_key = "{KEY}"\n'
                      f'receive_id = "{APPID}"\n', encoding="utf-8")
    listed = CliRunner().invoke(main, ["outbox", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "1 dead letter(s)" in listed.output and "errcode 45015" in listed.output


def test_invalid_credential_forces_exactly_one_refresh() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        side = Platform("official-account", "/oa")
        await post(server, side, oa_text("first", user="oUSER4"))
        await until(lambda: len(fake.received) == 1)
        assert fake.token_requests == 1
        fake.invalidate_tokens()  # the secret was reset, or a token fetched elsewhere replaced ours
        await post(server, side, oa_text("second", user="oUSER4"))
        await until(lambda: len(fake.received) == 2)
        assert fake.token_requests == 2
        assert [r[0] for r in fake.refused] == ["custom/send"]  # refused once, then sent with the new token

    run(scenario)


def test_a_reply_the_api_cannot_carry_is_logged_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback.send")

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        await post(server, Platform("official-account", "/oa"), oa_text("transfer me"))
        await until(lambda: any("cannot be sent" in r.message for r in caplog.records))
        assert fake.received == [] and await store.depth() == 0
        metrics = (await server.metrics_text()).decode()
        assert 'wxcallback_reply_sends_total{channel="oa",result="refused"} 1.0' in metrics

    run(scenario, handler="tests.server.handlers:late_unsendable")
    line = json.loads(next(r.message for r in caplog.records if "cannot be sent" in r.message))
    assert line["outcome"] == "late_reply_failed"
    assert "TransferCustomerServiceReply cannot be sent with the customer-service API" in line["detail"]


def test_a_handler_sends_proactively_through_current_sender() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        handled = await post(server, Platform("official-account", "/oa"), oa_text("news?", user="oUSER5"))
        assert handled[0] == 200 and handled[1] not in (b"", b"success")  # the passive answer
        await until(lambda: len(fake.received) == 1)
        assert fake.received[0].body == {"touser": "oUSER5", "msgtype": "text",
                                         "text": {"content": "and one more about news?"}}

    run(scenario, handler="tests.server.handlers:proactive", deadline=2.0)


def test_late_reply_keep_and_drop_send_nothing() -> None:
    for policy in ("keep", "drop"):
        async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
            await post(server, Platform("official-account", "/oa"), oa_text("quiet"))
            await asyncio.sleep(0.6)
            assert fake.received == [] and fake.token_requests == 0

        run(scenario, late_reply=policy)


def _channel(**keys: Any) -> dict[str, Any]:
    return {"channels": {"c": {"path": "/c", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID,
                               **keys}}}


def test_send_is_the_default_only_when_the_channel_can_send() -> None:
    def policy(**keys: Any) -> str:
        return parse_config(_channel(**keys)).channels[0].late_reply

    assert policy(platform="official-account") == "keep"
    assert policy(platform="official-account", app_secret="s") == "send"
    assert policy(platform="miniprogram", app_secret="s") == "send"
    assert policy(platform="wecom-app", corp_secret="s") == "keep"  # no agent_id
    assert policy(platform="wecom-app", corp_secret="s", agent_id=1000002) == "send"
    assert policy(platform="wecom-robot") == "send"
    assert policy(platform="official-account", forward="http://127.0.0.1:9/hook", app_secret="s") == "keep"
    assert parse_config(_channel(platform="wecom-app")).channels[0].api_base == "https://qyapi.weixin.qq.com"
    assert parse_config(_channel(platform="official-account")).channels[0].api_base == "https://api.weixin.qq.com"


@pytest.mark.parametrize("keys, words", [
    ({"platform": "official-account", "late_reply": "send"}, r"channels\.c\.late_reply: .*needs channels\.c\.app_secret"),
    ({"platform": "wecom-app", "late_reply": "send", "corp_secret": "s"}, r"needs channels\.c\.agent_id"),
    ({"platform": "wecom-app", "app_secret": "s"}, r"channels\.c\.app_secret: wecom-app channels have no app_secret"),
    ({"platform": "signature-only", "late_reply": "send"}, r"have no message API"),
    ({"platform": "official-account", "late_reply": "later"}, r"late_reply: must be"),
    ({"platform": "official-account", "api_base": "ftp://x"}, r"api_base: must be an http"),
    ({"platform": "wecom-app", "agent_id": "1000002"}, r"channels\.c\.agent_id: must be"),
])
def test_what_sending_needs_is_refused_at_start_naming_the_key(keys: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_config(_channel(**keys))


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    config = parse_config(_channel(platform="official-account", app_secret="TOPSECRET"))
    assert "TOPSECRET" not in repr(config.channels[0]) and "TOPSECRET" not in repr(config)
    with pytest.raises(ConfigError) as info:
        parse_config(_channel(platform="wecom-app", corp_secret="TOPSECRET", late_reply="send"))
    assert "TOPSECRET" not in str(info.value)


def test_a_reply_still_unsent_after_late_reply_max_age_is_a_dead_letter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback.send")

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        fake.down_for(60.0)
        await post(server, Platform("wecom-app", "/wecom"), wecom_text("for a while"))
        await until(lambda: any('"late_reply_dead"' in r.message for r in caplog.records), timeout=20)
        (dead,) = await store.list_dead()
        assert "late_reply_max_age 1 s" in dead.reason and "answered 503" in dead.reason
        assert await store.depth() == 0 and fake.received == []

    run(scenario, late_reply_max_age=1)
