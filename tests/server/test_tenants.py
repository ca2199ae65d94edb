"""Many accounts on one host: path templates, third-party second URLs, channels sharing a path."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.server import handlers
from tests.platform_requests import KEY, TOKEN, Platform, oa_text
from wxcallback import sign
from wxcallback.server.app import create_app
from wxcallback.server.config import ConfigError, parse_config
from wxcallback.server.routes import RouteTable
from wxcallback.server.stores import MemoryStore
from wxcallback.server.tickets import latest_ticket

COMPONENT = "wx134c8103faa5a59e"  # the open-platform doc's example component AppID
TENANTS = ("wxba5fad812f8e6fb9", "wx0123456789abcdef", "wxfedcba9876543210")
PROVIDER, SUITE = "wwe17d1c563ee10f68", "ww3016e68348c15acd"
CORP_A, CORP_B = "ww0000000000000a01", "wpAbCdEf0123456789_-xyz"
OTHER_TOKEN = "OtherToken42"
OTHER_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

CHANNELS: dict[str, dict[str, Any]] = {
    "open": {"platform": "component", "path": "/open/{appid}", "auth_path": "/open/auth", "token": TOKEN,
             "encoding_aes_key": KEY, "receive_id": COMPONENT, "handler": "tests.server.handlers:tenants"},
    "exact": {"platform": "official-account", "path": f"/open/{TENANTS[2]}", "token": OTHER_TOKEN,
              "encoding_aes_key": OTHER_KEY, "receive_id": TENANTS[2], "handler": "tests.server.handlers:router"},
    "suite": {"platform": "wecom-suite", "path": "/suite/{corpid}", "instruction_path": "/suite/instructions",
              "token": TOKEN, "encoding_aes_key": KEY, "receive_id": PROVIDER, "suite_id": SUITE,
              "handler": "tests.server.handlers:tenants"},
    "app_a": {"platform": "wecom-app", "path": "/wecom", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": PROVIDER, "handler": "tests.server.handlers:app_a"},
    "app_b": {"platform": "wecom-app", "path": "/wecom", "token": OTHER_TOKEN, "encoding_aes_key": OTHER_KEY,
              "receive_id": PROVIDER, "handler": "tests.server.handlers:app_b"},
    "agent_1": {"platform": "wecom-app", "path": "/agents", "token": TOKEN, "encoding_aes_key": KEY,
                "receive_id": PROVIDER, "agent_id": 1000001, "handler": "tests.server.handlers:app_a"},
    "agent_2": {"platform": "wecom-app", "path": "/agents", "token": TOKEN, "encoding_aes_key": OTHER_KEY,
                "receive_id": PROVIDER, "agent_id": 1000002, "handler": "tests.server.handlers:app_b"},
}
Client = httpx.AsyncClient


def _run(test: Callable[[Client, MemoryStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = MemoryStore()
        app = create_app(parse_config({"channels": CHANNELS}), store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            await test(client, store)
        await app.state.wxcallback.stop()

    asyncio.run(main())


def wecom_text_for(content: str, agent_id: int = 1000002, corp: str = PROVIDER) -> str:
    return (f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{secrets.randbelow(10**15)}</MsgId>"
            f"<AgentID>{agent_id}</AgentID></xml>")


def sealed(side: Platform, plaintext: str, envelope: str) -> tuple[str, bytes]:
    """(url, body) with the envelope's other fields as given (``{encrypt}`` marks the ciphertext)."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
    side.last_nonce = nonce
    encrypt = side.crypto.encrypt_reply(plaintext, nonce, timestamp=timestamp).encrypt
    query = {"msg_signature": sign(side.token, timestamp, nonce, encrypt), "timestamp": timestamp, "nonce": nonce,
             "encrypt_type": "aes", "signature": sign(side.token, timestamp, nonce)}
    return f"{side.path}?{urlencode(query)}", envelope.format(encrypt=encrypt).encode()


