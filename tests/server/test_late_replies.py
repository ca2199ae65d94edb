"""Late replies and proactive sends through the platforms' APIs, in process, against the local fake API.

A real CallbackServer (memory or SQLite store, its delivery worker) answers signed, encrypted
callbacks; the fake (wxcallback.simulator.platform_api) plays the token, send and response_url
endpoints and records what arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.e2e.servers import Backend
from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, wecom_text
from wxcallback.cli import main
from wxcallback.messages import InvalidReplyError, MarkdownReply, reply_from_dict
from wxcallback.server.config import ConfigError, parse_config
from wxcallback.server.forward import backoff
from wxcallback.server.outbound import UnsendableReplyError
from wxcallback.server.reply_sender import RETRY_CAP
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


async def until_empty(store: Store, timeout: float = 5.0) -> None:
    """Until the outbox is empty: a send is acknowledged just after the API has it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await store.depth():
        assert loop.time() < deadline, "the outbox did not empty"
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
        # At once: one after another, the third answer (three 0.1 s deadlines) raced the first
        # late reply (0.3 s of thinking) on a slow machine.
        answers = list(await asyncio.gather(
            post(server, oa_side, oa_text("hello", user="oUSER1")),
            post(server, wecom_side, wecom_text("hi")),
            post(server, robot_side, robot_text("hey", fake.response_url(), "m-late-1")),
        ))
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
        await until_empty(store)
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
        await until_empty(store)

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
    # A forwarding channel's backend may answer late too: the same default.
    assert policy(platform="official-account", forward="http://127.0.0.1:9/hook", app_secret="s") == "send"
    assert policy(platform="official-account", forward="http://127.0.0.1:9/hook") == "keep"
    assert policy(platform="wecom-robot", forward="http://127.0.0.1:9/hook") == "send"
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


# -- forwarding channels: the backend's reply to a retried delivery ------------------------------

def forwarding(api_base: str, backend: str, **extra: Any) -> dict[str, Any]:
    keys = {"forward": backend, "forward_timeout": 0.2, **extra}
    return {name: {k: v for k, v in channel.items() if k != "handler"} | keys
            for name, channel in channels(api_base).items()}


def run_forwarding(scenario: Scenario, backend: Backend, store: Store | None = None, **extra: Any) -> None:
    async def main_() -> None:
        fake = FakePlatformAPI(apps={APPID: OA_SECRET}, corps={APPID: CORP_SECRET})
        async with fake.running():
            the_store = store or MemoryStore()
            server = CallbackServer(parse_config({"channels": forwarding(fake.api_base, backend.url, **extra)}),
                                    the_store)
            try:
                await server.start()
                await scenario(server, fake, the_store)
            finally:
                await server.stop()
                await the_store.close()

    backend.start()
    try:
        asyncio.run(main_())
    finally:
        backend.stop()


