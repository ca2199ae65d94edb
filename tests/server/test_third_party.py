"""The third parties' token chains in process, against the local fake API: a component and its
authorizers, a suite and its corps; the exchange of a notice's code, refreshes, revocations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.platform_requests import KEY, TOKEN, Platform, oa_text
from tests.server.test_late_replies import post, until
from tests.server.test_tenants import (
    COMPONENT,
    CORP_A,
    PROVIDER,
    SUITE,
    component_notice,
    sealed,
    suite_notice,
    wecom_text_for,
)
from wxcallback.messages import TextReply
from wxcallback.server.access_token import Fetched, TokenError
from wxcallback.server.config import ConfigError, parse_config
from wxcallback.server.runtime import CallbackServer
from wxcallback.server.stores import MemoryStore, Store
from wxcallback.server.third_party import ComponentCredential, SuiteCredential, TenantCredential, ThirdParties
from wxcallback.simulator.platform_api import FakePlatformAPI

COMPONENT_SECRET = "component-secret-never-logged"
SUITE_SECRET = "suite-secret-never-logged"
TENANT_A, TENANT_B = "wxba5fad812f8e6fb9", "wx0123456789abcdef"
AUTH_ENVELOPE = f"<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{{encrypt}}]]></Encrypt></xml>"
BASE = {"token": TOKEN, "encoding_aes_key": KEY, "deadline": 0.1, "handler": "tests.server.handlers:late_llm"}


def third_party_channels(api_base: str) -> dict[str, Any]:
    return {
        "open": {"platform": "component", "path": "/open/{appid}", "auth_path": "/open/auth", "receive_id": COMPONENT,
                 "app_secret": COMPONENT_SECRET, "api_base": api_base, **BASE},
        "suite": {"platform": "wecom-suite", "path": "/suite/{corpid}", "instruction_path": "/suite/instructions",
                  "receive_id": PROVIDER, "suite_id": SUITE, "suite_secret": SUITE_SECRET, "api_base": api_base,
                  **BASE},
    }


Scenario = Callable[[CallbackServer, FakePlatformAPI, Store], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        fake = FakePlatformAPI(components={COMPONENT: COMPONENT_SECRET}, suites={SUITE: SUITE_SECRET})
        async with fake.running():
            store = MemoryStore()
            server = CallbackServer(parse_config({"channels": third_party_channels(fake.api_base)}), store)
            try:
                await server.start()
                await scenario(server, fake, store)
            finally:
                await server.stop()
                await store.close()

    asyncio.run(main())


async def until_kept(third_parties: ThirdParties, channel: str, tenant: str, timeout: float = 5.0) -> None:
    """Until ``tenant``'s grant (its permanent code and AgentID) is in the store."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await third_parties.agent_id(channel, tenant) is None:
        assert loop.time() < deadline, "the grant was not kept"
        await asyncio.sleep(0.02)


async def notice(server: CallbackServer, info_type: str, extra: str) -> bytes:
    url, body = sealed(Platform("component", "/open/auth", receive_id=COMPONENT), component_notice(info_type, extra),
                       AUTH_ENVELOPE)
    path, _, query = url.partition("?")
    handled = await server.respond("POST", path, query.encode(), body)
    assert handled.response.status == 200
    return handled.response.body


async def instruction(server: CallbackServer, info_type: str, extra: str) -> bytes:
    status, body = await post(server, Platform("wecom-suite", "/suite/instructions", receive_id=SUITE),
                              suite_notice(info_type, extra))
    assert status == 200
    return body


def authorized(tenant: str, code: str, info_type: str = "authorized") -> tuple[str, str]:
    return info_type, (f"<AuthorizerAppid>{tenant}</AuthorizerAppid><AuthorizationCode>{code}</AuthorizationCode>"
                       "<AuthorizationCodeExpiredTime>0</AuthorizationCodeExpiredTime>")