def component_notice(info_type: str, extra: str = "") -> str:
    return (f"<xml><AppId><![CDATA[{COMPONENT}]]></AppId><CreateTime>{int(time.time())}</CreateTime>"
            f"<InfoType><![CDATA[{info_type}]]></InfoType>{extra}</xml>")


def suite_notice(info_type: str, extra: str = "") -> str:
    return (f"<xml><SuiteId><![CDATA[{SUITE}]]></SuiteId><InfoType><![CDATA[{info_type}]]></InfoType>"
            f"<TimeStamp>{int(time.time())}</TimeStamp>{extra}</xml>")


def test_each_open_platform_tenant_gets_its_own_replies_and_a_new_one_needs_no_configuration() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        content = "hello " + secrets.token_hex(4)
        for tenant in TENANTS[:2] + ("wx1111111111111111",):  # the last one is in no configuration
            # The authorizer's messages are sealed for the component's AppID, not the authorizer's.
            side = Platform("component", f"/open/{tenant}", receive_id=COMPONENT)
            url, body = side.callback(oa_text(content, msg_id=42))  # the same MsgId for every tenant
            response = await client.post(url, content=body)
            assert response.status_code == 200, response.text
            assert f"<Content><![CDATA[{tenant}: {content}]]></Content>" in side.open_reply(response.content)
        assert all(handlers.calls[f"{t}:{content}"] == 1 for t in TENANTS[:2])  # no tenant was a duplicate

    _run(test)


def test_a_request_captured_on_one_tenants_url_is_refused_on_another_tenants() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        content = "transfer " + secrets.token_hex(4)
        side = Platform("component", f"/open/{TENANTS[0]}", receive_id=COMPONENT)
        url, body = side.callback(oa_text(content))
        assert (await client.post(url, content=body)).status_code == 200
        assert (await client.post(url, content=body)).status_code == 200  # the platform's retry
        # the same signed request on another account's URL: the path is not signed
        query = url.split("?", 1)[1]
        for _ in range(2):
            replayed = await client.post(f"/open/{TENANTS[1]}?{query}", content=body)
            assert replayed.status_code == 403
        assert handlers.calls[f"{TENANTS[0]}:{content}"] == 1
        assert handlers.calls[f"{TENANTS[1]}:{content}"] == 0

    _run(test)


def test_an_exact_path_wins_over_a_template() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        side = Platform("official-account", f"/open/{TENANTS[2]}", receive_id=TENANTS[2], token=OTHER_TOKEN,
                        key=OTHER_KEY)
        url, body = side.callback(oa_text("mine"))
        response = await client.post(url, content=body)
        assert response.status_code == 200 and "echo: mine" in side.open_reply(response.content)

    _run(test)


@pytest.mark.parametrize("path", ["/open/wx123", "/open/WXBA5FAD812F8E6FB9", "/open/<script>alert(1)</script>",
                                  "/open/wxba5fad812f8e6fb9/more", "/open/", "/suite/zz0000000000000a01"])
def test_a_captured_value_of_the_wrong_format_is_a_404_that_echoes_nothing(
        path: str, caplog: pytest.LogCaptureFixture) -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        with caplog.at_level(logging.INFO, logger="wxcallback.access"):
            response = await client.post(path + "?timestamp=1&nonce=2&msg_signature=3", content=b"<xml/>")
        assert response.status_code == 404 and response.text == "unknown callback path"
        (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "wxcallback.access"]
        assert line["outcome"] == "unknown_path" and "tenant" not in line

    _run(test)


def test_the_log_line_names_the_tenant(caplog: pytest.LogCaptureFixture) -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        side = Platform("component", f"/open/{TENANTS[0]}", receive_id=COMPONENT)
        url, body = side.callback(oa_text("logged"))
        with caplog.at_level(logging.INFO, logger="wxcallback.access"):
            assert (await client.post(url, content=body)).status_code == 200
            forged = Platform("component", f"/open/{TENANTS[0]}", receive_id=COMPONENT, token=OTHER_TOKEN)
            url, body = forged.callback(oa_text("forged"))
            assert (await client.post(url, content=body)).status_code == 403
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "wxcallback.access"]
        assert [(line["channel"], line["tenant"], line["status"]) for line in lines] == [
            ("open", TENANTS[0], 200), ("open", TENANTS[0], 403)]

    _run(test)


