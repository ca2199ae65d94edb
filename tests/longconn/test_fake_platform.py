"""The fake platform's own checks, driven by a hand-rolled bot that breaks the rules."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from wxcallback.longconn.frames import Cmd, parse_frame, subscribe_frame
from wxcallback.simulator.longconn import FakePlatform

from .helpers import SECRET, WAIT, run


async def send(ws: ClientConnection, cmd: str, req_id: str, body: Any = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
    if body is not None:
        frame["body"] = body
    await ws.send(json.dumps(frame))
    while True:
        answer = json.loads(await ws.recv())
        if "cmd" not in answer:
            return answer


async def subscribed(platform: FakePlatform) -> ClientConnection:
    ws = await connect(platform.url)
    answer = json.loads(await _subscribe(ws, platform))
    assert answer["errcode"] == 0
    return ws


async def _subscribe(ws: ClientConnection, platform: FakePlatform) -> str:
    await ws.send(subscribe_frame(platform.bot_id, SECRET, req_id="S").to_json())
    return str(await ws.recv())


def stream(content: str, finish: bool = False, stream_id: str = "s1", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "stream", "stream": {"id": stream_id, "finish": finish, "content": content, **extra}}


def codes(platform: FakePlatform) -> list[str]:
    return [v.code for v in platform.violations]


def test_wrong_credentials_get_853000():
    async def scenario() -> None:
        async with FakePlatform(bot_id="b", secret=SECRET) as platform:
            async with connect(platform.url) as ws:
                await ws.send(subscribe_frame("b", "wrong", req_id="S").to_json())
                ack = parse_frame(await ws.recv())
                assert ack.errcode == 853000 and ack.errmsg == "invalid bot_id or secret"  # type: ignore[union-attr]
            platform.refuse_next_subscribes = 1
            async with connect(platform.url) as ws:
                await ws.send(subscribe_frame("b", SECRET, req_id="S").to_json())
                assert json.loads(await ws.recv())["errcode"] == 853000
                await ws.send(subscribe_frame("b", SECRET, req_id="S2").to_json())
                assert json.loads(await ws.recv())["errcode"] == 0
    run(scenario())


def test_frames_before_subscribe_and_unechoed_req_ids_are_flagged():
    async def scenario() -> None:
        async with FakePlatform(bot_id="b", secret=SECRET) as platform:
            async with connect(platform.url) as ws:
                assert (await send(ws, Cmd.PING, "p1"))["errcode"] != 0
                await _subscribe(ws, platform)
                answer = await send(ws, Cmd.RESPOND_MSG, "made-up", stream("x", True))
                assert answer["errcode"] == 846605
            assert codes(platform) == ["not-subscribed", "req-id-not-echoed"]
    run(scenario())


def test_stream_rules_are_checked():
    async def scenario() -> None:
        async with FakePlatform(bot_id="b", secret=SECRET) as platform:
            ws = await subscribed(platform)
            pushed = await platform.push_message("text")
            await ws.recv()
            r = pushed.req_id
            await send(ws, Cmd.RESPOND_MSG, r, stream("Hello"))
            await send(ws, Cmd.RESPOND_MSG, r, stream("Bye"))  # not the text so far
            await send(ws, Cmd.RESPOND_MSG, r, stream("Bye", stream_id="s2"))  # id changes mid-stream
            item = [{"msgtype": "image", "image": {"base64": "AA==", "md5": "0" * 32}}]
            await send(ws, Cmd.RESPOND_MSG, r, stream("Bye!", msg_item=item))  # images before finishing
            await send(ws, Cmd.RESPOND_MSG, r, stream("x" * 20481, True))  # too long
            await send(ws, Cmd.RESPOND_MSG, r, stream("Bye!", True))
            await send(ws, Cmd.RESPOND_MSG, r, stream("Bye!!", False))  # after finish
            await ws.close()
            assert codes(platform) == ["not-cumulative", "stream-id", "bad-body", "bad-body", "after-finish"]
    run(scenario())


def test_reply_commands_must_fit_the_callback_and_its_window():
    async def scenario() -> None:
        async with FakePlatform(bot_id="b", secret=SECRET, reply_window=0.0) as platform:
            ws = await subscribed(platform)
            welcome = await platform.push_event("enter_chat")
            await ws.recv()
            assert (await send(ws, Cmd.RESPOND_MSG, welcome.req_id, stream("hi", True)))["errcode"] == 846605
            await send(ws, Cmd.RESPOND_WELCOME, welcome.req_id, {"msgtype": "text", "text": {"content": "hi"}})
            feedback = await platform.push_event("feedback_event")
            await ws.recv()
            await send(ws, Cmd.RESPOND_MSG, feedback.req_id, stream("thanks", True))
            await ws.close()
            assert codes(platform) == ["wrong-reply", "late", "wrong-reply"]
    run(scenario())


def test_a_frame_sent_before_the_previous_ack_is_flagged():
    async def scenario() -> None:
        async with FakePlatform(bot_id="b", secret=SECRET, ack_delay=0.2) as platform:
            ws = await subscribed(platform)
            pushed = await platform.push_message("text")
            await ws.recv()
            for text in ("a", "ab"):
                await ws.send(json.dumps({"cmd": Cmd.RESPOND_MSG, "headers": {"req_id": pushed.req_id},
                                          "body": stream(text)}))
            await platform.wait_until(lambda: len(platform.violations) == 1, WAIT)
            assert codes(platform) == ["not-serial"]
            await ws.close()
    run(scenario())


def test_a_second_subscribe_evicts_the_first_connection():
    async def scenario() -> None:
        async with FakePlatform(bot_id="b", secret=SECRET, evict_close_delay=0.1) as platform:
            first = await subscribed(platform)
            second = await subscribed(platform)
            event = parse_frame(await first.recv())
            assert event.eventtype == "disconnected_event"  # type: ignore[union-attr]
            await first.wait_closed()
            await platform.push_message("text")
            assert parse_frame(await second.recv()).msgtype == "text"  # type: ignore[union-attr]
            await second.close()
    run(scenario())
