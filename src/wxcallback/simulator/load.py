"""Load mode: many fresh callbacks over a fixed number of connections, with latency percentiles.

Each request is a new text callback (fresh MsgId/msgid, timestamp and nonce); a
fraction can instead be an identical resend of an earlier one, as the platform does
after a timeout, and its reply must match the first. The run is bounded by a count,
a duration, or both.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from .checks import judge_reply
from .errors import SimulatorError
from .scenarios import Callback
from .wire import WireRequest, callback_request

if TYPE_CHECKING:
    from .runner import Simulator

__all__ = ["MAX_LOAD_REQUESTS", "LoadReport", "run_load"]

# The count cap when only a duration is given.
MAX_LOAD_REQUESTS = 10_000_000
# How many earlier callbacks a resend may pick from.
_RESEND_POOL = 256
_FAILURE_SAMPLES = 10


@dataclass
class LoadReport:
    """Throughput, latency distribution, status counts and failures of a load run."""

    requests: int
    elapsed: float
    concurrency: int
    latencies: list[float] = field(default_factory=list, repr=False)
    status_counts: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    resends: int = 0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Latency (s) at ``fraction`` (0..1) by nearest rank; 0 with no requests."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
        return ordered[rank]

    @property
    def passed(self) -> bool:
        return self.requests > 0 and self.failures == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "resends": self.resends,
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "latency_ms": {name: round(self.percentile(fraction) * 1000, 2)
                           for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
            "status_counts": dict(self.status_counts),
            "failures": self.failures,
            "failure_samples": list(self.failure_samples),
            "passed": self.passed,
        }

    def summary(self) -> str:
        latency = self.to_dict()["latency_ms"]
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.status_counts.items()))
        lines = [
            f"requests     {self.requests} ({self.resends} resends) over {self.concurrency} connections "
            f"in {self.elapsed:.2f} s",
            f"throughput   {self.requests_per_second:.1f} requests/s",
            f"latency      p50 {latency['p50']} ms  p90 {latency['p90']} ms  p99 {latency['p99']} ms  "
            f"max {latency['max']} ms",
            f"statuses     {statuses or '-'}",
            f"failures     {self.failures}",
        ]
        lines.extend(f"  - {sample}" for sample in self.failure_samples)
        return "\n".join(lines)


def _check_bounds(n: int | None, concurrency: int, duration: float | None, retry_fraction: float) -> None:
    if n is None and duration is None:
        raise SimulatorError("a load run needs a request count, a duration, or both")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise SimulatorError(f"the request count must be an int ≥ 1, not {n!r}")
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise SimulatorError(f"concurrency must be an int ≥ 1, not {concurrency!r}")
    if duration is not None and (not isinstance(duration, (int, float)) or not duration > 0):
        raise SimulatorError(f"duration must be a positive number of seconds, not {duration!r}")
    if not isinstance(retry_fraction, (int, float)) or not 0.0 <= retry_fraction <= 1.0:
        raise SimulatorError(f"the resend fraction must be between 0 and 1, not {retry_fraction!r}")


async def run_load(
    simulator: Simulator,
    *,
    n: int | None,
    concurrency: int,
    duration: float | None = None,
    retry_fraction: float = 0.0,
    verify: bool = True,
) -> LoadReport:
    """Drive ``simulator``'s target with text callbacks; see :meth:`Simulator.load`."""
    _check_bounds(n, concurrency, duration, retry_fraction)
    limit = n if n is not None else MAX_LOAD_REQUESTS
    stop_at = None if duration is None else time.monotonic() + duration
    target = simulator.target
    chooser = random.Random()
    tickets = itertools.count()
    sent: deque[tuple[Callback, WireRequest, str | None]] = deque(maxlen=_RESEND_POOL)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    resends = 0

    def fail(reason: str) -> None:
        failures.append(reason)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal resends
        while True:
            ticket = next(tickets)
            if ticket >= limit or (stop_at is not None and time.monotonic() >= stop_at):
                return
            original: str | None = None
            is_resend = bool(sent) and chooser.random() < retry_fraction
            if is_resend:
                callback, request, original = sent[chooser.randrange(len(sent))]
                resends += 1
            else:
                callback = simulator.scenarios.text(f"load {ticket}")
                request = callback_request(target, callback.payload, sender=callback.sender)
            answer = await simulator.send_request(request, simulator.post_deadline, client=client)
            latencies.append(answer.latency)
            statuses["no answer" if answer.status is None else str(answer.status)] += 1
            if answer.status != 200:
                fail(answer.error or f"HTTP {answer.status}")
                continue
            reply: str | None = None
            if verify:
                reading = judge_reply(target, callback, request.nonce, answer.body)
                if not reading.passed:
                    fail("; ".join(f"{check.name}: {check.detail}" for check in reading.checks if not check.passed))
                    continue
                reply = reading.plaintext
                if is_resend and reply != original:
                    fail("a resend got a different reply than the first send")
                    continue
            if not is_resend:
                sent.append((callback, request, reply))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=None, trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadReport(
        requests=len(latencies), elapsed=elapsed, concurrency=concurrency, latencies=latencies,
        status_counts=dict(statuses), failures=len(failures), failure_samples=failures[:_FAILURE_SAMPLES],
        resends=resends,
    )
