"""The server in process (ASGI), per platform and mode, with a memory store."""

from __future__ import annotations

import asyncio
import secrets
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.server import handlers
from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, robot_refresh, robot_text, wecom_text
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore

CHANNELS: dict[str, dict[str, Any]] = {
    "oa": {"path": "/oa", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
           "receive_id": APPID, "modes": ["safe", "compatible"], "handler": "tests.server.handlers:router"},
    "oa_plain": {"path": "/oa-plain", "platform": "official-account", "token": TOKEN, "modes": ["plaintext"],
                 "handler": "tests.server.handlers:router"},
    "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID, "handler": "tests.server.handlers:router"},
    "robot": {"path": "/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY,
              "handler": "tests.server.handlers:router"},
    "robot_stream": {"path": "/robot-stream", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY,
                     "handler": "tests.server.handlers:streaming"},
    "slow": {"path": "/slow", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
             "receive_id": APPID, "handler": "tests.server.handlers:slow", "deadline": 0.1},
    "broken": {"path": "/broken", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
               "receive_id": APPID, "handler": "tests.server.handlers:broken"},
    "bad_reply": {"path": "/bad-reply", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                  "receive_id": APPID, "handler": "tests.server.handlers:bad_reply"},
    "robot_long": {"path": "/robot-long", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY,
                   "handler": "tests.server.handlers:long_stream"},
    "gateway": {"path": "/social/on/wechat/1", "platform": "signature-only", "token": TOKEN, "digest": "sha256"},
    "demo": {"path": "/demo", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
             "receive_id": APPID},
}

Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


def run(scenario: Scenario, max_body: int = 1024 * 1024) -> None:
    config = parse_config({"server": {"max_body_bytes": max_body}, "channels": CHANNELS})

    async def main() -> None:
        app = create_app(config, store=MemoryStore())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await scenario(client)
        await app.state.wxcallback.stop()

    asyncio.run(main())


@pytest.mark.parametrize("platform, path", [("official-account", "/oa"), ("wecom-app", "/wecom"),
                                            ("wecom-robot", "/robot")])
def test_url_verification_answers_the_bare_plaintext(platform: str, path: str) -> None:
    side = Platform(platform, path, receive_id="" if platform == "wecom-robot" else APPID)

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.get(side.verify_url_request())
        assert response.status_code == 200
        assert response.content == side.expected_echo.encode()  # no quotes, BOM or newline
        assert response.headers["content-type"].startswith("text/plain")

    run(scenario)


def test_signature_only_gateway_uses_its_digest() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        now, nonce = str(int(time.time())), "n1"
        from wxcallback import sign

        good = {"signature": sign(TOKEN, now, nonce, digest="sha256"), "timestamp": now, "nonce": nonce,
                "echostr": "4375120948345356249"}
        assert (await client.get("/social/on/wechat/1", params=good)).text == "4375120948345356249"
        sha1 = good | {"signature": sign(TOKEN, now, nonce)}
        assert (await client.get("/social/on/wechat/1", params=sha1)).status_code == 403
        body = oa_text("hello")
        response = await client.post("/social/on/wechat/1", params={k: good[k] for k in ("signature", "timestamp",
                                                                                           "nonce")},
                                     content=body)
        # No handler configured: the demo echo answers, in clear like the request.
        assert response.status_code == 200
        assert b"<Content><![CDATA[echo: hello]]></Content>" in response.content

    run(scenario)


@pytest.mark.parametrize("platform, path, body", [
    ("official-account", "/oa", oa_text),
    ("wecom-app", "/wecom", wecom_text),
])
def test_encrypted_text_gets_an_encrypted_echo(platform: str, path: str, body: Callable[[str], str]) -> None:
    side = Platform(platform, path)

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = side.callback(body("你好 world"))
        response = await client.post(url, content=data)
        assert response.status_code == 200
        reply = side.open_reply(response.content, side.last_nonce)
        assert "<Content><![CDATA[echo: 你好 world]]></Content>" in reply
        assert "<ToUserName><![CDATA[" in reply

    run(scenario)


