"""A sync handler that blocks runs off the event loop: other channels and its own deadline are unaffected."""

from __future__ import annotations

import asyncio

import httpx

from tests.server import handlers
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore

CHANNELS = {
    "blocking": {"path": "/blocking", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                 "receive_id": APPID, "handler": "tests.server.handlers:blocking", "deadline": 0.3},
    "other": {"path": "/other", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID, "handler": "tests.server.handlers:router"},
}


def test_a_blocking_sync_handler_stalls_neither_other_channels_nor_its_deadline() -> None:
    handlers.release_blocking.clear()
    blocking, other = Platform("wecom-app", "/blocking"), Platform("wecom-app", "/other")

    async def main() -> None:
        app = create_app(parse_config({"channels": CHANNELS}), store=MemoryStore())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     timeout=30) as client:
            text = wecom_text("stuck")
            url, data = blocking.callback(text)
            stuck = asyncio.create_task(client.post(url, content=data))
            await asyncio.sleep(0.05)
            # While the handler is blocked in its thread the loop serves everything else...
            assert (await client.get(other.verify_url_request())).text == other.expected_echo
            url2, data2 = other.callback(wecom_text("free"))
            assert "echo: free" in other.open_reply((await client.post(url2, content=data2)).content)
            # ...and the blocked callback is answered "no reply" at its deadline, handler still running.
            response = await stuck
            assert (response.status_code, response.content) == (200, b"")
            assert handlers.finished["blocking"] == 0
            handlers.release_blocking.set()
            for _ in range(100):
                if handlers.finished["blocking"]:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)
            url, data = blocking.callback(text)  # the platform's retry gets the late answer
            assert "blocked answer" in blocking.open_reply((await client.post(url, content=data)).content)
            assert handlers.calls["blocking"] == 1
        await app.state.wxcallback.stop()

    asyncio.run(main())
