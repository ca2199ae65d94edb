"""A long-connection channel in process: the server against the fake platform on loopback.

The same dispatch as the callback URL: a stream pushed frame by frame, a welcome and a card
update within 5 s, a redelivered msgid answered from the dedup cache without running the
handler again, a late reply still sent, a forwarded message through the outbox, the state
on /healthz and in the metrics, the secret in no log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.e2e.servers import Backend
from wxcallback.longconn import Cmd, NotConnected, lease_name
from wxcallback.server.config import parse_config
from wxcallback.server.longconn_channel import LongConnClient, _Hand
from wxcallback.server.runtime import CallbackServer
from wxcallback.server.stores import MemoryStore
from wxcallback.simulator.longconn import FakePlatform

BOT_ID = "bot-in-process"
SECRET = "in-process-secret-9d1e"
WAIT = 10.0


def _config(url: str, **channel: Any) -> dict[str, Any]:
    values = {"platform": "wecom-robot", "transport": "websocket", "bot_id": BOT_ID, "secret": SECRET, "url": url,
              "handler": "tests.e2e.longconn_handlers:router", "reconnect_delay": 0.05,
              "reconnect_max_delay": 0.2, "heartbeat_interval": 0.3, "deadline": 1.0}
    values.update(channel)
    return {"server": {"store": "memory://"}, "channels": {"assistant": values}}


def run(scenario: Callable[[FakePlatform, CallbackServer], Awaitable[None]], **channel: Any) -> None:
    async def main() -> None:
        async with FakePlatform(bot_id=BOT_ID, secret=SECRET) as fake:
            server = CallbackServer(parse_config(_config(fake.url, **channel)), MemoryStore())
            await server.start()
            try:
                await server.longconn["assistant"].connection.wait_connected(WAIT)
                await scenario(fake, server)
            finally:
                await server.stop()
            assert fake.violations == [], fake.violations

    asyncio.run(asyncio.wait_for(main(), 60))


def _calls(path: Any) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_text_message_is_answered_with_a_stream_pushed_as_the_text_grows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="wxcallback")  # other tests may have quietened it

    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        pushed = await fake.push_message("text", text="hi there")
        await fake.wait_until(lambda: fake.finished(pushed.req_id), WAIT)
        frames = fake.replies(pushed.req_id)
        assert {f.cmd for f in frames} == {Cmd.RESPOND_MSG}
        streams = [f.body["stream"] for f in frames if f.body]
        assert len({s["id"] for s in streams}) == 1
        assert streams[-1] == {**streams[-1], "finish": True, "content": "you said: hi there"}
        assert all(not s["finish"] for s in streams[:-1]) and len(streams) >= 2

    run(scenario)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "wxcallback.access"]
    assert [(line["transport"], line["outcome"], line["msg_type"]) for line in lines] == [
        ("websocket", "streamed", "text")]
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_welcome_and_card_update_are_sent_within_the_window() -> None:
    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        welcome = await fake.push_event("enter_chat")
        card = await fake.push_event("template_card_event", task_id="task_42")
        await fake.wait_until(lambda: bool(welcome.replies and card.replies), WAIT)
        assert welcome.replies[0].cmd == Cmd.RESPOND_WELCOME
        assert welcome.replies[0].body == {"msgtype": "text", "text": {"content": "welcome!"}}
        assert welcome.reply_times[0] - welcome.at < 5
        assert card.replies[0].cmd == Cmd.RESPOND_UPDATE
        assert card.replies[0].body is not None
        assert card.replies[0].body["template_card"]["task_id"] == "task_42"
        assert card.reply_times[0] - card.at < 5

    run(scenario)


def test_a_redelivered_msgid_is_answered_again_without_running_the_handler(tmp_path: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    monkeypatch.setenv("WXCALLBACK_E2E_CALLS", str(calls))

    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        first = await fake.push_message("text", text="once")
        await fake.wait_until(lambda: fake.finished(first.req_id), WAIT)
        # the platform sends the same callback again on a new req_id (a new response_url too)
        body = dict(first.body, response_url="https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x")
        again = await fake.push(Cmd.MSG_CALLBACK, body)
        await fake.wait_until(lambda: fake.finished(again.req_id), WAIT)
        assert again.replies[-1].body is not None
        assert again.replies[-1].body["stream"]["content"] == "you said: once"
        assert again.replies[-1].body["stream"]["finish"] is True

    run(scenario)
    assert len(_calls(calls)) == 1


def test_a_handler_past_the_deadline_still_answers_on_the_req_id(tmp_path: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WXCALLBACK_E2E_SLOW", "1.5")

    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        pushed = await fake.push_message("text", text="slow")
        await asyncio.sleep(1.2)
        assert pushed.replies == []  # the deadline passed with nothing to say
        await fake.wait_until(lambda: fake.finished(pushed.req_id), WAIT)
        assert pushed.replies[-1].body is not None
        assert pushed.replies[-1].body["stream"]["content"] == "late answer"

    run(scenario)


def test_a_markdown_reply_goes_to_the_chat_as_a_message_of_its_own(caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # No answer frame carries markdown: in time (a single chat) and late (a group) it is sent with
    # aibot_send_msg to the chat the message came from, and the callback's req_id gets nothing.
    caplog.set_level(logging.INFO, logger="wxcallback")
    monkeypatch.setenv("WXCALLBACK_E2E_SLOW", "1.5")

    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        single = await fake.push_message("text", text="markdown", userid="lisi")
        group = await fake.push_message("text", text="markdown slow", chat="group")

        def sent() -> list[Any]:
            return [r.frame.body for r in fake.received
                    if r.frame is not None and r.frame.cmd == Cmd.SEND_MSG and r.frame.body]

        await fake.wait_until(lambda: len(sent()) == 2, WAIT)
        assert sent() == [
            {"chatid": "lisi", "msgtype": "markdown", "markdown": {"content": "**you said** markdown"}},
            {"chatid": "wrkSFfCgAAxxxxxx", "msgtype": "markdown",
             "markdown": {"content": "**you said** markdown slow"}}]
        assert single.replies == [] and group.replies == []

    run(scenario)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.startswith("wxcallback")
             and r.getMessage().startswith("{")]
    assert [line["outcome"] for line in lines if line.get("msg_type") == "markdown"] == [
        "markdown_sent", "late_reply_sent"]
    assert not [line for line in lines if line.get("outcome") == "handler_error"]
    access = [(line["outcome"], line.get("msg_type")) for line in lines if line.get("transport") == "websocket"]
    assert sorted(access) == [("late", "text"), ("ok", "text")]


def test_a_forwarding_channel_writes_to_the_outbox_and_sends_the_backends_reply() -> None:
    backend = Backend(reply={"type": "stream", "id": "s-1", "content": "from the backend", "finish": True})
    backend.start()
    try:
        async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
            pushed = await fake.push_message("text", text="forward me")
            await fake.wait_until(lambda: fake.finished(pushed.req_id), WAIT)
            assert pushed.replies[-1].body is not None
            assert pushed.replies[-1].body["stream"]["content"] == "from the backend"
            (key, delivery), = backend.deliveries
            assert key == f"assistant:msgid:{pushed.body['msgid']}"
            assert delivery["message"]["content"] == "forward me"

        run(scenario, handler=None, forward=backend.url)
    finally:
        backend.stop()


def test_health_and_metrics_show_the_connection() -> None:
    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        status, body = await server.health()
        entry = json.loads(body)["longconn"]["assistant"]
        assert status == 200
        assert entry["connected"] is True and entry["held_here"] is True and entry["since"] is not None
        assert entry["terminal"] is None and entry["bot_id"] == BOT_ID
        assert SECRET not in body.decode()
        text = (await server.metrics_text()).decode()
        assert 'wxcallback_longconn_up{channel="assistant"} 1.0' in text
        await fake.drop()
        await fake.wait_until(lambda: fake.connections == 2, WAIT)
        await server.longconn["assistant"].connection.wait_connected(WAIT)
        text = (await server.metrics_text()).decode()
        assert 'wxcallback_longconn_reconnects_total{channel="assistant"} 1.0' in text

    run(scenario)


def test_an_evicted_channel_stays_down_and_keeps_the_others_down() -> None:
    async def scenario(fake: FakePlatform, server: CallbackServer) -> None:
        channel = server.longconn["assistant"]
        await fake.evict()
        await fake.wait_until(lambda: channel.connection.state.terminal is not None, WAIT)
        assert channel.connection.state.terminal is not None
        assert channel.connection.state.terminal.value == "evicted"
        assert server.store is not None
        owner = await server.store.lease_owner(channel.lease_name)
        assert owner is not None and owner.startswith("down:evicted:")
        assert await server.store.acquire_lease(channel.lease_name, "another-process", 5) is False
        status, body = await server.health()
        assert json.loads(body)["longconn"]["assistant"]["terminal"] == "evicted"
        assert status == 503 and "long connection assistant: stopped for good (evicted" in json.loads(body)["status"]
        # a proactive send is told at once that nothing will send it, rather than after its timeout
        with pytest.raises(NotConnected, match=r"not sent: the bot's long connection stopped for good \(evicted"):
            await LongConnClient(server.store, BOT_ID, timeout=600).send_markdown("zhangsan", "anyone?")

    run(scenario)


def test_proactive_sends_and_uploads_from_another_process_go_through_the_holder() -> None:
    async def main() -> None:
        async with FakePlatform(bot_id=BOT_ID, secret=SECRET) as fake:
            store = MemoryStore()
            server = CallbackServer(parse_config(_config(fake.url)), store)
            await server.start()
            try:
                await server.longconn["assistant"].connection.wait_connected(WAIT)
                # a client with no connection of its own, on the same store (another worker or host)
                client = LongConnClient(store, BOT_ID, timeout=5)
                ack = await client.send_markdown("zhangsan", "**build** passed")
                assert ack["errcode"] == 0
                media = await client.upload_media(b"x" * 700_000, media_type="file", filename="r.bin")
                assert fake.uploads[media.media_id] == b"x" * 700_000
                await client.send_template_card("zhangsan", {"card_type": "text_notice",
                                                             "main_title": {"title": "hi"},
                                                             "card_action": {"type": 1, "url": "https://e.com"}})
                sent = [r.frame for r in fake.received if r.frame is not None and r.frame.cmd == Cmd.SEND_MSG]
                assert [f.body["msgtype"] for f in sent if f.body] == ["markdown", "template_card"]
                assert sent[0].body == {"chatid": "zhangsan", "msgtype": "markdown",
                                        "markdown": {"content": "**build** passed"}}
                via_server = await server.longconn_client("assistant", timeout=5)
                assert (await via_server.send_markdown("zhangsan", "again"))["errcode"] == 0
            finally:
                await server.stop()
            # nobody holds the bot now: the sender says so instead of hanging
            with pytest.raises(NotConnected, match="no process holding bot"):
                await LongConnClient(store, BOT_ID, timeout=0.5).send_markdown("zhangsan", "lost")
            assert fake.violations == []

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_request_taken_by_a_holder_that_stopped_before_sending_is_sent_by_the_next_one() -> None:
    async def main() -> None:
        async with FakePlatform(bot_id=BOT_ID, secret=SECRET) as fake:
            store = MemoryStore()
            # another process holds the bot; it takes the request from the queue and dies before sending
            dead = "otherhost:4242:0badf00d"
            assert await store.acquire_lease(lease_name(BOT_ID), dead, 1.0)
            server = CallbackServer(parse_config(_config(fake.url, lease_ttl=1.0)), store)
            await server.start()
            try:
                sending = asyncio.ensure_future(LongConnClient(store, BOT_ID, timeout=WAIT).send_markdown(
                    "zhangsan", "exactly once"))
                popped: list[bytes] = []
                while not popped:
                    popped = await store.pop_requests(f"longconn-send:{BOT_ID}", 16)
                    await asyncio.sleep(0.01)
                request_id = json.loads(popped[0])["id"]
                assert await _Hand(store, BOT_ID, request_id).take(dead, 30)
                # its lease runs out, this server takes the bot over and sends what the dead one took
                assert (await sending)["errcode"] == 0
                sent = [r.frame.body for r in fake.received if r.frame is not None and r.frame.cmd == Cmd.SEND_MSG]
                assert [body["markdown"]["content"] for body in sent if body] == ["exactly once"]
            finally:
                await server.stop()
            assert fake.violations == []

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_request_queued_again_cannot_be_sent_by_the_holder_that_was_too_slow() -> None:
    async def main() -> None:
        store = MemoryStore()
        hand = _Hand(store, BOT_ID, "r1")
        assert await hand.take("slow", 30)
        await hand.free("taken:slow")  # its sender took it for dead, and queued it again
        assert await hand.take("next", 30) and await hand.send("next", 30)
        assert not await hand.send("slow", 30)  # the slow one wakes up: it must not send too
        assert not await hand.give_up("taken:next")  # and the sender cannot take back what is sent

    asyncio.run(main())
