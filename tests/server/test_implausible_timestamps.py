"""A correctly signed request whose timestamp is not a plausible Unix time is a replay refusal (403)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, wecom_text
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore

CHANNELS = {
    "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID},
    "oa_plain": {"path": "/oa", "platform": "official-account", "token": TOKEN, "modes": ["plaintext"]},
}


@pytest.mark.parametrize("timestamp", ["9" * 12, "9" * 309, "1" * 4301, "0" * 400 + "1700000000"])
@pytest.mark.parametrize("encrypted", [True, False])
def test_signed_requests_with_absurd_timestamps_are_refused_as_replays(timestamp: str, encrypted: bool,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wxcallback")  # other tests may have quietened it
    side = Platform("wecom-app", "/wecom") if encrypted else Platform("official-account", "/oa")
    plaintext = wecom_text("x") if encrypted else oa_text("x")

    async def main() -> None:
        app = create_app(parse_config({"channels": CHANNELS}), store=MemoryStore())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            url, body = side.callback(plaintext, encrypted=encrypted, timestamp=timestamp)
            response = await client.post(url, content=body)
            assert response.status_code == 403, response.text
            assert '"outcome": "replay"' in caplog.text and "is not Unix seconds" in caplog.text
            check = await client.get(side.verify_url_request())  # the server is still fine
            assert check.status_code == 200
        await app.state.wxcallback.stop()

    asyncio.run(main())