def test_a_backend_slower_than_forward_timeout_has_its_reply_sent_through_each_api(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback.send")
    backend = Backend(reply={"type": "text", "content": "from the backend"}, slow_inline=0.6)

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        answers = [await post(server, Platform("official-account", "/oa"), oa_text("slow?", user="oFWD1")),
                   await post(server, Platform("wecom-app", "/wecom"), wecom_text("slow?")),
                   await post(server, Platform("wecom-robot", "/robot", receive_id=""),
                              robot_text("slow?", fake.response_url(), "m-fwd-1"))]
        assert answers == [(200, b"success"), (200, b""), (200, b"")]  # "no reply" in time
        await until(lambda: len(fake.received) == 3, timeout=20)
        by_api = {r.api: r.body for r in fake.received}
        assert by_api["custom/send"] == {"touser": "oFWD1", "msgtype": "text",
                                         "text": {"content": "from the backend"}}
        assert by_api["message/send"] == {"touser": "zhangsan", "agentid": 1000002, "msgtype": "text",
                                          "text": {"content": "from the backend"}}
        assert by_api["response_url"] == {"msgtype": "markdown", "markdown": {"content": "from the backend"}}
        await until(lambda: len(backend.deliveries) == 6)
        assert sorted(d["delivery"] for _, d in backend.deliveries) == ["inline"] * 3 + ["retry"] * 3
        await until(lambda: caplog.text.count('"late_reply_sent"') == 3)
        metrics = (await server.metrics_text()).decode()
        assert 'wxcallback_reply_sends_total{channel="oa",result="sent"} 1.0' in metrics

    run_forwarding(scenario, backend)
    assert not any(OA_SECRET in r.message or "access_token=" in r.message for r in caplog.records)


@pytest.mark.parametrize("retry_timeout, retries", [(3.0, 1), (1.0, 2)])
def test_a_retried_delivery_may_take_forward_retry_timeout(retry_timeout: float, retries: int) -> None:
    # The backend takes 1.5 s to answer the worker's first retry (a model still thinking): within
    # forward_retry_timeout its answer is the late reply; past it the worker asks again later.
    backend = Backend(reply={"type": "text", "content": "thought it over"}, slow_inline=0.4,
                      slow_first_retry=1.5)

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        assert await post(server, Platform("official-account", "/oa"), oa_text("think", user="oSLOW")) == (
            200, b"success")
        await until(lambda: len(fake.received) == 1, timeout=30)
        assert fake.received[0].body["text"] == {"content": "thought it over"}
        assert [d["delivery"] for _, d in backend.deliveries] == (
            ["inline"] + ["retry"] * retries)

    run_forwarding(scenario, backend, forward_retry_timeout=retry_timeout)


def test_a_backend_reply_in_time_is_passive_and_never_sent_again() -> None:
    # The inline delivery may last forward_timeout (here past the delivery worker's usual 5 s grace):
    # the worker must not deliver the message a second time meanwhile.
    backend = Backend(reply={"type": "text", "content": "in time"}, slow_inline=5.5)

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        status, body = await post(server, Platform("official-account", "/oa"), oa_text("quick", user="oFWD2"))
        assert status == 200 and b"<xml>" in body  # the passive reply, encrypted
        await asyncio.sleep(1.5)  # past the grace the worker would have had without the inline delivery
        assert len(backend.deliveries) == 1 and fake.received == [] and await store.depth() == 0

    run_forwarding(scenario, backend, forward_timeout=6.0, deadline=7.0)


class AckFailsOnce(MemoryStore):
    """A store whose first ack of the forwarded message fails: the process died after the late
    reply was queued and before the delivery was acknowledged."""

    forward_id = ""

    async def enqueue(self, channel: str, item: bytes, idempotency_key: str) -> str:
        item_id = await super().enqueue(channel, item, idempotency_key)
        if not self.forward_id:
            self.forward_id = item_id
        return item_id

    async def ack(self, id: str) -> None:
        if id == self.forward_id and not getattr(self, "failed", False):
            self.failed = True
            raise ConnectionError("the store went away")
        await super().ack(id)


def test_a_backend_answering_a_redelivery_after_the_late_send_does_not_send_twice() -> None:
    backend = Backend(reply={"type": "text", "content": "only once"}, slow_inline=0.6)
    store = AckFailsOnce()

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, the_store: Store) -> None:
        await post(server, Platform("official-account", "/oa"), oa_text("twice?", user="oFWD3"))
        await until(lambda: len(fake.received) == 1 and getattr(store, "failed", False), timeout=20)
        await store.nack(store.forward_id, 0.0)  # its visibility lapsed: claimable again
        await until(lambda: len(backend.deliveries) == 3, timeout=20)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 10
        while await store.depth() and loop.time() < give_up:
            await asyncio.sleep(0.05)
        assert await store.depth() == 0
        assert len(fake.received) == 1

    run_forwarding(scenario, backend, store)


def test_forwarding_late_reply_keep_sends_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    backend = Backend(reply={"type": "text", "content": "kept"}, slow_inline=0.6)

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        await post(server, Platform("official-account", "/oa"), oa_text("keep?", user="oFWD4"))
        await until(lambda: '"late_reply_kept"' in caplog.text, timeout=20)
        assert fake.received == [] and fake.token_requests == 0

    run_forwarding(scenario, backend, late_reply="keep")