def test_the_component_ticket_and_authorization_notices_arrive_on_the_auth_path() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        side = Platform("component", "/open/auth", receive_id=COMPONENT)
        envelope = f"<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{{encrypt}}]]></Encrypt></xml>"
        notices = [component_notice("component_verify_ticket", "<ComponentVerifyTicket>ticket@@@1</ComponentVerifyTicket>"),
                   component_notice("authorized", f"<AuthorizerAppid>{TENANTS[0]}</AuthorizerAppid><AuthorizationCode>c"
                           "</AuthorizationCode><AuthorizationCodeExpiredTime>1</AuthorizationCodeExpiredTime>"),
                   component_notice("updateauthorized", f"<AuthorizerAppid>{TENANTS[0]}</AuthorizerAppid><AuthorizationCode>"
                           "c</AuthorizationCode><AuthorizationCodeExpiredTime>1</AuthorizationCodeExpiredTime>"),
                   component_notice("unauthorized", f"<AuthorizerAppid>{TENANTS[0]}</AuthorizerAppid>")]
        for plaintext in notices:
            url, body = sealed(side, plaintext, envelope)
            response = await client.post(url, content=body)
            assert (response.status_code, response.text) == (200, "success")
        ticket = await latest_ticket(store, "open", COMPONENT)
        assert ticket is not None and (ticket.kind, ticket.value) == ("component_verify_ticket", "ticket@@@1")

    _run(test)


def test_the_suite_data_callback_opens_with_the_corp_the_path_names() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        for corp in (CORP_A, CORP_B):
            side = Platform("wecom-suite", f"/suite/{corp}", receive_id=corp)
            url, body = side.callback(wecom_text_for("data", corp=corp))
            response = await client.post(url, content=body)
            assert response.status_code == 200, response.text
            assert f"<Content><![CDATA[{corp}: data]]></Content>" in side.open_reply(response.content)
        # A frame sealed for another corp than the path names: refused, whatever the signature says.
        side = Platform("wecom-suite", f"/suite/{CORP_A}", receive_id=PROVIDER)
        url, body = side.callback(wecom_text_for("misrouted"))
        assert (await client.post(url, content=body)).status_code == 403

    _run(test)


def test_the_suite_url_checks_open_with_the_providers_corpid() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        for path in (f"/suite/{CORP_A}", "/suite/instructions"):
            side = Platform("wecom-suite", path, receive_id=PROVIDER)
            response = await client.get(side.verify_url_request())
            assert (response.status_code, response.text) == (200, side.expected_echo)
        side = Platform("wecom-suite", f"/suite/{CORP_A}", receive_id=CORP_A)
        assert (await client.get(side.verify_url_request())).status_code == 403

    _run(test)


def test_the_suite_instructions_open_with_the_suite_id_and_keep_the_ticket() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        side = Platform("wecom-suite", "/suite/instructions", receive_id=SUITE)
        for plaintext in (suite_notice("suite_ticket", "<SuiteTicket><![CDATA[st-1]]></SuiteTicket>"),
                          suite_notice("create_auth", "<AuthCode><![CDATA[code]]></AuthCode>"),
                          suite_notice("cancel_auth", f"<AuthCorpId><![CDATA[{CORP_A}]]></AuthCorpId>")):
            url, body = side.callback(plaintext)
            response = await client.post(url, content=body)
            assert (response.status_code, response.text) == (200, "success")
        ticket = await latest_ticket(store, "suite", SUITE)
        assert ticket is not None and (ticket.kind, ticket.value) == ("suite_ticket", "st-1")
        wrong = Platform("wecom-suite", "/suite/instructions", receive_id=PROVIDER)
        url, body = wrong.callback(suite_notice("suite_ticket", "<SuiteTicket>x</SuiteTicket>"))
        assert (await client.post(url, content=body)).status_code == 403

    _run(test)


