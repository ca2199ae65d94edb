"""The simulator plays third parties and shared paths against the server, in process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.platform_requests import KEY, TOKEN
from tests.server.test_tenants import CHANNELS, COMPONENT, CORP_B, OTHER_KEY, OTHER_TOKEN, PROVIDER, SUITE
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore
from wxcallback.server.tickets import latest_ticket
from wxcallback.simulator import Simulator
from wxcallback.simulator.errors import SimulatorError
from wxcallback.simulator.report import Report


def _play(*runs: tuple[str, dict[str, Any]]) -> tuple[list[Report], MemoryStore]:
    store = MemoryStore()

    async def main() -> list[Report]:
        app = create_app(parse_config({"channels": CHANNELS}), store=store)
        reports = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for url, settings in runs:
                async with Simulator(url, client=client, **settings) as simulator:
                    reports.append(await simulator.run_suite(retries=2, hostile=True))
        await app.state.wxcallback.stop()
        return reports

    return asyncio.run(main()), store


def _failures(report: Report) -> list[str]:
    return [f"{exchange.name}: {exchange.reason}" for exchange in report.exchanges if not exchange.passed]


def test_a_component_tenant_and_the_component_notices() -> None:
    (report,), store = _play(("http://test/open/$APPID$", {
        "platform": "component", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": COMPONENT,
        "tenant": "wx0123456789abcdef", "notice_url": "http://test/open/auth"}))
    assert report.passed, _failures(report)
    names = [exchange.name for exchange in report.exchanges]
    assert "notice component_verify_ticket" in names and "notice unauthorized" in names
    ticket = asyncio.run(latest_ticket(store, "open", COMPONENT))
    assert ticket is not None and ticket.value.startswith("ticket@@@")


def test_a_suite_corp_and_the_suite_instructions() -> None:
    (report,), store = _play(("http://test/suite/{corpid}", {
        "platform": "wecom-suite", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": PROVIDER,
        "tenant": CORP_B, "notice_url": "http://test/suite/instructions", "notice_id": SUITE}))
    assert report.passed, _failures(report)
    assert "notice suite_ticket" in [exchange.name for exchange in report.exchanges]
    assert asyncio.run(latest_ticket(store, "suite", SUITE)) is not None


def test_channels_sharing_a_path_each_pass_as_themselves() -> None:
    app = {"platform": "wecom-app", "receive_id": PROVIDER}
    reports, _ = _play(
        ("http://test/wecom", {**app, "token": TOKEN, "encoding_aes_key": KEY}),
        ("http://test/wecom", {**app, "token": OTHER_TOKEN, "encoding_aes_key": OTHER_KEY}),
        ("http://test/agents", {**app, "token": TOKEN, "encoding_aes_key": KEY, "agent_id": 1000001}),
        ("http://test/agents", {**app, "token": TOKEN, "encoding_aes_key": OTHER_KEY, "agent_id": 1000002}),
    )
    for report in reports:
        assert report.passed, _failures(report)


def test_a_templated_url_needs_its_tenant_and_a_suite_its_corp() -> None:
    settings: dict[str, Any] = {"token": TOKEN, "encoding_aes_key": KEY, "receive_id": PROVIDER}
    with pytest.raises(SimulatorError, match="give the tenant"):
        Simulator("http://test/open/$APPID$", platform="component", **settings)
    with pytest.raises(SimulatorError, match="sealed for the authorized corp"):
        Simulator("http://test/suite/ww0000000000000a01", platform="wecom-suite", **settings)
    with pytest.raises(SimulatorError, match="only a component or a wecom-suite has a notice URL"):
        Simulator("http://test/wecom", platform="wecom-app", notice_url="http://test/x", **settings)
