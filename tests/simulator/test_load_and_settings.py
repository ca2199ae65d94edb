"""Load mode counts and checks every answer; unusable settings are library errors."""

from __future__ import annotations

import asyncio

import pytest

from wxcallback.core import InvalidKeyError, WXCallbackError
from wxcallback.simulator import LoadReport, Simulator, SimulatorError

from .conftest import SimulatorFactory
from .reference_endpoint import KEY


def _load(simulator: Simulator, *args: object, **kwargs: object) -> LoadReport:
    async def go() -> LoadReport:
        async with simulator:
            report: LoadReport = await simulator.load(*args, **kwargs)  # type: ignore[arg-type]
            return report

    return asyncio.run(go())


def test_load_sends_the_requested_count_with_resends_and_reports_percentiles(
    simulator_for: SimulatorFactory,
) -> None:
    simulator, endpoint = simulator_for("wecom-app")
    report = _load(simulator, 60, 4, retry_fraction=1.0)
    assert report.requests == 60 and endpoint.requests == 60
    assert report.status_counts == {"200": 60}
    assert report.failures == 0 and report.passed
    assert report.resends > 0  # after the first answers, every send is a resend
    summary = report.to_dict()
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"] <= summary["latency_ms"]["max"]
    assert "requests/s" in report.summary()


def test_load_counts_resends_answered_differently_as_failures(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("official-account", mode="safe", faults=frozenset({"no-dedup"}))
    report = _load(simulator, 30, 2, retry_fraction=1.0)
    assert report.failures > 0 and not report.passed
    assert any("different reply" in sample for sample in report.failure_samples)


def test_load_bounded_by_duration_stops(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-robot")
    report = _load(simulator, None, 2, duration=0.3)
    assert report.requests > 0 and report.passed


def test_load_counts_non_200_statuses(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app", faults=frozenset({"reply-signature"}))
    report = _load(simulator, 10, 2)
    assert report.failures == 10
    assert "MsgSignature does not verify" in report.failure_samples[0]


@pytest.mark.parametrize(("settings", "message"), [
    ({"platform": "wechat"}, "unknown platform"),
    ({"platform": "official-account", "mode": "secure"}, "unknown mode"),
    ({"platform": "wecom-app", "encoding_aes_key": None}, "EncodingAESKey is required"),
    ({"platform": "wecom-app", "token": ""}, "Token is required"),
    ({"platform": "wecom-app", "url": "ftp://x"}, "http:// or https://"),
    ({"platform": "wecom-app", "post_deadline": 0}, "positive number"),
])
def test_unusable_settings_raise_a_simulator_error(settings: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"url": "http://127.0.0.1:1/", "token": "t", "encoding_aes_key": KEY,
                                    "receive_id": "ww1", **settings}
    url = arguments.pop("url")
    with pytest.raises(SimulatorError, match=message) as caught:
        Simulator(url, **arguments)  # type: ignore[arg-type]
    assert caught.value.code == 0  # a setting, not a protocol failure


def test_bad_key_is_the_core_key_error() -> None:
    with pytest.raises(InvalidKeyError) as caught:
        Simulator("http://127.0.0.1:1/", platform="wecom-app", token="t", encoding_aes_key="short", receive_id="w")
    assert caught.value.code == -40004


def test_bad_counts_raise_before_sending(simulator_for: SimulatorFactory) -> None:
    simulator, endpoint = simulator_for("wecom-app")
    for args, kwargs in (((0, 1), {}), ((None, 1), {}), ((5, 0), {}), ((5, 1), {"retry_fraction": 2.0})):
        with pytest.raises(WXCallbackError):
            _load(simulator, *args, **kwargs)
    with pytest.raises(SimulatorError):
        asyncio.run(simulator.send_text(retries=0))
    assert endpoint.requests == 0
