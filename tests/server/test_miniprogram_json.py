"""Mini-program message push in its JSON data format, driven by the simulator in process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.platform_requests import APPID, KEY, TOKEN
from wxcallback.messages import (
    Message,
    Platform,
    Router,
    TextReply,
    TransferCustomerServiceReply,
    UserEnterTempSessionEvent,
    parse_message,
    render_reply,
)
from wxcallback.server.app import create_app
from wxcallback.server.config import ConfigError, parse_config
from wxcallback.server.stores import MemoryStore
from wxcallback.simulator import Simulator

seen: list[Message] = []
router = Router()


@router.text
def transfer(message: Message) -> TransferCustomerServiceReply:
    seen.append(message)
    return TransferCustomerServiceReply()


@router.event("user_enter_tempsession")
def entered(message: Message) -> None:
    seen.append(message)


CHANNELS: dict[str, dict[str, Any]] = {
    "mp": {"path": "/mp", "platform": "miniprogram", "token": TOKEN, "encoding_aes_key": KEY,
           "receive_id": APPID, "data_format": "json", "modes": ["safe", "plaintext"],
           "handler": "tests.server.test_miniprogram_json:router"},
}


def run(mode: str, scenario: Callable[[Simulator], Awaitable[None]]) -> None:
    async def main() -> None:
        app = create_app(parse_config({"channels": CHANNELS}), store=MemoryStore())
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        simulator = Simulator("http://test/mp", platform="miniprogram", token=TOKEN, encoding_aes_key=KEY,
                              receive_id=APPID, data_format="json", mode=mode, client=client)
        try:
            await scenario(simulator)
        finally:
            await client.aclose()
            await app.state.wxcallback.stop()

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["safe", "plaintext"])
def test_a_json_mini_program_channel_verifies_parses_and_answers_in_json(mode: str) -> None:
    seen.clear()

    async def scenario(simulator: Simulator) -> None:
        check = await simulator.verify_url()
        assert check.status == 200 and check.passed, [c.detail for c in check.checks]
        text = await simulator.send_text("人工客服")
        assert text.status == 200 and text.reply is not None
        reply = json.loads(text.reply)  # the JSON form, encrypted in a JSON envelope in safe mode
        assert reply["MsgType"] == "transfer_customer_service"
        assert reply["ToUserName"] == seen[0].source and reply["FromUserName"] == seen[0].target
        event = await simulator.send_event("user_enter_tempsession", SessionFrom="button-1")
        assert event.status == 200 and event.reply is None  # "success"

    run(mode, scenario)
    assert seen[0].platform is Platform.MINIPROGRAM and seen[0].data_format == "json"
    assert isinstance(seen[1], UserEnterTempSessionEvent) and seen[1].session_from == "button-1"


def test_a_mini_program_has_no_passive_content_reply() -> None:
    message = parse_message('{"ToUserName": "gh_mp", "FromUserName": "o1", "CreateTime": 1, "MsgType": "text", '
                            '"Content": "hi", "MsgId": 1}', "miniprogram")
    with pytest.raises(Exception, match="customer-service message API"):
        render_reply(TextReply("hi"), message)
    assert json.loads(render_reply(TransferCustomerServiceReply("kf@x"), message, create_time=5)) == {
        "ToUserName": "o1", "FromUserName": "gh_mp", "CreateTime": 5, "MsgType": "transfer_customer_service",
        "TransInfo": {"KfAccount": "kf@x"}}
    assert message.no_reply.body == "success"


def test_json_is_refused_where_the_platform_has_no_json_format() -> None:
    base = {"path": "/w", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID, "data_format": "json"}
    for platform in ("wecom-app", "wecom-robot"):
        with pytest.raises(ConfigError, match="data_format"):
            parse_config({"channels": {"w": base | {"platform": platform}}})