def test_two_wecom_apps_on_one_path_each_get_their_own_messages() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        for token, key, answer in ((TOKEN, KEY, "a: one"), (OTHER_TOKEN, OTHER_KEY, "b: two")):
            side = Platform("wecom-app", "/wecom", receive_id=PROVIDER, token=token, key=key)
            response = await client.get(side.verify_url_request())
            assert (response.status_code, response.text) == (200, side.expected_echo)
            url, body = side.callback(wecom_text_for(answer[3:]))
            response = await client.post(url, content=body)
            assert f"<Content><![CDATA[{answer}]]></Content>" in side.open_reply(response.content)
        stranger = Platform("wecom-app", "/wecom", receive_id=PROVIDER, token="NotConfigured1")
        url, body = stranger.callback(wecom_text_for("who"))
        assert (await client.post(url, content=body)).status_code == 403

    _run(test)


def test_apps_sharing_a_path_and_a_token_are_told_apart_by_agent_id() -> None:
    async def test(client: Client, store: MemoryStore) -> None:
        for key, agent, answer in ((KEY, 1000001, "a: first"), (OTHER_KEY, 1000002, "b: second")):
            side = Platform("wecom-app", "/agents", receive_id=PROVIDER, key=key)
            envelope = ("<xml><ToUserName><![CDATA[c]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                        f"<AgentID><![CDATA[{agent}]]></AgentID></xml>")
            url, body = sealed(side, wecom_text_for(answer[3:], agent_id=agent), envelope)
            response = await client.post(url, content=body)
            assert f"<Content><![CDATA[{answer}]]></Content>" in side.open_reply(response.content)
        side = Platform("wecom-app", "/agents", receive_id=PROVIDER)
        unknown = "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID>1000009</AgentID></xml>"
        url, body = sealed(side, wecom_text_for("nobody", agent_id=1000009), unknown)
        response = await client.post(url, content=body)
        assert (response.status_code, response.text) == (404, "refused: unknown_agent")
        # The envelope is not signed: one that names another app than the message is refused.
        lying = "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID>1000001</AgentID></xml>"
        url, body = sealed(side, wecom_text_for("lie", agent_id=1000002), lying)
        assert (await client.post(url, content=body)).status_code == 403
        none = "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        url, body = sealed(side, wecom_text_for("none"), none)
        assert (await client.post(url, content=body)).status_code == 400

    _run(test)


def test_an_app_with_an_agent_id_takes_callbacks_that_carry_none() -> None:
    # Contact changes (change_contact) carry no AgentID: a lone app's agent_id is no reason to refuse them.
    channel = {**CHANNELS["agent_1"], "path": "/contacts"}

    async def main() -> None:
        app = create_app(parse_config({"channels": {"contacts": channel}}), store=MemoryStore())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            side = Platform("wecom-app", "/contacts", receive_id=PROVIDER)
            event = (f"<xml><ToUserName><![CDATA[{PROVIDER}]]></ToUserName><FromUserName><![CDATA[sys]]>"
                     f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]>"
                     "</MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[create_user]]>"
                     "</ChangeType><UserID><![CDATA[lisi]]></UserID></xml>")
            envelope = f"<xml><ToUserName><![CDATA[{PROVIDER}]]></ToUserName><Encrypt><![CDATA[{{encrypt}}]]></Encrypt></xml>"
            url, body = sealed(side, event, envelope)
            assert (await client.post(url, content=body)).status_code == 200
            # One that names another app is still refused.
            url, body = sealed(side, wecom_text_for("other", agent_id=1000002), envelope)
            assert (await client.post(url, content=body)).status_code == 403
        await app.state.wxcallback.stop()

    asyncio.run(main())


