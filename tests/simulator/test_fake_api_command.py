"""`wxcallback fake-api` serves the fake platform API: tokens, sends, and its switches over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.conftest import free_port
from tests.e2e.servers import ROOT


def test_fake_api_answers_tokens_and_sends_and_plays_an_outage() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "wxcallback", "fake-api", "--port", str(port),
                                "--app", "wxAPP:appsecret", "--corp", "wwCORP:corpsecret", "--token-ttl", "60",
                                "--component", "wxCOMPONENT:componentsecret", "--suite", "wwSUITE:suitesecret"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/_fake/stats", timeout=0.5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None, "fake-api did not start"
                time.sleep(0.1)
        token = httpx.get(f"{base}/cgi-bin/token", params={"grant_type": "client_credential", "appid": "wxAPP",
                                                           "secret": "appsecret"}).json()
        assert token["expires_in"] == 60
        wrong = httpx.get(f"{base}/cgi-bin/gettoken", params={"corpid": "wwCORP", "corpsecret": "nope"}).json()
        assert wrong["errcode"] == 40001
        body = {"touser": "o1", "msgtype": "text", "text": {"content": "hi"}}
        sent = httpx.post(f"{base}/cgi-bin/message/custom/send", params={"access_token": token["access_token"]},
                          json=body).json()
        assert sent == {"errcode": 0, "errmsg": "ok"}
        assert httpx.post(f"{base}/cgi-bin/message/custom/send", params={"access_token": "forged"},
                          json=body).json()["errcode"] == 40001
        assert httpx.get(f"{base}/_fake/received").json()[0]["body"] == body

        # A component's chain, played over HTTP: the ticket to push, a code, the tokens, a send as the tenant.
        ticket = httpx.post(f"{base}/_fake/verify_ticket", params={"component": "wxCOMPONENT"}).json()
        component = httpx.post(f"{base}/cgi-bin/component/api_component_token", json={
            "component_appid": "wxCOMPONENT", "component_appsecret": "componentsecret",
            "component_verify_ticket": ticket["component_verify_ticket"]}).json()
        code = httpx.post(f"{base}/_fake/authorize", params={"component": "wxCOMPONENT", "authorizer": "wxTENANT"})
        info = httpx.post(f"{base}/cgi-bin/component/api_query_auth",
                          params={"component_access_token": component["component_access_token"]},
                          json={"component_appid": "wxCOMPONENT",
                                "authorization_code": code.json()["authorization_code"]}).json()["authorization_info"]
        assert info["authorizer_appid"] == "wxTENANT" and info["authorizer_refresh_token"]
        as_tenant = {"access_token": info["authorizer_access_token"]}
        assert httpx.post(f"{base}/cgi-bin/message/custom/send", params=as_tenant, json=body).json()["errcode"] == 0
        assert httpx.get(f"{base}/_fake/received").json()[-1]["account"] == "wxTENANT"
        suite_ticket = httpx.post(f"{base}/_fake/suite_ticket", params={"suite": "wwSUITE"}).json()["suite_ticket"]
        refused = httpx.post(f"{base}/cgi-bin/service/get_suite_token", json={
            "suite_id": "wwSUITE", "suite_secret": "suitesecret", "suite_ticket": suite_ticket + "x"}).json()
        assert refused["errcode"] == 40085
        assert httpx.get(f"{base}/_fake/stats").json()["calls"] == {"component_token": 1, "query_auth": 1,
                                                                   "suite_token": 1}
        httpx.post(f"{base}/_fake/down", params={"seconds": "30"})
        assert httpx.get(f"{base}/cgi-bin/token", params={"appid": "wxAPP"}).status_code == 503
    finally:
        process.terminate()
        process.wait(timeout=15)
