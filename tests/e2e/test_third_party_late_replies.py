"""Third parties' late replies through `wxcallback serve`, against the local fake of the platform API.

A component receives its ticket and an account's authorization, a suite its suite_ticket and a
corp's installation; a handler answers one of their tenants' users after the deadline, and the
reply goes out with that tenant's own token (the chain of server/third_party.py). Without a
ticket yet the send waits in the outbox; two processes refresh a token once; a revoked
authorization makes the tenant's sends dead letters.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.servers import ROOT, serve, until, write_config
from tests.platform_requests import KEY, TOKEN, Platform, oa_text
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
from wxcallback.simulator.platform_api import FakePlatformAPI

COMPONENT_SECRET = "component-secret-e2e-0123456789"
SUITE_SECRET = "suite-secret-e2e-0123456789"
TENANT_A = "wxba5fad812f8e6fb9"
AUTH_ENVELOPE = f"<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{{encrypt}}]]></Encrypt></xml>"
BASE = {"token": TOKEN, "encoding_aes_key": KEY, "deadline": 0.3, "handler": "tests.e2e.e2e_handlers:late_llm"}


@pytest.fixture
def fake() -> Iterator[FakePlatformAPI]:
    api = FakePlatformAPI(components={COMPONENT: COMPONENT_SECRET}, suites={SUITE: SUITE_SECRET})
    with api.in_thread():
        yield api


def _channels(fake: FakePlatformAPI) -> dict[str, dict[str, Any]]:
    return {
        "open": {"platform": "component", "path": "/open/{appid}", "auth_path": "/open/auth", "receive_id": COMPONENT,
                 "app_secret": COMPONENT_SECRET, "api_base": fake.api_base, **BASE},
        "suite": {"platform": "wecom-suite", "path": "/suite/{corpid}", "instruction_path": "/suite/instructions",
                  "receive_id": PROVIDER, "suite_id": SUITE, "suite_secret": SUITE_SECRET,
                  "api_base": fake.api_base, **BASE},
    }


def _notice(client: httpx.Client, info_type: str, extra: str) -> None:
    url, body = sealed(Platform("component", "/open/auth", receive_id=COMPONENT), component_notice(info_type, extra),
                       AUTH_ENVELOPE)
    response = client.post(url, content=body)
    assert (response.status_code, response.text) == (200, "success")


def _instruction(client: httpx.Client, info_type: str, extra: str) -> None:
    side = Platform("wecom-suite", "/suite/instructions", receive_id=SUITE)
    url, body = side.callback(suite_notice(info_type, extra))
    response = client.post(url, content=body)
    assert (response.status_code, response.text) == (200, "success")


def _ticket(client: httpx.Client, fake: FakePlatformAPI) -> None:
    _notice(client, "component_verify_ticket",
            f"<ComponentVerifyTicket>{fake.verify_ticket(COMPONENT)}</ComponentVerifyTicket>")


def _authorized(client: httpx.Client, fake: FakePlatformAPI, tenant: str) -> str:
    code = fake.authorize(COMPONENT, tenant)
    _notice(client, "authorized", f"<AuthorizerAppid>{tenant}</AuthorizerAppid><AuthorizationCode>{code}"
                                  "</AuthorizationCode><AuthorizationCodeExpiredTime>0</AuthorizationCodeExpiredTime>")
    return code


def _message(client: httpx.Client, tenant: str, content: str, user: str) -> None:
    url, body = Platform("component", f"/open/{tenant}", receive_id=COMPONENT).callback(oa_text(content, user=user))
    response = client.post(url, content=body)
    assert (response.status_code, response.content) == (200, b"success")


def test_a_component_tenant_and_a_suite_corp_get_late_replies_with_their_own_tokens(
        tmp_path: Path, calls_file: Path, fake: FakePlatformAPI) -> None:
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", _channels(fake))
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        _ticket(client, fake)
        code = _authorized(client, fake, TENANT_A)
        _message(client, TENANT_A, "weather?", "oALICE")
        until(lambda: len(fake.received) == 1, 20, "the component tenant's late reply")
        sent = fake.received[0]
        assert (sent.api, sent.account) == ("custom/send", TENANT_A)
        assert sent.body == {"touser": "oALICE", "msgtype": "text", "text": {"content": "after thinking: weather?"}}
        refresh_token = fake.grant(COMPONENT, TENANT_A)

        _instruction(client, "suite_ticket", f"<SuiteTicket>{fake.suite_ticket(SUITE)}</SuiteTicket>")
        auth_code = fake.install(SUITE, CORP_A, agent_id=1000017)
        _instruction(client, "create_auth", f"<AuthCode>{auth_code}</AuthCode>")
        side = Platform("wecom-suite", f"/suite/{CORP_A}", receive_id=CORP_A)
        url, body = side.callback(wecom_text_for("report?", corp=CORP_A))
        assert client.post(url, content=body).status_code == 200
        until(lambda: len(fake.received) == 2, 20, "the suite corp's late reply")
        sent = fake.received[1]
        assert (sent.api, sent.account) == ("message/send", CORP_A)
        assert sent.body == {"touser": "zhangsan", "agentid": 1000017, "msgtype": "text",
                             "text": {"content": "after thinking: report?"}}
        permanent_code = fake.grant(SUITE, CORP_A)

        # Both authorizations revoked: what is sent to them now is a dead letter saying why.
        fake.revoke(COMPONENT, TENANT_A)
        _notice(client, "unauthorized", f"<AuthorizerAppid>{TENANT_A}</AuthorizerAppid>")
        fake.cancel(SUITE, CORP_A)
        _instruction(client, "cancel_auth", f"<AuthCorpId>{CORP_A}</AuthCorpId>")
        _message(client, TENANT_A, "still there?", "oALICE")
        url, body = side.callback(wecom_text_for("gone?", corp=CORP_A))
        assert client.post(url, content=body).status_code == 200
        until(lambda: server.output().count('"late_reply_dead"') == 2, 20, "two dead letters")
    assert len(fake.received) == 2
    assert (fake.calls["query_auth"], fake.calls["permanent_code"]) == (1, 1)
    listed = subprocess.run([sys.executable, "-m", "wxcallback", "outbox", "list", "--config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "0 waiting, 2 dead letter(s)" in listed.stdout
    assert f"{TENANT_A} revoked its authorization" in listed.stdout
    assert f"{CORP_A} revoked its authorization" in listed.stdout
    log = server.output() + listed.stdout
    for secret in (COMPONENT_SECRET, SUITE_SECRET, code, auth_code, refresh_token, permanent_code, "token-"):
        assert secret and secret not in log


def test_without_a_ticket_the_send_waits_in_the_outbox_and_goes_out_once_it_arrives(
        tmp_path: Path, calls_file: Path, fake: FakePlatformAPI) -> None:
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", {"open": _channels(fake)["open"]})
    with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        _authorized(client, fake, TENANT_A)  # answered success; its code waits for a component token
        _message(client, TENANT_A, "patience", "oBOB")
        until(lambda: "no component_verify_ticket has arrived yet" in server.output(), 20, "the failed first try")
        assert fake.received == [] and fake.calls["component_token"] == 0
        _ticket(client, fake)
        until(lambda: len(fake.received) == 1, 90, "the reply once the ticket came")
        assert fake.received[0].account == TENANT_A
        assert fake.received[0].body["text"] == {"content": "after thinking: patience"}
    assert fake.calls["query_auth"] == 1


def test_two_processes_on_one_redis_refresh_a_tenants_token_once(
        tmp_path: Path, calls_file: Path, fake: FakePlatformAPI, redis_url: str, redis_prefix: str) -> None:
    config = write_config(tmp_path / "wx.toml", f"{redis_url}?prefix={redis_prefix}", {"open": _channels(fake)["open"]})
    with serve(config) as first, serve(config) as second:
        with httpx.Client(base_url=first.url, timeout=10) as client:
            _ticket(client, fake)
            _authorized(client, fake, TENANT_A)
            until(lambda: fake.calls["query_auth"] == 1, 20, "the exchange")
        # Every token replaced elsewhere, and a slow token endpoint: both processes need new ones at once.
        fake.invalidate_tokens()
        fake.token_delay = 0.5

        def one(url: str, user: str) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                _message(client, TENANT_A, "at once", user)

        threads = [threading.Thread(target=one, args=(server.url, user))
                   for server, user in ((first, "oONE"), (second, "oTWO"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        until(lambda: len(fake.received) == 2, 30, "both late replies")
    assert {r.body["touser"] for r in fake.received} == {"oONE", "oTWO"}
    assert {r.account for r in fake.received} == {TENANT_A}
    # One refresh for the cluster: the authorizer token asked twice (refused once with the old
    # component token), one new component token after the first.
    assert (fake.calls["authorizer_token"], fake.calls["component_token"]) == (2, 2)
