"""LongConnection against the fake platform over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from wxcallback.longconn import (
    AckError,
    AckTimeout,
    Callback,
    LongConnection,
    MemoryLease,
    NotConnected,
    Phase,
    QueueFull,
    TerminalReason,
    backoff_delay,
)
from wxcallback.longconn.frames import MAX_CHUNK_BYTES, Cmd, respond_frame
from wxcallback.messages import StreamReply, TextReply, UpdateTemplateCardReply
from wxcallback.simulator.longconn import REPLY_WINDOW, FakePlatform

from .helpers import SECRET, WAIT, Bot, run


async def words(*pieces: str, pause: float = 0.0) -> AsyncIterator[str]:
    for piece in pieces:
        if pause:
            await asyncio.sleep(pause)
        yield piece


async def stream_answer(connection: LongConnection, callback: Callback) -> None:
    if not callback.is_event:
        await connection.respond_stream(callback, words("Hello", ", ", "world", "!", pause=0.01))


def test_subscribes_and_reports_connected():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot().connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            state = connection.state
            assert state.connected and state.phase is Phase.CONNECTED and state.since is not None
            assert platform.subscribes_ok == 1 and platform.violations == []
            final = await connection.stop()
            assert final.phase is Phase.STOPPED and not final.connected
    run(scenario())


def test_pings_at_the_interval_after_subscribing():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot().connect(platform.url, heartbeat_interval=0.1)
            connection.start()
            await platform.wait_until(lambda: len(platform.pings) >= 4, WAIT)
            gaps = [b - a for a, b in zip(platform.pings, platform.pings[1:])]
            assert all(gap >= 0.09 for gap in gaps)  # never more often than the interval
            assert connection.state.connected and connection.state.reconnects == 0
            await connection.stop()
    run(scenario())


def test_two_unanswered_pings_mean_a_dead_connection_and_a_reconnect(caplog):
    caplog.set_level(logging.WARNING, logger="wxcallback.longconn")

    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot().connect(platform.url, heartbeat_interval=0.05)
            connection.start()
            await connection.wait_connected(WAIT)
            platform.answer_pings = False
            await platform.wait_until(lambda: platform.subscribes_ok >= 2, WAIT)
            assert len(platform.pings) >= 2
            assert connection.state.reconnects >= 1
            await connection.stop()
    run(scenario())
    assert "2 pings unanswered: the connection is dead" in caplog.text


def test_a_text_message_is_answered_with_a_well_formed_stream():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot(stream_answer).connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            pushed = await platform.push_message("text", text="hi")
            await platform.wait_until(lambda: platform.finished(pushed.req_id), WAIT)
            frames = platform.replies(pushed.req_id)
            streams = [f.body["stream"] for f in frames if f.body]
            assert {f.cmd for f in frames} == {Cmd.RESPOND_MSG}
            assert len({s["id"] for s in streams}) == 1
            assert [s["finish"] for s in streams] == [False] * (len(streams) - 1) + [True]
            assert streams[-1]["content"] == "Hello, world!"
            assert platform.violations == []
            await connection.stop()
    run(scenario())


def test_welcome_and_card_update_go_within_the_window():
    async def answer(connection: LongConnection, callback: Callback) -> None:
        if callback.eventtype == "enter_chat":
            await connection.respond(callback, TextReply("welcome"))
        elif callback.eventtype == "template_card_event":
            await connection.respond(callback, UpdateTemplateCardReply({"card_type": "text_notice",
                                                                        "main_title": {"title": "done"}}))

    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot(answer).connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            welcome = await platform.push_event("enter_chat")
            click = await platform.push_event("template_card_event", task_id="task_42")
            await platform.wait_until(lambda: bool(welcome.replies and click.replies), WAIT)
            assert welcome.replies[0].cmd == Cmd.RESPOND_WELCOME
            assert click.replies[0].cmd == Cmd.RESPOND_UPDATE
            assert click.replies[0].body and click.replies[0].body["template_card"]["task_id"] == "task_42"
            assert welcome.reply_times[0] - welcome.at <= REPLY_WINDOW
            assert click.reply_times[0] - click.at <= REPLY_WINDOW
            assert platform.violations == []
            await connection.stop()
    run(scenario())


def test_a_refused_subscribe_stops_after_the_configured_tries():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret="the-right-one") as platform:
            connection = Bot().connect(platform.url, max_subscribe_failures=3)
            state = await connection.run()
            assert state.phase is Phase.TERMINAL and state.terminal is TerminalReason.SUBSCRIBE_REFUSED
            assert "853000" in (state.terminal_message or "") and "bot_id and secret" in (state.terminal_message or "")
            assert platform.subscribe_attempts == 3
            await asyncio.sleep(0.3)  # many backoff periods: nobody tries again
            assert platform.subscribe_attempts == 3 and platform.connections == 3
    run(scenario())


def test_a_drop_is_followed_by_backoff_and_a_fresh_subscribe():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot(stream_answer).connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            await platform.drop()
            await platform.wait_until(lambda: platform.subscribes_ok == 2, WAIT)
            await connection.wait_connected(WAIT)
            assert connection.state.reconnects == 1
            assert connection.state.last_error is None  # cleared once subscribed again
            pushed = await platform.push_message("text")
            await platform.wait_until(lambda: platform.finished(pushed.req_id), WAIT)
            assert platform.violations == []
            await connection.stop()
    run(scenario())


def test_refused_connections_are_retried_until_the_platform_is_up():
    async def scenario() -> None:
        platform = FakePlatform(bot_id="bot-under-test", secret=SECRET)
        await platform.start()
        url = platform.url
        await platform.stop()
        connection = Bot().connect(url)
        connection.start()
        await asyncio.sleep(0.3)
        assert connection.state.reconnects >= 2 and "cannot connect" in (connection.state.last_error or "")
        await connection.stop()
    run(scenario())


def test_backoff_doubles_from_one_second_to_thirty_with_jitter():
    assert [backoff_delay(n, rand=lambda: 0.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(1, rand=lambda: 1.0) == 0.75
    assert backoff_delay(1000, rand=lambda: 0.5) == 30 * 0.875


def test_eviction_stays_down_and_releases_the_lease():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            lease = MemoryLease()
            connection = Bot().connect(platform.url, lease=lease, holder="me")
            task = connection.start()
            await connection.wait_connected(WAIT)
            assert lease.owner(connection.lease_name) == "me"
            await platform.evict()
            state = await asyncio.wait_for(task, WAIT)
            assert state.terminal is TerminalReason.EVICTED and not state.connected
            assert lease.owner(connection.lease_name) is None
            await asyncio.sleep(0.3)
            assert platform.connections == 2  # ours and the rival's: no reconnect
    run(scenario())


def test_frames_of_one_req_id_go_one_after_another_ack():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET, ack_delay=0.02) as platform:
            bot = Bot()
            connection = bot.connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            pushed = await platform.push_message("text")
            await platform.wait_until(lambda: bool(bot.callbacks), WAIT)
            callback = bot.callbacks[0]
            texts = ["a" * (i + 1) for i in range(8)]
            frames = [StreamReply("s1", t, finish=(i == len(texts) - 1)) for i, t in enumerate(texts)]
            await asyncio.gather(*(connection.respond(callback, f) for f in frames))
            assert [f.body["stream"]["content"] for f in platform.replies(pushed.req_id) if f.body] == texts
            assert platform.violations == []
            await connection.stop()
    run(scenario())


def test_the_queue_per_req_id_is_bounded():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET, ack_delay=0.2) as platform:
            bot = Bot()
            connection = bot.connect(platform.url, max_queue=2)
            connection.start()
            await connection.wait_connected(WAIT)
            await platform.push_message("text")
            await platform.wait_until(lambda: bool(bot.callbacks), WAIT)
            frame = respond_frame(Cmd.RESPOND_MSG, bot.callbacks[0].req_id,
                                  {"msgtype": "stream", "stream": {"id": "s", "finish": False, "content": "x"}})
            results = await asyncio.gather(*(connection.request(frame) for _ in range(3)), return_exceptions=True)
            assert sum(isinstance(r, QueueFull) for r in results) == 1
            await connection.stop()
    run(scenario())


def test_an_unacknowledged_frame_times_out_and_a_refused_one_raises_its_errcode():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot().connect(platform.url, ack_timeout=0.2)
            connection.start()
            await connection.wait_connected(WAIT)
            platform.withhold_acks.add(Cmd.SEND_MSG)
            with pytest.raises(AckTimeout):
                await connection.send_markdown("zhangsan", "hello")
            platform.withhold_acks.clear()
            await connection.send_markdown("zhangsan", "hello")
            with pytest.raises(AckError) as refused:
                await connection.request(respond_frame(Cmd.RESPOND_MSG, "never-pushed", {
                    "msgtype": "stream", "stream": {"id": "s", "finish": True, "content": "x"}}))
            assert refused.value.errcode == 846605
            await connection.stop()
            with pytest.raises(NotConnected):
                await connection.send_markdown("zhangsan", "hello")
    run(scenario())


def test_proactive_markdown_and_card():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot().connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            await connection.send_markdown("zhangsan", "**hi**")
            await connection.send_template_card("group-1", {"card_type": "text_notice", "task_id": "t_1"})
            sent = [r.frame for r in platform.received if r.frame and r.frame.cmd == Cmd.SEND_MSG]
            assert [f.body["chatid"] for f in sent if f.body] == ["zhangsan", "group-1"]
            assert platform.violations == []
            await connection.stop()
    run(scenario())


def test_media_is_uploaded_in_chunks_and_returns_a_media_id():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot().connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            data = bytes(range(251)) * 5000  # 1,255,000 bytes: three chunks
            media = await connection.upload_media(data, media_type="file", filename="report.pdf")
            assert platform.uploads[media.media_id] == data and media.type == "file"
            cmds = [r.frame.cmd for r in platform.received if r.frame and r.frame.cmd.startswith("aibot_upload")]
            assert cmds == [Cmd.UPLOAD_INIT] + [Cmd.UPLOAD_CHUNK] * 3 + [Cmd.UPLOAD_FINISH]
            chunks = [r.frame.body for r in platform.received if r.frame and r.frame.cmd == Cmd.UPLOAD_CHUNK]
            assert sorted(c["chunk_index"] for c in chunks if c) == [0, 1, 2]
            assert all(len(c["base64_data"]) <= (MAX_CHUNK_BYTES + 2) // 3 * 4 for c in chunks if c)
            assert platform.violations == []
            await connection.stop()
    run(scenario())


def test_the_secret_is_in_no_log_line_and_no_repr(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="wxcallback.longconn")

    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot(stream_answer).connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            pushed = await platform.push_message("text")
            await platform.wait_until(lambda: platform.finished(pushed.req_id), WAIT)
            await platform.drop()
            await platform.wait_until(lambda: platform.subscribes_ok == 2, WAIT)
            texts = [repr(connection), repr(connection.settings), str(connection.state.to_dict()), repr(platform)]
            await connection.stop()
        async with FakePlatform(bot_id="bot-under-test", secret="other") as refusing:
            state = await Bot().connect(refusing.url, max_subscribe_failures=2).run()
            texts.append(str(state.to_dict()))
        assert all(SECRET not in text for text in texts)
    run(scenario())
    assert caplog.records and SECRET[-6:] not in caplog.text  # not even the tail websockets would show
    assert any("withheld" in r.getMessage() for r in caplog.records)


def test_malformed_frames_never_crash_the_client(caplog):
    caplog.set_level(logging.WARNING, logger="wxcallback.longconn")
    junk = ["not json", "[1]", '{"cmd":"aibot_msg_callback"}', '{"headers":{"req_id":"x"},"cmd":"weird"}',
            b"\xff\xfe", '{"cmd":"aibot_event_callback","headers":{"req_id":"y"},"body":{"msgtype":"event"}}']

    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot(stream_answer).connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            for data in junk:
                await platform.push_raw(data)
            pushed = await platform.push_message("text")
            await platform.wait_until(lambda: platform.finished(pushed.req_id), WAIT)
            assert connection.state.connected and connection.state.malformed_frames == len(junk)
            assert platform.subscribes_ok == 1
            await connection.stop()
    run(scenario())
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == len(junk) and all("\n" not in line and "-40002" in line for line in lines)


def test_a_failing_handler_is_logged_and_the_connection_goes_on(caplog):
    caplog.set_level(logging.ERROR, logger="wxcallback.longconn")

    async def broken(connection: LongConnection, callback: Callback) -> None:
        if callback.body.get("text", {}).get("content") == "boom":
            raise RuntimeError("handler bug")
        await stream_answer(connection, callback)

    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            connection = Bot(broken).connect(platform.url)
            connection.start()
            await connection.wait_connected(WAIT)
            await platform.push_message("text", text="boom")
            pushed = await platform.push_message("text", text="fine")
            await platform.wait_until(lambda: platform.finished(pushed.req_id), WAIT)
            assert connection.state.connected
            await connection.stop()
    run(scenario())
    assert "callback handler failed" in caplog.text


def test_only_the_lease_holder_connects_and_another_takes_over_when_it_stops():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            lease = MemoryLease()
            # renewals every ttl/3: a ttl with room for a loaded machine's late timers
            first = Bot().connect(platform.url, lease=lease, holder="a", lease_ttl=1.5)
            second = Bot().connect(platform.url, lease=lease, holder="b", lease_ttl=1.5)
            first.start()
            await first.wait_connected(WAIT)
            second.start()
            await asyncio.sleep(1.2)  # two renewals and standby polls
            assert second.state.phase is Phase.STANDBY and platform.connections == 1
            await first.stop()
            await second.wait_connected(WAIT)
            assert lease.owner(second.lease_name) == "b" and platform.subscribes_ok == 2
            assert platform.violations == []
            await second.stop()
            assert lease.owner(second.lease_name) is None
    run(scenario())


def test_a_lost_lease_closes_the_connection():
    async def scenario() -> None:
        async with FakePlatform(bot_id="bot-under-test", secret=SECRET) as platform:
            lease = MemoryLease()
            connection = Bot().connect(platform.url, lease=lease, holder="a", lease_ttl=0.3)
            connection.start()
            await connection.wait_connected(WAIT)
            await lease.release(connection.lease_name, "a")
            assert await lease.acquire(connection.lease_name, "intruder", 60)
            await platform.wait_until(lambda: not platform.subscribed, WAIT)
            await asyncio.sleep(0.2)
            assert connection.state.phase is Phase.STANDBY and platform.subscribes_ok == 1
            await connection.stop()
    run(scenario())
