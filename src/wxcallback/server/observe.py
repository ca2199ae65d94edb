"""One structured access-log line per request, and the Prometheus metrics.

The log line is JSON with the channel, outcome, official code, status and latency,
and a detail a person can act on. It never carries a token, key or signature, and
carries a plaintext message only when the channel has ``debug = true``.

With several worker processes, ``wxcallback serve`` sets PROMETHEUS_MULTIPROC_DIR so
that every worker's counts are summed at /metrics.

A request's counts are tallied in plain dicts and handed to prometheus_client at most once a
second (and before every render, and at stop): in multiprocess mode each ``inc`` and
``observe`` writes to a memory-mapped file under a lock, which made a request's metrics 5-9
times dearer than the tally (docs/bench_server.md, "Metrics with several workers"). So with
several workers /metrics may lag another worker by up to a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from json.encoder import encode_basestring as _string  # a str as json.dumps(ensure_ascii=False) writes it
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .jsonlog import json_line, line_handler

__all__ = ["ACCESS_LOG", "Metrics", "Outcome", "log_callback", "log_request"]

ACCESS_LOG = logging.getLogger("wxcallback.access")


class Outcome(NamedTuple):  # one per request: a NamedTuple is built in under half a frozen dataclass's time
    """What the access log and the metrics record about one answered request.

    ``outcome`` is the word the log and the ``outcome`` label carry ("ok", "duplicate",
    "late", "rejected" …); ``code`` the official return code of a refusal, 0 otherwise.
    """

    outcome: str = "ok"
    code: int = 0
    detail: str = ""
    channel: str = "-"
    msg_type: str = ""
    # Only for a channel with debug = true.
    plaintext: str | None = None
    # the account a third party's templated path captured ("" on an exact path)
    tenant: str = ""


def log_request(method: str, path: str, status: int, outcome: Outcome, started: float) -> None:
    level = logging.WARNING if status >= 400 else logging.INFO
    if outcome.outcome in ("handler_error", "store_error", "internal_error"):
        level = logging.ERROR
    if not ACCESS_LOG.isEnabledFor(level):
        return
    _write_access_line(level, '{"channel": %s, "method": %s, "path": %s, "status": %d'
                       % (_string(outcome.channel), _string(method), _string(path), status), outcome, started)


def _write_access_line(level: int, head: str, outcome: Outcome, started: float) -> None:
    """One JSON line: ``head`` (the opening members, what identifies the request), then the outcome's.

    Written as json.dumps(record, ensure_ascii=False) writes the same dict, member for member
    (a test compares the two): with a JSONEncoder's encode, most of the line's cost was the
    encoder's setup for each call (2.6 against 0.8 µs).
    """
    latency = round((time.perf_counter() - started) * 1000, 2)
    line = f'{head}, "outcome": {_string(outcome.outcome)}, "code": {int(outcome.code)}, "latency_ms": {latency!r}'
    if outcome.tenant:
        line += ', "tenant": ' + _string(outcome.tenant)
    if outcome.msg_type:
        line += ', "msg_type": ' + _string(outcome.msg_type)
    if outcome.detail:
        line += ', "detail": ' + _string(outcome.detail)
    if outcome.plaintext is not None:
        line += ', "plaintext": ' + _string(outcome.plaintext)
    message = line + "}"
    handler = line_handler(ACCESS_LOG, level)
    if handler is None or not handler.write_line(json_line(logging.getLevelName(level), ACCESS_LOG.name, message)):
        ACCESS_LOG.log(level, message)


def log_callback(cmd: str, req_id: str, outcome: Outcome, started: float) -> None:
    """The access-log line of a callback that came over a long connection (no method, path or status)."""
    level = logging.INFO
    if outcome.outcome in ("handler_error", "store_error", "internal_error", "send_failed"):
        level = logging.ERROR
    elif outcome.outcome in ("rejected", "in_progress_elsewhere"):
        level = logging.WARNING
    if not ACCESS_LOG.isEnabledFor(level):
        return
    _write_access_line(level, '{"channel": %s, "transport": "websocket", "cmd": %s, "req_id": %s'
                       % (_string(outcome.channel), _string(cmd), _string(req_id)), outcome, started)


class Metrics:
    """Counters and histograms of one process (summed across workers in multiprocess mode)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("wxcallback_requests", "Callback requests by channel, outcome and code",
                                ["channel", "outcome", "code"], registry=self.registry)
        self.latency = Histogram("wxcallback_request_seconds", "Time to answer a callback request",
                                 ["channel"], registry=self.registry, buckets=_LATENCY_BUCKETS)
        self.dedup_hits = Counter("wxcallback_dedup_hits", "Platform retries answered from the dedup cache",
                                  ["channel"], registry=self.registry)
        self.late = Counter("wxcallback_late_handlers",
                            "Handlers that missed the deadline (answered with no reply; their result is kept)",
                            ["channel"], registry=self.registry)
        # Late replies and proactive messages through the platforms' APIs (server/reply_sender.py).
        self.reply_sends = Counter("wxcallback_reply_sends", "Replies sent through the platforms' message APIs, "
                                   "by channel and result (sent, retry, dead, refused)",
                                   ["channel", "result"], registry=self.registry)
        # What observe() tallied since the last flush: requests by (channel, outcome, code), and
        # per channel the latencies' sum then one count per bucket (see _LATENCY_BOUNDS).
        self._counts: dict[tuple[str, str, int], int] = {}
        self._latencies: dict[str, list[float]] = {}
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop whose timer will flush
        # Long-connection attempts after the first (drops, refusals, dead pings), summed over workers;
        # wxcallback_longconn_up is read at scrape time (see render).
        self.longconn_reconnects = Counter("wxcallback_longconn_reconnects",
                                           "Long-connection attempts after the first (drops, refusals, dead pings)",
                                           ["channel"], registry=self.registry)

    def observe(self, outcome: Outcome, seconds: float) -> None:
        """Count one answered request; prometheus_client sees it at the next flush."""
        key = (outcome.channel, outcome.outcome, outcome.code)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        latencies = self._latencies.get(outcome.channel)
        if latencies is None:
            latencies = self._latencies[outcome.channel] = [0.0] * (1 + len(_LATENCY_BOUNDS))
        latencies[0] += seconds
        latencies[1 + bisect_left(_LATENCY_BOUNDS, seconds)] += 1  # the first bucket with seconds <= bound
        if self._flush_on is None or self._flush_on.is_closed():  # (a closed loop's timer never fires)
            self._flush_soon()

    def _flush_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to wait on (a caller outside the server): at once
            self.flush()
            return
        self._flush_on = loop
        loop.call_later(_FLUSH_EVERY, self.flush)

    def flush(self) -> None:
        """Hand the tallies to prometheus_client (in multiprocess mode: to this worker's files)."""
        self._flush_on = None
        counts, self._counts = self._counts, {}
        latencies, self._latencies = self._latencies, {}
        for (channel, outcome, code), count in counts.items():
            self.requests.labels(channel, outcome, str(code)).inc(count)
            if outcome == "duplicate":
                self.dedup_hits.labels(channel).inc(count)
            elif outcome == "late":
                self.late.labels(channel).inc(count)
        for channel, tally in latencies.items():
            histogram = self.latency.labels(channel)
            # Histogram has no public way to add n observations to a bucket; these are the
            # values its observe() increments (_sum, then the first bucket the amount fits).
            histogram._sum.inc(tally[0])
            for bucket, observed in zip(histogram._buckets, tally[1:]):
                if observed:
                    bucket.inc(observed)

    def render(self, outbox_depth: int | None = None, connections: dict[str, int] | None = None,
               dead_letters: int | None = None, longconn_up: dict[str, bool] | None = None) -> bytes:
        """The Prometheus text: this process's (or every worker's) counters, then the
        values read at scrape time.

        The outbox depth is the store's, read now: a per-process gauge would, with
        several workers, keep showing whatever a dead worker last wrote.
        """
        self.flush()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            counted = generate_latest(registry)
        else:
            counted = generate_latest(self.registry)
        now = CollectorRegistry()
        now.register(_ScrapeTime(outbox_depth, connections or {}, dead_letters, longconn_up or {}))
        return counted + generate_latest(now)


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LATENCY_BOUNDS = (*map(float, _LATENCY_BUCKETS), float("inf"))  # the histogram's, +Inf last
_FLUSH_EVERY = 1.0  # seconds between a worker's first uncounted request and its flush