def test_a_component_tenants_late_reply_goes_out_with_its_own_authorizer_token() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        ticket = fake.verify_ticket(COMPONENT)
        assert await notice(server, "component_verify_ticket",
                            f"<ComponentVerifyTicket>{ticket}</ComponentVerifyTicket>") == b"success"
        assert await notice(server, *authorized(TENANT_A, fake.authorize(COMPONENT, TENANT_A))) == b"success"
        await until(lambda: fake.calls["query_auth"] == 1)
        status, body = await post(server, Platform("component", f"/open/{TENANT_A}", receive_id=COMPONENT),
                                  oa_text("weather?", user="oALICE"))
        assert (status, body) == (200, b"success")
        await until(lambda: len(fake.received) == 1)
        sent = fake.received[0]
        assert (sent.api, sent.account) == ("custom/send", TENANT_A)
        assert sent.body == {"touser": "oALICE", "msgtype": "text", "text": {"content": "thought about: weather?"}}
        # The exchange's answer carried a token: nothing was refreshed yet.
        assert (fake.calls["component_token"], fake.calls["authorizer_token"]) == (1, 0)
        await drained(store)  # the send and the exchange acknowledged

    run(scenario)


async def drained(store: Store) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while await store.depth():
        assert loop.time() < deadline, "the outbox kept something"
        await asyncio.sleep(0.02)


def test_a_refused_authorizer_token_is_refreshed_once_and_a_new_refresh_token_is_kept() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        ticket = fake.verify_ticket(COMPONENT)
        await notice(server, "component_verify_ticket", f"<ComponentVerifyTicket>{ticket}</ComponentVerifyTicket>")
        await notice(server, *authorized(TENANT_A, fake.authorize(COMPONENT, TENANT_A)))
        await until(lambda: fake.calls["query_auth"] == 1)
        fake.rotate_refresh_tokens = True
        side = Platform("component", f"/open/{TENANT_A}", receive_id=COMPONENT)
        for round_ in (1, 2):
            # Every token replaced (the component's too): the send refreshes the tenant's token,
            # whose refresh refreshes the component's; the second round needs the rotated refresh token.
            fake.invalidate_tokens()
            await post(server, side, oa_text(f"round {round_}", user="oBOB"))
            await until(lambda: len(fake.received) == round_)
            assert fake.received[-1].account == TENANT_A
        # Per round: the authorizer token refused once (old component token), then given; one component token.
        assert (fake.calls["authorizer_token"], fake.calls["component_token"]) == (4, 3)
        assert await server.third_party_token("open", TENANT_A) == await server.third_party_token("open", TENANT_A)

    run(scenario)


def test_a_retried_authorization_notice_is_exchanged_once() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        ticket = fake.verify_ticket(COMPONENT)
        await notice(server, "component_verify_ticket", f"<ComponentVerifyTicket>{ticket}</ComponentVerifyTicket>")
        code = fake.authorize(COMPONENT, TENANT_B)
        url, body = sealed(Platform("component", "/open/auth", receive_id=COMPONENT),
                           component_notice(*authorized(TENANT_B, code)), AUTH_ENVELOPE)
        path, _, query = url.partition("?")
        assert (await server.respond("POST", path, query.encode(), body)).response.body == b"success"
        for _ in range(2):  # the platform retries (answered 503 while the handler still runs, or from the cache)
            assert (await server.respond("POST", path, query.encode(), body)).response.status in (200, 503)
        await until(lambda: fake.calls["query_auth"] >= 1)
        sender = await server.reply_sender()
        await sender.third_parties.drain(5.0)
        assert fake.calls["query_auth"] == 1
        await drained(store)
        assert await store.dead_count() == 0
        assert await server.third_party_token("open", TENANT_B)

    run(scenario)