def test_a_path_pasted_from_the_console_takes_its_placeholder() -> None:
    pasted = {**CHANNELS["open"], "path": "/open/$APPID$"}
    config = parse_config({"channels": {"open": pasted}})
    assert config.channels[0].path == "/open/{appid}"
    suite = {**CHANNELS["suite"], "path": "/suite/$CORPID$/data"}
    assert parse_config({"channels": {"suite": suite}}).channels[0].path == "/suite/{corpid}/data"


def _refusal(channels: dict[str, dict[str, Any]]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"channels": channels})
    return str(info.value)


def test_channels_sharing_a_path_with_one_token_are_refused_at_start() -> None:
    app = {"platform": "wecom-app", "path": "/wecom", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": PROVIDER}
    assert _refusal({"a": app, "b": app}) == (
        "channels.b.path: '/wecom' is already used by channels.a with the same Token: channels sharing a path "
        "need distinct tokens, or distinct agent_id on each (the signature is all that tells them apart)")
    message = _refusal({"a": {**app, "agent_id": 7}, "b": {**app, "agent_id": 7}})
    assert message.startswith("channels.b.path: '/wecom' is already used by channels.a with the same Token and "
                              "agent_id 7")
    oa = {"platform": "official-account", "path": "/wecom", "token": OTHER_TOKEN, "encoding_aes_key": KEY,
          "receive_id": TENANTS[0]}
    assert "only WeCom apps, or robots, of one kind may share a path" in _refusal({"a": app, "b": oa})


def test_templates_and_second_urls_are_checked_at_start() -> None:
    component = CHANNELS["open"]
    assert _refusal({"c": {**component, "path": "/open/{corpid}"}}).startswith("channels.c.path: {corpid} is for")
    assert _refusal({"c": {**component, "path": "/open/x{appid}"}}).startswith(
        "channels.c.path: '/open/x{appid}': the placeholder must be a whole path segment")
    assert _refusal({"c": {**component, "path": "/o/{appid}/{appid}"}}).startswith("channels.c.path:")
    assert _refusal({"c": {**CHANNELS["exact"], "path": "/oa/{appid}"}}).startswith(
        "channels.c.path: {appid} is for")
    without_auth = {k: v for k, v in component.items() if k != "auth_path"}
    assert _refusal({"c": without_auth}) == "channels.c.auth_path: required"
    suite = CHANNELS["suite"]
    assert _refusal({"c": {**suite, "path": "/suite"}}).startswith(
        "channels.c.path: a wecom-suite data callback path needs {corpid}")
    assert _refusal({"c": {**suite, "auth_path": "/x"}}) == (
        "channels.c.auth_path: only a component channel takes auth_path")
    assert _refusal({"c": {**suite, "instruction_path": "/i/{corpid}"}}).startswith(
        "channels.c.instruction_path: must be an exact path")
    assert _refusal({"c": component, "d": {**suite, "instruction_path": "/open/auth"}}).startswith(
        "channels.d.instruction_path: '/open/auth' is already used by channels.c")


def test_the_route_table_finds_exact_paths_among_many_and_templates_by_their_prefix() -> None:
    table = RouteTable([(f"/exact/{n}", n) for n in range(1000)] + [("/open/{appid}", -1), ("/s/{corpid}/data", -2)])
    assert table.first("/exact/999") == 999 and table.first("/exact/999/") == 999
    route = table.match(f"/open/{TENANTS[0]}/")
    assert route is not None and (route.candidates, route.tenant) == ((-1,), TENANTS[0])
    route = table.match(f"/s/{CORP_B}/data")
    assert route is not None and route.tenant == CORP_B
    assert table.match(f"/s/{CORP_B}") is None and table.match("/open/wx0/x") is None
    assert "is not an AppID" in table.miss("/open/nope") and "no channel" in table.miss("/elsewhere")


def test_a_malformed_second_url_is_refused_naming_the_key() -> None:
    assert _refusal({"c": {**CHANNELS["open"], "auth_path": "/auth/{x"}}) == (
        "channels.c.auth_path: must be an exact path (the console's URL has no placeholder here)")
    assert _refusal({"c": {**CHANNELS["open"], "path": "/open/{appid"}}).startswith("channels.c.path:")
