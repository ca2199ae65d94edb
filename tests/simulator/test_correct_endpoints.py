"""A correct endpoint passes every check, on every platform and mode."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import SimulatorFactory

CHANNELS = [
    ("official-account", "plaintext", "xml"),
    ("official-account", "compatible", "xml"),
    ("official-account", "safe", "xml"),
    ("official-account", "safe", "json"),
    ("official-account", "compatible", "json"),
    ("wecom-app", "safe", "xml"),
    ("wecom-robot", "safe", "xml"),
    ("signature-only", "plaintext", "xml"),
]


@pytest.mark.parametrize(("platform", "mode", "data_format"), CHANNELS)
def test_correct_endpoint_passes_the_whole_suite_with_resends_and_hostile_requests(
    simulator_for: SimulatorFactory, platform: str, mode: str, data_format: str,
) -> None:
    simulator, endpoint = simulator_for(platform, mode=mode, data_format=data_format)

    async def run() -> None:
        async with simulator:
            report = await simulator.run_suite(retries=2, hostile=True)
        assert report.passed, report.table()
        names = [exchange.name for exchange in report.exchanges]
        assert names[0] == "verify URL (GET)"
        assert any(name.startswith("hostile: ") for name in names)
        assert "all passed" in report.table()
        assert all(len(exchange.resends) == 1 for exchange in report.exchanges if exchange.method == "POST"
                   and not exchange.name.startswith("hostile"))

    asyncio.run(run())
    assert endpoint.requests > 10


def test_text_reply_is_decrypted_and_addressed_back_to_the_sender(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app")

    async def run() -> None:
        async with simulator:
            exchange = await simulator.send_text("ping 你好")
        assert exchange.passed, exchange.reason
        assert exchange.status == 200
        assert exchange.reply is not None and "echo: ping 你好" in exchange.reply
        assert f"<ToUserName><![CDATA[{simulator.scenarios.user_id}]]></ToUserName>" in exchange.reply
        assert {check.name for check in exchange.checks} >= {"status", "deadline", "envelope", "signature",
                                                             "decrypt", "receive_id", "reply"}

    asyncio.run(run())


def test_robot_stream_is_polled_until_it_finishes_with_cumulative_content(simulator_for: SimulatorFactory) -> None:
    simulator, endpoint = simulator_for("wecom-robot")

    async def run() -> None:
        async with simulator:
            exchange = await simulator.send_text("tell me")
        assert exchange.passed, exchange.reason
        assert len(exchange.refreshes) == len(endpoint.stream_steps) - 1
        contents = [refresh.document["stream"]["content"] for refresh in exchange.refreshes]
        assert contents == list(endpoint.stream_steps[1:])
        assert exchange.refreshes[-1].document["stream"]["finish"] is True
        msgids = {refresh.document and refresh.nonce for refresh in exchange.refreshes}
        assert len(msgids) == len(exchange.refreshes)  # a fresh request (nonce) per refresh

    asyncio.run(run())


def test_events_are_sent_with_their_fields(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("official-account", mode="safe")

    async def run() -> None:
        async with simulator:
            exchange = await simulator.send_event("SCAN", EventKey="42", Ticket="T")
        assert exchange.passed, exchange.reason
        assert exchange.reply is not None and "event SCAN" in exchange.reply

    asyncio.run(run())
