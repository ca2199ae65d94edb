"""One structured access-log line per request, and the Prometheus metrics.

The log line is JSON with the channel, outcome, official code, status and latency,
and a detail a person can act on. It never carries a token, key or signature, and
carries a plaintext message only when the channel has ``debug = true``.

With several worker processes, ``wxcallback serve`` sets PROMETHEUS_MULTIPROC_DIR so
that every worker's counts are summed at /metrics.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from .exchange import CallbackResponse

__all__ = ["ACCESS_LOG", "Metrics", "log_exchange"]

ACCESS_LOG = logging.getLogger("wxcallback.access")


def log_exchange(method: str, path: str, response: CallbackResponse, started: float) -> None:
    level = logging.WARNING if response.status >= 400 else logging.INFO
    if response.outcome in ("handler_error", "store_error", "internal_error"):
        level = logging.ERROR
    if not ACCESS_LOG.isEnabledFor(level):
        return
    record: dict[str, Any] = {
        "channel": response.channel,
        "method": method,
        "path": path,
        "status": response.status,
        "outcome": response.outcome,
        "code": response.code,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if response.msg_type:
        record["msg_type"] = response.msg_type
    if response.detail:
        record["detail"] = response.detail
    record.update(response.fields)
    ACCESS_LOG.log(level, json.dumps(record, ensure_ascii=False, default=str))


class Metrics:
    """Counters and histograms of one process (summed across workers in multiprocess mode)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("wxcallback_requests", "Callback requests by channel, outcome and code",
                                ["channel", "outcome", "code"], registry=self.registry)
        self.latency = Histogram("wxcallback_request_seconds", "Time to answer a callback request",
                                 ["channel"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.dedup_hits = Counter("wxcallback_dedup_hits", "Platform retries answered from the dedup cache",
                                  ["channel"], registry=self.registry)
        self.late = Counter("wxcallback_late_handlers", "Handlers that missed the deadline and finished later",
                            ["channel"], registry=self.registry)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self.outbox_depth = Gauge("wxcallback_outbox_depth", "Messages waiting for delivery to a backend",
                                  registry=self.registry, multiprocess_mode="max")

    def observe(self, response: CallbackResponse, seconds: float) -> None:
        # labels() takes a lock and builds a key each time; the children are few, keep them.
        key = (response.channel, response.outcome, response.code)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(response.channel, response.outcome,
                                                                         str(response.code))
        counter.inc()
        histogram = self._latency_children.get(response.channel)
        if histogram is None:
            histogram = self._latency_children[response.channel] = self.latency.labels(response.channel)
        histogram.observe(seconds)
        if response.outcome == "duplicate":
            self.dedup_hits.labels(response.channel).inc()

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