def test_no_ticket_yet_is_a_token_error_that_says_so() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        await notice(server, *authorized(TENANT_A, fake.authorize(COMPONENT, TENANT_A)))
        with pytest.raises(TokenError, match="no component_verify_ticket has arrived yet") as caught:
            await server.third_party_token("open", TENANT_A)
        assert not caught.value.permanent
        with pytest.raises(TokenError, match="no suite_ticket has arrived yet"):
            await server.third_party_token("suite", CORP_A)
        assert fake.calls["component_token"] == 0
        assert await store.depth() == 1  # the authorization waits in the outbox

    run(scenario)


def test_unauthorized_makes_the_tenants_sends_dead_letters_saying_so() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        ticket = fake.verify_ticket(COMPONENT)
        await notice(server, "component_verify_ticket", f"<ComponentVerifyTicket>{ticket}</ComponentVerifyTicket>")
        await notice(server, *authorized(TENANT_A, fake.authorize(COMPONENT, TENANT_A)))
        await until(lambda: fake.calls["query_auth"] == 1)
        fake.revoke(COMPONENT, TENANT_A)
        await notice(server, "unauthorized", f"<AuthorizerAppid>{TENANT_A}</AuthorizerAppid>")
        await post(server, Platform("component", f"/open/{TENANT_A}", receive_id=COMPONENT),
                   oa_text("still there?", user="oCAROL"))
        dead = await _dead_letters(store)
        assert fake.received == []
        assert len(dead) == 1 and f"{TENANT_A} revoked its authorization" in dead[0]
        with pytest.raises(TokenError, match="revoked") as caught:
            await server.third_party_token("open", TENANT_A)
        assert caught.value.permanent

    run(scenario)


async def _dead_letters(store: Store, timeout: float = 5.0) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (letters := await store.list_dead()):
        assert loop.time() < deadline, "no dead letter"
        await asyncio.sleep(0.02)
    return [letter.reason for letter in letters]


def test_a_suite_corps_late_reply_goes_out_with_its_corp_token_and_agentid(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    codes: list[str] = []

    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        ticket = fake.suite_ticket(SUITE)
        assert await instruction(server, "suite_ticket", f"<SuiteTicket>{ticket}</SuiteTicket>") == b"success"
        code = fake.install(SUITE, CORP_A, agent_id=1000017)
        codes.append(code)
        assert await instruction(server, "create_auth", f"<AuthCode>{code}</AuthCode>") == b"success"
        await until(lambda: fake.calls["permanent_code"] == 1)
        side = Platform("wecom-suite", f"/suite/{CORP_A}", receive_id=CORP_A)
        await post(server, side, wecom_text_for("report?", corp=CORP_A))
        await until(lambda: len(fake.received) == 1)
        sent = fake.received[0]
        assert (sent.api, sent.account) == ("message/send", CORP_A)
        assert sent.body == {"touser": "zhangsan", "agentid": 1000017, "msgtype": "text",
                             "text": {"content": "thought about: report?"}}
        fake.invalidate_tokens()  # the corp token is refreshed from the kept permanent code
        await post(server, side, wecom_text_for("again?", corp=CORP_A))
        await until(lambda: len(fake.received) == 2)
        # get_corp_token refused once (the suite token was replaced too), then given; one new suite token.
        assert fake.received[1].account == CORP_A
        assert (fake.calls["corp_token"], fake.calls["suite_token"]) == (2, 2)

        fake.cancel(SUITE, CORP_A)
        await instruction(server, "cancel_auth", f"<AuthCorpId>{CORP_A}</AuthCorpId>")
        await post(server, side, wecom_text_for("gone?", corp=CORP_A))
        dead = await _dead_letters(store)
        assert len(dead) == 1 and f"{CORP_A} revoked its authorization" in dead[0]
        assert len(fake.received) == 2

    run(scenario)
    written = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("wxcallback"))
    assert SUITE_SECRET not in written and codes[0] not in written and "token-" not in written