def test_robot_text_gets_a_finished_stream_in_json() -> None:
    side = Platform("wecom-robot", "/robot", receive_id="")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = side.callback(robot_text("hi robot"))
        response = await client.post(url, content=data)
        assert response.status_code == 200
        reply = json.loads(side.open_reply(response.content, side.last_nonce))
        assert reply["msgtype"] == "stream"
        assert reply["stream"]["finish"] is True and reply["stream"]["content"] == "echo: hi robot"

    run(scenario)


def test_official_account_plaintext_mode_and_its_policy() -> None:
    plain = Platform("official-account", "/oa-plain")
    safe_only = Platform("official-account", "/oa")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = plain.callback(oa_text("clear"), encrypted=False)
        response = await client.post(url, content=data)
        assert response.status_code == 200
        assert b"<Content><![CDATA[echo: clear]]></Content>" in response.content
        # A plaintext request cannot bypass crypto on a channel that requires encryption.
        url, data = safe_only.callback(oa_text("sneaky"), encrypted=False)
        assert (await client.post(url, content=data)).status_code == 403
        assert handlers.calls["sneaky"] == 0

    run(scenario)


def test_a_platform_retry_gets_the_same_reply_and_the_handler_runs_once() -> None:
    side = Platform("wecom-app", "/wecom")

    async def scenario(client: httpx.AsyncClient) -> None:
        text = wecom_text("once-only", msg_id=424242)
        url, data = side.callback(text)
        first = side.open_reply((await client.post(url, content=data)).content)
        again = side.open_reply((await client.post(url, content=data)).content)  # byte-identical retry
        url2, data2 = side.callback(text)  # the same message with a new nonce and signature
        third = side.open_reply((await client.post(url2, content=data2)).content, side.last_nonce)
        assert first == again == third
        assert handlers.calls["once-only"] == 1

    run(scenario)


def test_replays_and_stale_requests_are_refused() -> None:
    plain = Platform("official-account", "/oa-plain")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = plain.callback(oa_text("original"), encrypted=False, nonce="fixed-nonce")
        assert (await client.post(url, content=data)).status_code == 200
        # Plaintext signatures do not cover the body: the same URL with another body is a replay.
        forged = oa_text("forged").encode()
        response = await client.post(url, content=forged)
        assert response.status_code == 403
        # ... and the same bytes again: a refused replay leaves nothing that makes its next
        # copy pass as a platform retry
        for _ in range(3):
            again = await client.post(url, content=forged)
            assert again.status_code == 403
        assert handlers.calls["forged"] == 0
        # while the platform's own retry of the original still passes (answered from the cache)
        assert (await client.post(url, content=data)).status_code == 200
        assert handlers.calls["original"] == 1
        old = str(int(time.time()) - 3600)
        url, data = plain.callback(oa_text("old"), encrypted=False, timestamp=old)
        assert (await client.post(url, content=data)).status_code == 403

    run(scenario)


def test_the_platforms_requests_reusing_a_nonce_in_other_seconds_both_pass() -> None:
    plain = Platform("official-account", "/oa-plain")

    async def scenario(client: httpx.AsyncClient) -> None:
        now = int(time.time())
        tag = secrets.token_hex(4)
        for offset, content in ((-2, f"earlier {tag}"), (0, f"later {tag}")):
            url, data = plain.callback(oa_text(content), encrypted=False, nonce="1320562132",
                                       timestamp=str(now + offset))
            assert (await client.post(url, content=data)).status_code == 200
            assert handlers.calls[content] == 1

    run(scenario)


def test_slow_handler_is_answered_at_the_deadline_and_its_result_kept() -> None:
    side = Platform("wecom-app", "/slow")

    async def scenario(client: httpx.AsyncClient) -> None:
        text = wecom_text("slow one", msg_id=777)
        url, data = side.callback(text)
        response = await client.post(url, content=data)
        assert response.status_code == 200 and response.content == b""  # WeCom "no reply"
        assert handlers.finished["slow"] == 0  # answered before the handler finished
        await asyncio.sleep(0.6)  # the handler finishes in the background
        url, data = side.callback(text)
        retry = side.open_reply((await client.post(url, content=data)).content, side.last_nonce)
        assert "late answer" in retry
        assert handlers.calls["slow"] == 1

    run(scenario)


def test_handler_errors_and_unsendable_replies_answer_no_reply() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        for path in ("/broken", "/bad-reply"):
            side = Platform("wecom-app", path)
            url, data = side.callback(wecom_text("x"))
            response = await client.post(url, content=data)
            assert (response.status_code, response.content) == (200, b"")

    run(scenario)