def test_an_api_not_listening_at_all_loses_nothing_the_reply_arrives_once_it_listens(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback.send")

    async def main_() -> None:
        fake = FakePlatformAPI(apps={APPID: OA_SECRET}, corps={APPID: CORP_SECRET})  # not started: refused
        store = MemoryStore()
        server = CallbackServer(parse_config({"channels": channels(fake.api_base)}), store)
        try:
            await server.start()
            await post(server, Platform("official-account", "/oa"), oa_text("refused", user="oGONE1"))
            await post(server, Platform("wecom-robot", "/robot", receive_id=""),
                       robot_text("refused", fake.response_url(), "m-refused-1"))
            await until(lambda: caplog.text.count("unreachable (ConnectError)") >= 2)
            assert await store.depth() == 2
            await until(lambda: caplog.text.count("next try in") >= 2, timeout=15)  # the worker's own tries
            async with fake.running():  # the same port, listening now
                await until(lambda: len(fake.received) == 2, timeout=30)
                await until(lambda: caplog.text.count('"late_reply_sent"') == 2)
            assert {r.api for r in fake.received} == {"custom/send", "response_url"}
            assert await store.depth() == 0
        finally:
            await server.stop()
            await store.close()

    asyncio.run(main_())
    delays = [float(d) for d in re.findall(r"next try in ([0-9.]+) s", caplog.text)]
    assert delays and max(delays) <= RETRY_CAP * 1.25  # the platform-send cap, not the backend's minute


def test_platform_sends_back_off_to_ten_seconds_not_a_minute() -> None:
    assert max(backoff(attempts, RETRY_CAP) for attempts in range(1, 30) for _ in range(20)) <= 12.5
    assert max(backoff(attempts) for attempts in range(1, 30)) > 12.5


# -- markdown: a WeCom app message (and a robot's response_url), never a passive reply -----------

def test_a_late_markdown_reply_goes_out_as_a_wecom_app_markdown_message() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        assert await post(server, Platform("wecom-app", "/wecom"), wecom_text("md")) == (200, b"")
        await post(server, Platform("wecom-robot", "/robot", receive_id=""),
                   robot_text("md", fake.response_url(), "m-md-1"))
        await until(lambda: len(fake.received) == 2)
        by_api = {r.api: r.body for r in fake.received}
        assert by_api["message/send"] == {"touser": "zhangsan", "agentid": 1000002, "msgtype": "markdown",
                                          "markdown": {"content": "**late** about `md`"}}
        assert by_api["response_url"] == {"msgtype": "markdown", "markdown": {"content": "**late** about `md`"}}

    run(scenario, handler="tests.server.handlers:late_markdown")


def test_markdown_returned_in_time_is_sent_through_the_api_and_the_callback_gets_no_reply() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        side = Platform("wecom-app", "/wecom")
        url, body = side.callback(wecom_text("now"))
        path, _, query = url.partition("?")
        first = await server.respond("POST", path, query.encode(), body)
        assert (first.response.status, first.response.body) == (200, b"")  # no passive markdown
        await until(lambda: len(fake.received) == 1)
        assert fake.received[0].body["markdown"] == {"content": "**in time** about `now`"}
        retry = await server.respond("POST", path, query.encode(), body)  # the platform retries
        assert retry.response.body == b""
        await asyncio.sleep(0.3)
        assert len(fake.received) == 1

    run(scenario, handler="tests.server.handlers:markdown_in_time")


def test_markdown_on_a_channel_that_cannot_send_is_refused_naming_what_it_needs(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="wxcallback.dispatch")

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        assert await post(server, Platform("wecom-app", "/wecom"), wecom_text("no secret")) == (200, b"")
        await asyncio.sleep(0.3)
        assert fake.received == []

    async def main_() -> None:
        fake = FakePlatformAPI()
        async with fake.running():
            config = channels(fake.api_base, handler="tests.server.handlers:markdown_in_time")["wecom"]
            del config["corp_secret"]
            store = MemoryStore()
            server = CallbackServer(parse_config({"channels": {"wecom": config}}), store)
            try:
                await server.start()
                await scenario(server, fake, store)
            finally:
                await server.stop()

    asyncio.run(main_())
    line = json.loads(next(r.message for r in caplog.records if '"handler_error"' in r.message))
    assert "a MarkdownReply cannot answer" in line["detail"] and "corp_secret and agent_id" in line["detail"]


def test_a_forwarding_backend_may_answer_markdown_for_a_wecom_app() -> None:
    backend = Backend(reply={"type": "markdown", "content": "# from the backend"})

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        assert await post(server, Platform("wecom-app", "/wecom"), wecom_text("md?")) == (200, b"")
        await until(lambda: len(fake.received) == 1)
        assert fake.received[0].body["markdown"] == {"content": "# from the backend"}
        assert len(backend.deliveries) == 1

    run_forwarding(scenario, backend, forward_timeout=2.0)


def test_a_handler_sends_markdown_proactively_and_the_api_json_is_checked() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        sender = await server.reply_sender()
        assert (await sender.send("wecom", "lisi", MarkdownReply("> note"))).sent
        assert fake.received[0].body == {"touser": "lisi", "agentid": 1000002, "msgtype": "markdown",
                                         "markdown": {"content": "> note"}}
        with pytest.raises(UnsendableReplyError, match="cannot be sent with the customer-service API"):
            await sender.send("oa", "oUSER", MarkdownReply("no markdown here"))
        with pytest.raises(UnsendableReplyError, match="at most 2048 bytes"):
            await sender.send("wecom", "lisi", MarkdownReply("长" * 700))

    run(scenario)
    assert reply_from_dict({"type": "markdown", "content": "x"}, "wecom-app") == MarkdownReply("x")
    with pytest.raises(InvalidReplyError, match="official-account has no 'markdown' reply"):
        reply_from_dict({"type": "markdown", "content": "x"}, "official-account")
