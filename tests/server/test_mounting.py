"""The app mounted inside another Starlette app serves its channels under the mount path."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore


def test_mounted_app_answers_under_its_prefix() -> None:
    config = parse_config({"channels": {"w": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN,
                                              "encoding_aes_key": KEY, "receive_id": APPID}}})
    inner = create_app(config, store=MemoryStore())
    outer = Starlette(routes=[Mount("/hooks", app=inner)])
    side = Platform("wecom-app", "/hooks/wecom")

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url="http://t") as client:
            check = await client.get(side.verify_url_request())  # no lifespan: the app starts itself
            assert check.status_code == 200 and check.text == side.expected_echo
            url, data = side.callback(wecom_text("mounted"))
            reply = side.open_reply((await client.post(url, content=data)).content, side.last_nonce)
            assert "echo: mounted" in reply
        await inner.state.wxcallback.stop()

    asyncio.run(scenario())
