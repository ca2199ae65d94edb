"""Suite and component tickets are kept in the store as they arrive, readable by any process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.servers import write_config
from tests.platform_requests import KEY, TOKEN, Platform
from wxcallback.server.app import create_app
from wxcallback.server.config import load_config
from wxcallback.server.stores import open_store
from wxcallback.server.tickets import latest_ticket

SUITE, COMPONENT = "ww4asffe99e54c0fxxxx", "wx_component_1"


def _suite_ticket(value: str) -> str:
    return (f"<xml><SuiteId><![CDATA[{SUITE}]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>"
            f"<TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[{value}]]></SuiteTicket></xml>")


def _component_ticket(value: str) -> str:
    return (f"<xml><AppId>{COMPONENT}</AppId><CreateTime>1413192605</CreateTime>"
            f"<InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>{value}</ComponentVerifyTicket></xml>")


def test_the_latest_tickets_are_kept_and_listed(tmp_path: Path) -> None:
    channels = {
        "suite": {"path": "/suite", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                  "receive_id": SUITE},
        "component": {"path": "/component", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
                      "receive_id": COMPONENT},
    }
    config_path = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    suite = Platform("wecom-app", "/suite", receive_id=SUITE)
    component = Platform("official-account", "/component", receive_id=COMPONENT)

    async def main() -> None:
        app = create_app(load_config(config_path))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for value in ("T1", "T2"):
                url, body = suite.callback(_suite_ticket(value))
                response = await client.post(url, content=body)
                assert (response.status_code, response.text) == (200, "success")
            url, body = component.callback(_component_ticket("ticket@@@abc"))
            assert (await client.post(url, content=body)).text == "success"
        await app.state.wxcallback.stop()
        store = open_store(f"sqlite:///{tmp_path}/state.db")
        try:
            kept = await latest_ticket(store, "suite")
            assert kept is not None and (kept.kind, kept.owner, kept.value) == ("suite_ticket", SUITE, "T2")
            assert kept.expires_at - kept.received_at == 30 * 60
            by_owner = await latest_ticket(store, "component", COMPONENT)
            assert by_owner is not None and by_owner.value == "ticket@@@abc"
        finally:
            await store.close()

    asyncio.run(main())
    done = subprocess.run([sys.executable, "-m", "wxcallback", "tickets", "--config", str(config_path), "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    listed = {row["channel"]: row for row in json.loads(done.stdout)["tickets"]}
    assert listed["suite"]["value"] == "T2" and listed["component"]["kind"] == "component_verify_ticket"
