"""Metrics.observe tallies in memory and flushes to prometheus_client: the same figures as
observing each request directly, handed over within a second, and at render and stop."""

from __future__ import annotations

import asyncio
import math
import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from wxcallback.server.observe import _LATENCY_BUCKETS, Metrics, Outcome

OUTCOMES = ["ok", "duplicate", "late", "bad_signature", "replayed"]
CHANNELS = ["app", "robot", "-"]


def _samples(text: bytes) -> list[str]:
    # *_created carries each child's creation time, which no two registries share.
    return sorted(line for line in text.decode().splitlines()
                  if line and not line.startswith("#") and "_created" not in line)


def _direct(observations: list[tuple[Outcome, float]]) -> bytes:
    """The reference: every request handed to prometheus_client as it is answered."""
    registry = CollectorRegistry()
    requests = Counter("wxcallback_requests", "", ["channel", "outcome", "code"], registry=registry)
    latency = Histogram("wxcallback_request_seconds", "", ["channel"], registry=registry, buckets=_LATENCY_BUCKETS)
    dedup_hits = Counter("wxcallback_dedup_hits", "", ["channel"], registry=registry)
    late = Counter("wxcallback_late_handlers", "", ["channel"], registry=registry)
    for outcome, seconds in observations:
        requests.labels(outcome.channel, outcome.outcome, str(outcome.code)).inc()
        latency.labels(outcome.channel).observe(seconds)
        if outcome.outcome == "duplicate":
            dedup_hits.labels(outcome.channel).inc()
        elif outcome.outcome == "late":
            late.labels(outcome.channel).inc()
    return generate_latest(registry)


def _observations(count: int) -> list[tuple[Outcome, float]]:
    rng = random.Random(7)
    # Every bucket bound exactly (a bound belongs to its own bucket), just past it, and above the last.
    edges = [float(b) for b in _LATENCY_BUCKETS] + [b * 1.0001 for b in _LATENCY_BUCKETS] + [0.0, 60.0]
    out = []
    for i in range(count):
        seconds = edges[i] if i < len(edges) else rng.expovariate(40.0)
        outcome = Outcome(rng.choice(OUTCOMES), code=rng.choice([0, -40001, -40007]), channel=rng.choice(CHANNELS))
        out.append((outcome, seconds))
    return out


def _ours_only(text: bytes) -> list[str]:
    names = ("wxcallback_requests", "wxcallback_request_seconds", "wxcallback_dedup_hits", "wxcallback_late_handlers")
    return [line for line in _samples(text) if line.startswith(names)]


def test_tallied_figures_equal_direct_observation() -> None:
    observations = _observations(3000)

    async def run() -> bytes:
        metrics = Metrics()
        for outcome, seconds in observations[:1000]:
            metrics.observe(outcome, seconds)
        metrics.flush()  # two flushes add up, as one would
        for outcome, seconds in observations[1000:]:
            metrics.observe(outcome, seconds)
        return metrics.render()

    ours, reference = _ours_only(asyncio.run(run())), _ours_only(_direct(observations))
    assert [line.rsplit(" ", 1)[0] for line in ours] == [line.rsplit(" ", 1)[0] for line in reference]
    for mine, theirs in zip(ours, reference):
        # Counts are exact; a _sum adds the same floats in another order.
        assert math.isclose(float(mine.rsplit(" ", 1)[1]), float(theirs.rsplit(" ", 1)[1]), rel_tol=1e-12), mine


def test_counts_reach_prometheus_within_a_second_without_a_render() -> None:
    async def run() -> tuple[float | None, float | None, float | None]:
        metrics = Metrics()
        metrics.observe(Outcome("ok", channel="app"), 0.002)
        metrics.observe(Outcome("duplicate", channel="app"), 0.0005)
        labels = {"channel": "app", "outcome": "ok", "code": "0"}
        before = metrics.registry.get_sample_value("wxcallback_requests_total", labels)
        await asyncio.sleep(1.2)
        after = metrics.registry.get_sample_value("wxcallback_requests_total", labels)
        hits = metrics.registry.get_sample_value("wxcallback_dedup_hits_total", {"channel": "app"})
        return before, after, hits

    before, after, hits = asyncio.run(run())
    assert before is None  # still tallied: no file write per request
    assert after == 1.0 and hits == 1.0


def test_outside_a_loop_counts_at_once() -> None:
    metrics = Metrics()
    metrics.observe(Outcome("late", channel="robot"), 0.3)
    assert metrics.registry.get_sample_value("wxcallback_late_handlers_total", {"channel": "robot"}) == 1.0
    assert metrics.registry.get_sample_value("wxcallback_request_seconds_bucket",
                                             {"channel": "robot", "le": "0.25"}) == 0.0
    assert metrics.registry.get_sample_value("wxcallback_request_seconds_bucket",
                                             {"channel": "robot", "le": "0.5"}) == 1.0


def test_a_loop_closed_before_its_flush_does_not_stop_the_next_one() -> None:
    metrics = Metrics()

    async def observe_once() -> None:
        metrics.observe(Outcome("ok", channel="app"), 0.002)

    asyncio.run(observe_once())  # its flush timer dies with the loop

    async def observe_and_wait() -> float | None:
        metrics.observe(Outcome("ok", channel="app"), 0.002)
        await asyncio.sleep(1.2)
        return metrics.registry.get_sample_value("wxcallback_requests_total",
                                                 {"channel": "app", "outcome": "ok", "code": "0"})

    assert asyncio.run(observe_and_wait()) == 2.0