def test_credentials_show_no_secret() -> None:
    component = ComponentCredential("http://api", COMPONENT, COMPONENT_SECRET, "open")
    suite = SuiteCredential("http://api", SUITE, SUITE_SECRET, "suite")
    for value in (component, suite, TenantCredential(component, TENANT_A)):
        assert COMPONENT_SECRET not in repr(value) and SUITE_SECRET not in repr(value)
        assert COMPONENT_SECRET not in value.cache_name
    config = parse_config({"channels": third_party_channels("http://api")})
    assert SUITE_SECRET not in repr(config.channels[1]) and SUITE_SECRET not in repr(config)
    assert "token-7" not in repr(Fetched("token-7", 7200.0))


@pytest.mark.parametrize(("channel", "key", "words"), [
    ("open", "suite_secret", "component channels have no suite_secret"),
    ("suite", "app_secret", "wecom-suite channels have no app_secret"),
])
def test_each_third_party_takes_its_own_secret(channel: str, key: str, words: str) -> None:
    channels = third_party_channels("http://api")
    channels[channel][key] = "x"
    with pytest.raises(ConfigError, match=words):
        parse_config({"channels": channels})


def test_a_third_party_with_its_secret_sends_late_replies_by_default_and_without_is_refused_send() -> None:
    config = parse_config({"channels": third_party_channels("http://api")})
    assert [c.late_reply for c in config.channels] == ["send", "send"]
    channels = third_party_channels("http://api")
    del channels["suite"]["suite_secret"]
    channels["suite"]["late_reply"] = "send"
    with pytest.raises(ConfigError, match=r"channels.suite.late_reply: \"send\" is refused: sending needs "
                                          r"channels.suite.suite_secret"):
        parse_config({"channels": channels})


def test_a_proactive_send_goes_out_as_the_named_tenant_and_needs_one() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        ticket = fake.suite_ticket(SUITE)
        await instruction(server, "suite_ticket", f"<SuiteTicket>{ticket}</SuiteTicket>")
        await instruction(server, "create_auth", f"<AuthCode>{fake.install(SUITE, CORP_A, agent_id=5)}</AuthCode>")
        await until(lambda: fake.calls["permanent_code"] == 1)
        sender = await server.reply_sender()
        # The API has answered; the grant is kept just after (a send before it is only queued).
        await until_kept(sender.third_parties, "suite", CORP_A)
        result = await sender.send("suite", "lisi", TextReply("your report"), tenant=CORP_A)
        assert result.sent, result.detail
        assert (fake.received[0].account, fake.received[0].body["agentid"]) == (CORP_A, 5)
        with pytest.raises(ConfigError, match="name the AppID or CorpID"):
            await sender.send("suite", "lisi", TextReply("to whom?"))

    run(scenario)


def test_an_authorization_revoked_before_its_code_was_exchanged_stays_revoked() -> None:
    async def scenario(server: CallbackServer, fake: FakePlatformAPI, store: Store) -> None:
        # No ticket yet: the code waits; the account revokes (and the platform retries the first
        # notice after it); then the ticket comes and the code is tried.
        url, body = sealed(Platform("component", "/open/auth", receive_id=COMPONENT),
                           component_notice(*authorized(TENANT_A, fake.authorize(COMPONENT, TENANT_A))), AUTH_ENVELOPE)
        path, _, query = url.partition("?")
        assert (await server.respond("POST", path, query.encode(), body)).response.body == b"success"
        await notice(server, "unauthorized", f"<AuthorizerAppid>{TENANT_A}</AuthorizerAppid>")
        # The retry is kept before dispatch (answered 503 while the first one's handler runs, else from the cache).
        assert (await server.respond("POST", path, query.encode(), body)).response.status in (200, 503)
        ticket = fake.verify_ticket(COMPONENT)
        await notice(server, "component_verify_ticket", f"<ComponentVerifyTicket>{ticket}</ComponentVerifyTicket>")
        dead = await _dead_letters(store, timeout=30.0)
        assert dead == [f"{TENANT_A} revoked this authorization before its code could be exchanged"]
        with pytest.raises(TokenError, match="revoked its authorization") as caught:
            await server.third_party_token("open", TENANT_A)
        assert caught.value.permanent

    run(scenario)
