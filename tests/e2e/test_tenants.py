"""Third parties through `wxcallback serve`: tenants on templated paths, tickets, shared paths."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.servers import ROOT, Backend, serve, write_config
from tests.platform_requests import KEY, TOKEN, Platform, oa_text
from tests.server.test_tenants import (
    CHANNELS,
    COMPONENT,
    CORP_A,
    CORP_B,
    OTHER_KEY,
    OTHER_TOKEN,
    PROVIDER,
    SUITE,
    component_notice,
    sealed,
    suite_notice,
    wecom_text_for,
)

_AUTH_ENVELOPE = f"<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{{encrypt}}]]></Encrypt></xml>"


def _wait(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_tenants_tickets_and_shared_paths_through_serve(tmp_path: Path) -> None:
    backend = Backend()
    backend.start()
    channels = {name: CHANNELS[name] for name in ("open", "suite", "app_a", "app_b")}
    channels["relay"] = {"platform": "component", "path": "/relay/{appid}", "auth_path": "/relay/auth",
                         "token": TOKEN, "encoding_aes_key": KEY, "receive_id": COMPONENT, "forward": backend.url}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    try:
        with serve(config, workers=2) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            # Two tenants, then a third no configuration names: each gets its own replies.
            for tenant in ("wxba5fad812f8e6fb9", "wx0123456789abcdef", "wx2222222222222222"):
                side = Platform("component", f"/open/{tenant}", receive_id=COMPONENT)
                url, body = side.callback(oa_text("hi"))
                response = client.post(url, content=body)
                assert response.status_code == 200, server.output()
                assert f"<Content><![CDATA[{tenant}: hi]]></Content>" in side.open_reply(response.content)
            response = client.post("/open/wx-not-an-appid?timestamp=1&nonce=1&msg_signature=x", content=b"<xml/>")
            assert response.status_code == 404 and b"wx-not-an-appid" not in response.content

            # The simulator plays a new tenant and the component's notices from the command line.
            played = subprocess.run(
                [sys.executable, "-m", "wxcallback", "simulate", f"{server.url}/open/$APPID$", "--platform",
                 "component", "--token", TOKEN, "--key", KEY, "--receive-id", COMPONENT,
                 "--tenant", "wx3333333333333333", "--notice-url", f"{server.url}/open/auth", "--json"],
                cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert played.returncode == 0, played.stdout + played.stderr
            assert "notice component_verify_ticket" in played.stdout

            # The component ticket on the auth URL, kept for every process.
            auth = Platform("component", "/open/auth", receive_id=COMPONENT)
            ticket = component_notice("component_verify_ticket", "<ComponentVerifyTicket>cvt@@@7</ComponentVerifyTicket>")
            url, body = sealed(auth, ticket, _AUTH_ENVELOPE)
            assert client.post(url, content=body).text == "success"

            # The suite: data callbacks per corp, instructions with the SuiteID, URL checks with the provider's id.
            for corp in (CORP_A, CORP_B):
                side = Platform("wecom-suite", f"/suite/{corp}", receive_id=corp)
                url, body = side.callback(wecom_text_for("d", corp=corp))
                assert f"{corp}: d" in side.open_reply(client.post(url, content=body).content)
            instructions = Platform("wecom-suite", "/suite/instructions", receive_id=SUITE)
            url, body = instructions.callback(suite_notice("suite_ticket", "<SuiteTicket>st@9</SuiteTicket>"))
            assert client.post(url, content=body).text == "success"
            check = Platform("wecom-suite", "/suite/instructions", receive_id=PROVIDER)
            assert client.get(check.verify_url_request()).text == check.expected_echo

            # Two WeCom apps on one path, told apart by their Tokens.
            for token, key, answer in ((TOKEN, KEY, "a: x"), (OTHER_TOKEN, OTHER_KEY, "b: y")):
                side = Platform("wecom-app", "/wecom", receive_id=PROVIDER, token=token, key=key)
                url, body = side.callback(wecom_text_for(answer[3:]))
                reply = side.open_reply(client.post(url, content=body).content)
                assert f"<Content><![CDATA[{answer}]]></Content>" in reply

            # A forwarding component: its ticket and its tenants' messages reach the backend.
            relay = Platform("component", "/relay/auth", receive_id=COMPONENT)
            relayed = component_notice("component_verify_ticket", "<ComponentVerifyTicket>relayed</ComponentVerifyTicket>")
            url, body = sealed(relay, relayed, _AUTH_ENVELOPE)
            assert client.post(url, content=body).text == "success"
            side = Platform("component", "/relay/wxba5fad812f8e6fb9", receive_id=COMPONENT)
            url, body = side.callback(oa_text("to the backend"))
            assert client.post(url, content=body).status_code == 200
            _wait(lambda: len(backend.deliveries) >= 2)
            payloads = {p["message"]["msg_type"]: p for _, p in backend.deliveries}
            assert payloads["instruction"]["message"]["component_verify_ticket"] == "relayed"
            assert payloads["text"]["tenant"] == "wxba5fad812f8e6fb9"
            assert all(key.startswith("relay:") for key, _ in backend.deliveries)
    finally:
        backend.stop()
    done = subprocess.run([sys.executable, "-m", "wxcallback", "tickets", "--config", str(config), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    listed = {row["channel"]: row for row in json.loads(done.stdout)["tickets"]}
    assert (listed["open"]["kind"], listed["open"]["owner"], listed["open"]["value"]) == (
        "component_verify_ticket", COMPONENT, "cvt@@@7")
    assert (listed["suite"]["kind"], listed["suite"]["value"]) == ("suite_ticket", "st@9")
    assert listed["relay"]["value"] == "relayed"


def test_serve_refuses_channels_sharing_a_path_and_a_token(tmp_path: Path) -> None:
    app = {"platform": "wecom-app", "path": "/wecom", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": PROVIDER}
    config = write_config(tmp_path / "wx.toml", "memory://", {"a": app, "b": app})
    done = subprocess.run([sys.executable, "-m", "wxcallback", "serve", "--config", str(config), "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert ("channels.b.path: '/wecom' is already used by channels.a with the same Token: channels sharing a path "
            "need distinct tokens") in done.stderr
    assert "Traceback" not in done.stderr
