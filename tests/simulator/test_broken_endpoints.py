"""Each broken endpoint fails, with a reason that names what is wrong."""

from __future__ import annotations

import asyncio

import pytest

from wxcallback.simulator import Exchange, Simulator

from .conftest import SimulatorFactory


def _run(simulator: Simulator, action: str, **kwargs: object) -> Exchange:
    async def go() -> Exchange:
        async with simulator:
            result: Exchange = await getattr(simulator, action)(**kwargs)
            return result

    return asyncio.run(go())


@pytest.mark.parametrize(("platform", "fault", "reason"), [
    ("official-account", "echostr-quoted", "quoted"),
    ("wecom-app", "echostr-quoted", "quoted"),
    ("wecom-robot", "echostr-newline", "whitespace or a newline"),
    ("official-account", "echostr-newline", "whitespace or a newline"),
])
def test_url_check_answer_must_be_the_bare_echostr(
    simulator_for: SimulatorFactory, platform: str, fault: str, reason: str,
) -> None:
    simulator, _ = simulator_for(platform, faults=frozenset({fault}))
    exchange = _run(simulator, "verify_url")
    assert exchange.status == 200
    assert not exchange.passed
    assert reason in exchange.reason


def test_slow_url_check_fails_the_one_second_rule(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app", faults=frozenset({"slow-get"}), get_deadline=0.2)
    exchange = _run(simulator, "verify_url")
    assert not exchange.passed
    assert exchange.status is None
    assert "no answer within 0.2 s" in exchange.reason


def test_slow_callback_fails_the_deadline(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("official-account", mode="safe", faults=frozenset({"slow-post"}),
                                 post_deadline=0.2)
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert "no answer within 0.2 s" in exchange.reason


@pytest.mark.parametrize(("platform", "mode"), [("official-account", "safe"), ("wecom-app", "safe"),
                                                ("wecom-robot", "safe")])
def test_reply_with_a_wrong_signature_fails(simulator_for: SimulatorFactory, platform: str, mode: str) -> None:
    simulator, _ = simulator_for(platform, mode=mode, faults=frozenset({"reply-signature"}))
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert exchange.reply is None
    assert "MsgSignature does not verify" in exchange.reason


@pytest.mark.parametrize("platform", ["official-account", "wecom-app"])
def test_reply_sealed_for_another_receive_id_fails(simulator_for: SimulatorFactory, platform: str) -> None:
    simulator, _ = simulator_for(platform, faults=frozenset({"reply-receive-id"}))
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert "sealed for receive_id 'wrongcorp'" in exchange.reason
    assert simulator.target.receive_id in exchange.reason


@pytest.mark.parametrize("platform", ["official-account", "wecom-robot"])
def test_reply_must_echo_the_request_nonce_where_the_platform_requires_it(
    simulator_for: SimulatorFactory, platform: str,
) -> None:
    simulator, _ = simulator_for(platform, faults=frozenset({"reply-nonce"}))
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert "must echo the request nonce" in exchange.reason


def test_wecom_app_reply_may_use_its_own_nonce(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app", faults=frozenset({"reply-nonce"}))
    assert _run(simulator, "send_text").passed


def test_reply_addressed_to_someone_else_fails(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("official-account", mode="plaintext", faults=frozenset({"reply-recipient"}))
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert "expected the sender" in exchange.reason


def test_resends_answered_differently_fail_the_dedup_check(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app", faults=frozenset({"no-dedup"}))
    exchange = _run(simulator, "send_text", retries=3)
    assert not exchange.passed
    assert len(exchange.resends) == 2
    assert "got a different reply" in exchange.reason


def test_stream_that_never_finishes_fails_at_the_poll_timeout(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-robot", faults=frozenset({"stream-never-finishes"}),
                                 stream_interval=0.02, stream_timeout=0.3)
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert "not finished after 0.3 s" in exchange.reason
    assert exchange.refreshes  # it did poll before giving up


def test_stream_whose_content_is_not_cumulative_fails(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-robot", faults=frozenset({"stream-shrinks"}))
    exchange = _run(simulator, "send_text")
    assert not exchange.passed
    assert "not cumulative" in exchange.reason


def test_robot_feedback_event_must_get_an_empty_answer(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-robot", faults=frozenset({"answer-feedback"}))
    exchange = _run(simulator, "send_event", event="feedback_event")
    assert not exchange.passed
    assert "must be answered with an empty body" in exchange.reason


def test_server_error_on_hostile_input_fails_with_the_status(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app", faults=frozenset({"crash-on-bad-input"}))

    async def go() -> list[Exchange]:
        async with simulator:
            return await simulator.hostile()

    exchanges = asyncio.run(go())
    failed = {exchange.name: exchange.reason for exchange in exchanges if not exchange.passed}
    assert "hostile: bad signature (POST)" in failed
    assert "HTTP 500" in failed["hostile: bad signature (POST)"]
    assert "hostile: malformed body" in failed
    # Refusals that happen before the crypto (size, path) still pass.
    assert "hostile: oversized body" not in failed and "hostile: unknown path" not in failed


def test_plaintext_endpoint_accepting_a_replayed_nonce_with_another_body_fails(
    simulator_for: SimulatorFactory,
) -> None:
    simulator, _ = simulator_for("official-account", mode="plaintext", faults=frozenset({"replay-accepted"}))

    async def go() -> list[Exchange]:
        async with simulator:
            return await simulator.hostile()

    replay = next(exchange for exchange in asyncio.run(go()) if "replayed nonce" in exchange.name)
    assert not replay.passed
    assert "the request was accepted" in replay.reason


def test_unreachable_endpoint_fails_without_raising(simulator_for: SimulatorFactory) -> None:
    simulator, _ = simulator_for("wecom-app")
    unreachable = Simulator("http://127.0.0.1:9/nowhere", platform="wecom-app", token="t",
                            encoding_aes_key=simulator.target.encoding_aes_key, receive_id="ww1", get_deadline=0.5)
    exchange = _run(unreachable, "verify_url")
    assert not exchange.passed
    assert exchange.status is None
    assert "request failed" in exchange.reason or "no answer" in exchange.reason