def test_a_stream_reaching_the_content_limit_is_finished_at_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    side = Platform("wecom-robot", "/robot-long", receive_id="")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = side.callback(robot_text("tell me a lot"))
        first = json.loads(side.open_reply((await client.post(url, content=data)).content, side.last_nonce))
        stream_id = first["stream"]["id"]
        for _ in range(50):
            await asyncio.sleep(0.02)
            url, data = side.callback(robot_refresh(stream_id))
            state = json.loads(side.open_reply((await client.post(url, content=data)).content, side.last_nonce))
            if state["stream"]["finish"]:
                break
        assert state["stream"]["finish"] is True
        assert len(state["stream"]["content"].encode()) == 20480  # cut to fit, at a character boundary

    with caplog.at_level("WARNING", logger="wxcallback.streams"):
        run(scenario)
    assert not [r for r in caplog.records if "handler_error" in r.getMessage()]
    assert [r for r in caplog.records if "truncated" in r.getMessage()]


def test_robot_stream_is_polled_to_the_end() -> None:
    side = Platform("wecom-robot", "/robot-stream", receive_id="")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = side.callback(robot_text("tell me"))
        first = json.loads(side.open_reply((await client.post(url, content=data)).content, side.last_nonce))
        assert first["msgtype"] == "stream" and first["stream"]["finish"] is False
        stream_id = first["stream"]["id"]
        contents = []
        for _ in range(50):
            await asyncio.sleep(0.05)
            url, data = side.callback(robot_refresh(stream_id))
            state = json.loads(side.open_reply((await client.post(url, content=data)).content, side.last_nonce))
            contents.append(state["stream"]["content"])
            if state["stream"]["finish"]:
                break
        assert contents[-1] == "one two three"
        assert all(a == b[: len(a)] for a, b in zip(contents, contents[1:]))  # cumulative

    run(scenario)


def test_bad_input_gets_4xx_never_5xx() -> None:
    side = Platform("wecom-app", "/wecom")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = side.callback(wecom_text("x"))
        cases = [
            ("POST", url.replace("msg_signature=", "msg_signature=0"), data, 403),
            ("POST", url, b"<xml><Encrypt>", 400),
            ("POST", url, b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>', 400),
            ("POST", url + "&nonce=again", data, 400),  # duplicate query key
            ("POST", "/wecom", data, 400),  # no signature parameters
            ("POST", "/unknown", data, 404),
            ("PUT", url, data, 405),
            ("POST", url, b"x" * 5000, 413),
            ("POST", url, b"\xff\xfe", 400),
        ]
        for method, target, body, status in cases:
            response = await client.request(method, target, content=body)
            assert response.status_code == status, (method, target[:40], body[:20], response.text)

    run(scenario, max_body=4096)


def test_healthz_and_metrics() -> None:
    side = Platform("wecom-app", "/wecom")

    async def scenario(client: httpx.AsyncClient) -> None:
        url, data = side.callback(wecom_text("count me"))
        await client.post(url, content=data)
        await client.post(url, content=data)
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        metrics = (await client.get("/metrics")).text
        assert 'wxcallback_requests_total{channel="wecom",code="0",outcome="ok"}' in metrics
        assert 'wxcallback_dedup_hits_total{channel="wecom"}' in metrics
        assert "wxcallback_outbox_depth" in metrics

    run(scenario)


def test_a_body_trickling_in_is_cut_off_with_408() -> None:
    from wxcallback.server.runtime import CallbackServer

    config = parse_config({"server": {"body_timeout": 0.2}, "channels": CHANNELS})

    sent = []

    async def trickle():  # type: ignore[no-untyped-def]
        for _ in range(100):
            await asyncio.sleep(0.05)
            sent.append(1)
            yield b"<"

    async def main() -> None:
        server = CallbackServer(config, MemoryStore())
        response = await server.respond("POST", "/wecom", b"", trickle())
        assert response.status == 408 and response.outcome == "body_timeout"
        assert len(sent) < 100  # cut off before the body ended
        too_big = await server.respond("POST", "/wecom", b"", b"x", content_length=10**9)
        assert too_big.status == 413 and too_big.channel == "wecom"
        await server.stop()

    asyncio.run(main())