class _ScrapeTime(Collector):
    """Gauges whose value is read when /metrics is scraped, never stored per process."""

    def __init__(self, outbox_depth: int | None, connections: dict[str, int], dead_letters: int | None,
                 longconn_up: dict[str, bool]) -> None:
        self._outbox_depth = outbox_depth
        self._connections = connections
        self._dead_letters = dead_letters
        self._longconn_up = longconn_up

    def collect(self) -> Iterator[Metric]:
        if self._outbox_depth is not None:
            yield GaugeMetricFamily("wxcallback_outbox_depth", "Messages waiting for delivery to a backend "
                                    "(read from the store)", value=self._outbox_depth)
        if self._dead_letters is not None:
            yield GaugeMetricFamily("wxcallback_dead_letters", "Forwarded messages set aside after delivery "
                                    "failed for good (wxcallback outbox list)", value=self._dead_letters)
        refused = CounterMetricFamily("wxcallback_connections_closed",
                                      "Connections the workers closed or refused to protect themselves, by reason",
                                      labels=["reason"])
        for reason, count in self._connections.items():
            refused.add_metric([reason], count)
        yield refused
        if self._longconn_up:
            up = GaugeMetricFamily("wxcallback_longconn_up", "1 while the channel's long connection is subscribed, "
                                   "in whichever process holds it (read from the store)", labels=["channel"])
            for channel, connected in sorted(self._longconn_up.items()):
                up.add_metric([channel], 1 if connected else 0)
            yield up
