"""What a server on the public internet must not do: reflect content, route encoded
paths, let a captured request replay on a sibling channel, or let replays outlive dedup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text
from wxcallback import sign
from wxcallback.server.app import create_app
from wxcallback.server.config import ConfigError, parse_config
from wxcallback.server.stores import MemoryStore

CHANNELS: dict[str, dict[str, Any]] = {
    "oa": {"path": "/oa", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
           "receive_id": APPID},
    "plain_a": {"path": "/plain-a", "platform": "official-account", "token": TOKEN, "modes": ["plaintext"]},
    "plain_b": {"path": "/plain-b", "platform": "official-account", "token": TOKEN, "modes": ["plaintext"]},
    "wecom": {"path": "/wecom/app", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID},
    "unicode": {"path": "/回调", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                "receive_id": APPID},
}


def run(scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        app = create_app(parse_config({"channels": CHANNELS}), store=MemoryStore())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            await scenario(client)
        await app.state.wxcallback.stop()

    asyncio.run(main())


def oa_url_check(echostr: str) -> str:
    timestamp, nonce = str(int(time.time())), "n1"
    return "/oa?" + urlencode({"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp,
                               "nonce": nonce, "echostr": echostr})


def test_the_url_check_echoes_only_a_number_as_nosniff_text() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        ok = await client.get(oa_url_check("1234567890123456789"))
        assert (ok.status_code, ok.text) == (200, "1234567890123456789")
        assert ok.headers["content-type"].startswith("text/plain")
        assert ok.headers["x-content-type-options"] == "nosniff"
        for hostile in ("<script>alert(1)</script>", "12<b>", "9" * 100, ""):
            refused = await client.get(oa_url_check(hostile))
            assert refused.status_code == 400 and "<" not in refused.text

    run(scenario)


# (dot segments are normalised away by HTTP clients before they are sent; the server refuses
# them too, see canonical_path)
@pytest.mark.parametrize("raw", ["/wecom%2fapp", "/wecom/%61pp", "//wecom/app", "/%e5%9b%9e%e8%b0%83"])
def test_encoded_paths_do_not_reach_a_channel(raw: str) -> None:
    side = Platform("wecom-app", "/wecom/app")

    async def scenario(client: httpx.AsyncClient) -> None:
        query = side.verify_url_request().split("?", 1)[1]
        assert (await client.get(f"/wecom/app?{query}")).status_code == 200
        refused = await client.get(httpx.URL(f"http://test{raw}?{query}"))
        assert refused.status_code == 400, raw

    run(scenario)


def test_a_non_ascii_path_in_canonical_form_is_routed() -> None:
    side = Platform("wecom-app", "/%E5%9B%9E%E8%B0%83")

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.get(httpx.URL("http://test" + side.verify_url_request()))
        assert (response.status_code, response.text) == (200, side.expected_echo)

    run(scenario)


def test_a_plaintext_request_captured_on_one_channel_does_not_replay_on_another_with_its_token() -> None:
    a = Platform("official-account", "/plain-a")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, body = a.callback(oa_text("pay 100"), encrypted=False, nonce="captured")
        assert (await client.post(url, content=body)).status_code == 200
        # the same signed query (token, timestamp, nonce) with another body, on the sibling channel
        query = url.split("?", 1)[1]
        replayed = await client.post(f"/plain-b?{query}", content=oa_text("pay 1000").encode())
        assert replayed.status_code == 403

    run(scenario)


def test_dedup_must_outlive_the_replay_window() -> None:
    base = {"path": "/w", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID}
    with pytest.raises(ConfigError, match=r"dedup_ttl .* replay_window"):
        parse_config({"channels": {"w": base | {"dedup_ttl": 30, "replay_window": 60}}})
    derived = parse_config({"channels": {"w": base | {"replay_window": 900}}}).channels[0]
    assert derived.dedup_ttl >= derived.replay_window == 900
