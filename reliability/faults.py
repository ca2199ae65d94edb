"""Faults under load: two ``wxcallback serve`` processes on one Redis, forwarding to a backend.

    .venv/bin/python reliability/faults.py                    # the full run, ~4 minutes
    .venv/bin/python reliability/faults.py --short            # a ~1 minute smoke run

Everything runs on 127.0.0.1: a ``redis-server`` of our own persisting every write (AOF,
``appendfsync always``) so a restart keeps the outbox; two ``wxcallback serve`` processes (one
worker each) on one configuration with a forwarding WeCom app channel; a recording backend
(``backend.py``). The load is a steady rate of fresh text messages (unique MsgId), spread
round-robin over the two servers as a load balancer would, and each message behaves like the
platform: on a connection error, no answer within 5 s or a non-2xx answer it is sent again
(same message, new timestamp/nonce/signature) after 1 s to the other server, up to 3 times.

Phases: baseline; (a) backend stopped for a minute, then started; recovery; (b) Redis stopped,
started again a few seconds later on the same AOF; recovery; (c) one server SIGKILLed and
started again a few seconds later; recovery. Then the load stops and the run waits (bounded)
for the outbox to drain, and counts: sent, accepted (2xx), failed (no 2xx after all resends:
what the platform would see as a failure), delivered (unique Idempotency-Keys at the backend),
duplicates delivered, lost = accepted but never delivered (must be 0), 5xx answers, and
p50/p99 latency per phase (before/during/after each fault). A table goes to stdout, everything
to a JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BackendProcess,
    RedisServer,
    SendError,
    ServerProcess,
    WeComSender,
    free_port,
    idempotency_key,
    machine,
    other_load,
    percentile,
    post_once,
    temp_dir,
    write_config,
)

PLATFORM_TIMEOUT = 5.0  # the platforms give up on an answer after 5 s and resend
_DEPTH = re.compile(r"^wxcallback_outbox_depth(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", re.MULTILINE)


@dataclass
class Attempt:
    """One HTTP send of one message."""

    msg_id: int
    server: int  # index into the load's servers
    phase: str
    sent_at: float
    latency: float
    status: int | None  # None: no HTTP answer (see error)
    error: str | None = None


@dataclass
class MessageOutcome:
    msg_id: int
    phase: str  # the phase of its first send
    accepted: bool
    sends: int


@dataclass
class PhaseSpan:
    name: str
    started: float
    ended: float = 0.0


class PlatformLoad:
    """A steady rate of fresh messages with the platform's resend behaviour."""

    def __init__(self, sender: WeComSender, servers: list[tuple[str, int]], rate: float, *, resends: int = 3,
                 resend_delay: float = 1.0, first_msg_id: int | None = None) -> None:
        self.sender = sender
        self.servers = servers
        self.rate = rate
        self.resends = resends
        self.resend_delay = resend_delay
        self.phase = "baseline"
        self.attempts: list[Attempt] = []
        self.messages: list[MessageOutcome] = []
        self._next_id = first_msg_id or int(time.time() * 1000) * 1000
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Start one message every 1/rate s until ``stop`` is set (open loop: slow answers do not slow it)."""
        start = time.monotonic()
        seq = 0
        while not stop.is_set():
            delay = start + seq / self.rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            task = asyncio.create_task(self._message(seq, self._next_id + seq))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            seq += 1

    async def finish(self) -> None:
        """Wait for every message still being sent or resent."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def _message(self, seq: int, msg_id: int) -> None:
        plaintext = self.sender.text(msg_id, f"load {msg_id}")
        target = seq % len(self.servers)
        first_phase = self.phase
        for send in range(1 + self.resends):
            path, body = self.sender.callback(plaintext)
            phase, sent_at = self.phase, time.time()
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            host, port = self.servers[target]
            try:
                status, _ = await post_once(host, port, path, body, PLATFORM_TIMEOUT)
            except asyncio.TimeoutError:
                error = "timeout"
            except SendError as exc:
                error = str(exc)
            self.attempts.append(Attempt(msg_id, target, phase, sent_at, time.perf_counter() - started, status,
                                         error))
            if status is not None and 200 <= status < 300:
                self.messages.append(MessageOutcome(msg_id, first_phase, True, send + 1))
                return
            if send < self.resends:
                await asyncio.sleep(self.resend_delay)
                target = (target + 1) % len(self.servers)
        self.messages.append(MessageOutcome(msg_id, first_phase, False, 1 + self.resends))


async def outbox_depth(client: httpx.AsyncClient, servers: list[str]) -> int | None:
    """``wxcallback_outbox_depth`` from the first server whose /metrics answers."""
    for server in servers:
        try:
            response = await client.get(f"{server}/metrics", timeout=2)
        except httpx.HTTPError:
            continue
        found = _DEPTH.search(response.text)
        if response.status_code == 200 and found:
            return int(float(found.group(1)))
    return None


@dataclass
class Options:
    rate: float
    baseline: float
    backend_down: float
    redis_down: float
    kill_down: float
    recovery: float
    drain_timeout: float
    redis_signal: str
    workers: int
    forward_timeout: float
    out: Path
    keep: bool


@dataclass
class Run:
    options: Options
    phases: list[PhaseSpan] = field(default_factory=list)
    depth_series: list[tuple[float, str, int | None]] = field(default_factory=list)
    drained_after: float | None = None
    final_depth: int | None = None
    notes: list[str] = field(default_factory=list)


async def _fault_run(options: Options, work: Path) -> tuple[Run, PlatformLoad, list[str]]:
    run = Run(options)
    redis = RedisServer(free_port(), work)
    backend = BackendProcess(free_port(), work / "deliveries.txt", work)
    sender = WeComSender()
    redis.start()
    backend.start()
    channel = sender.channel_config() | {"forward": backend.url, "forward_timeout": options.forward_timeout}
    config = write_config(work / "wxcallback.toml", f"{redis.url}?prefix=faults:", channel)
    servers = [ServerProcess(config, free_port(), options.workers, work, name) for name in ("server-a", "server-b")]
    for server in servers:
        server.start()
    urls = [server.url for server in servers]
    load = PlatformLoad(sender, [("127.0.0.1", server.port) for server in servers], options.rate)
    stop_load = asyncio.Event()
    stop_sampler = asyncio.Event()

    def begin(name: str) -> None:
        now = time.time()
        if run.phases:
            run.phases[-1].ended = now
        run.phases.append(PhaseSpan(name, now))
        load.phase = name
        print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)

    async def sample_depth() -> None:
        async with httpx.AsyncClient() as client:
            while not stop_sampler.is_set():
                run.depth_series.append((time.time(), load.phase, await outbox_depth(client, urls)))
                try:
                    await asyncio.wait_for(stop_sampler.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass

    async def act(action: Callable[[], None]) -> None:
        await asyncio.to_thread(action)

    redis_signal = signal.SIGKILL if options.redis_signal == "kill" else signal.SIGTERM
    try:
        begin("baseline")
        load_task = asyncio.create_task(load.run(stop_load))
        sampler = asyncio.create_task(sample_depth())
        await asyncio.sleep(options.baseline)

        # (a) the business backend stops; its outage lasts until it answers again.
        begin("backend_down")
        await act(backend.stop)
        await asyncio.sleep(options.backend_down)
        await act(backend.start)
        begin("backend_recovery")
        await asyncio.sleep(options.recovery)

        # (b) Redis stops and starts again on the same append-only file.
        begin("redis_down")
        await act(lambda: redis.stop(redis_signal))
        await asyncio.sleep(options.redis_down)
        await act(redis.start)
        begin("redis_recovery")
        await asyncio.sleep(options.recovery)

        # (c) one server dies with SIGKILL; the other goes on; the dead one comes back.
        begin("kill_down")
        await act(servers[1].kill)
        await asyncio.sleep(options.kill_down)
        await act(servers[1].start)
        begin("kill_recovery")
        await asyncio.sleep(options.recovery)

        begin("drain")
        stop_load.set()
        await load_task
        await load.finish()
        drain_started = time.monotonic()
        async with httpx.AsyncClient() as client:
            while True:
                depth = await outbox_depth(client, urls)
                run.final_depth = depth
                if depth == 0:
                    run.drained_after = time.monotonic() - drain_started
                    break
                if time.monotonic() - drain_started > options.drain_timeout:
                    run.notes.append(f"outbox still held {depth} item(s) after {options.drain_timeout:g} s")
                    break
                await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)  # the last acks follow their deliveries
        run.phases[-1].ended = time.time()
        stop_sampler.set()
        await sampler
    finally:
        stop_load.set()
        stop_sampler.set()
        for server in servers:
            server.stop()
        deliveries = backend.deliveries()
        backend.stop()
        redis.stop()
    for server in servers:
        text = server.log.read_text(errors="replace")
        if "Traceback" in text or "unexpected error" in text:
            run.notes.append(f"{server.log.name} holds a traceback (see {server.log})")
    return run, load, deliveries


# -- figures ---------------------------------------------------------------------------------

FAULTS = (("a: backend down", "baseline", "backend_down", "backend_recovery"),
          ("b: Redis restart", "backend_recovery", "redis_down", "redis_recovery"),
          ("c: SIGKILL one server", "redis_recovery", "kill_down", "kill_recovery"))


def phase_figures(run: Run, load: PlatformLoad) -> list[dict[str, Any]]:
    rows = []
    for span in run.phases:
        attempts = [a for a in load.attempts if a.phase == span.name]
        answered = [a.latency for a in attempts if a.status is not None]
        depths = [d for _, phase, d in run.depth_series if phase == span.name and d is not None]
        rows.append({
            "phase": span.name,
            "seconds": round((span.ended or time.time()) - span.started, 1),
            "messages": sum(1 for m in load.messages if m.phase == span.name),
            "failed_messages": sum(1 for m in load.messages if m.phase == span.name and not m.accepted),
            "sends": len(attempts),
            "2xx": sum(1 for a in attempts if a.status is not None and 200 <= a.status < 300),
            "5xx": sum(1 for a in attempts if a.status is not None and a.status >= 500),
            "other_status": sum(1 for a in attempts if a.status is not None and not 200 <= a.status < 300
                                and a.status < 500),
            "timeouts": sum(1 for a in attempts if a.error == "timeout"),
            "connection_errors": sum(1 for a in attempts if a.error not in (None, "timeout")),
            "p50_ms": _ms(percentile(answered, 50)),
            "p99_ms": _ms(percentile(answered, 99)),
            "max_ms": _ms(max(answered) if answered else None),
            "max_outbox_depth": max(depths) if depths else None,
        })
    return rows


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def totals(load: PlatformLoad, deliveries: list[str]) -> dict[str, Any]:
    accepted = {idempotency_key(m.msg_id) for m in load.messages if m.accepted}
    failed = {idempotency_key(m.msg_id) for m in load.messages if not m.accepted}
    counts = Counter(deliveries)
    delivered = set(counts)
    return {
        "sent": len(load.messages),
        "sends_including_resends": len(load.attempts),
        "accepted": len(accepted),
        "failed": len(failed),
        "delivered": len(delivered),
        "deliveries_total": len(deliveries),
        "duplicates_delivered": len(deliveries) - len(delivered),
        "keys_delivered_more_than_once": sum(1 for n in counts.values() if n > 1),
        "lost": len(accepted - delivered),
        "lost_keys": sorted(accepted - delivered)[:50],
        "failed_but_delivered": len(failed & delivered),
        "unknown_keys_delivered": len(delivered - accepted - failed),
        "5xx": sum(1 for a in load.attempts if a.status is not None and a.status >= 500),
        "resent_messages": sum(1 for m in load.messages if m.sends > 1),
    }


def lost_histories(load: PlatformLoad, deliveries: list[str], started: float) -> list[dict[str, Any]]:
    """Every send of each lost message (which server, when, what came back), to tell why it was lost."""
    delivered = set(deliveries)
    lost = {m.msg_id for m in load.messages if m.accepted and idempotency_key(m.msg_id) not in delivered}
    return [{"msg_id": msg_id, "sends": [
        {"server": "ab"[a.server] if a.server < 2 else a.server, "phase": a.phase, "t": round(a.sent_at - started, 3),
         "latency_ms": _ms(a.latency), "status": a.status, "error": a.error}
        for a in load.attempts if a.msg_id == msg_id]} for msg_id in sorted(lost)]


def fault_figures(rows: list[dict[str, Any]], run: Run) -> list[dict[str, Any]]:
    by_phase = {row["phase"]: row for row in rows}
    steady = by_phase.get("baseline", {}).get("max_outbox_depth") or 0
    starts = {span.name: span.started for span in run.phases}
    figures = []
    for label, before, during, after in FAULTS:
        entry: dict[str, Any] = {"fault": label}
        # How long after the outage ended the outbox was back to its baseline depth.
        ended = starts.get(after)
        back = next((t for t, _, depth in run.depth_series
                     if ended is not None and t >= ended and depth is not None and depth <= steady), None)
        entry["outbox_back_to_baseline_after_s"] = None if back is None or ended is None else round(back - ended, 1)
        for when, phase in (("before", before), ("during", during), ("after", after)):
            row = by_phase.get(phase, {})
            entry[f"{when}_p50_ms"] = row.get("p50_ms")
            entry[f"{when}_p99_ms"] = row.get("p99_ms")
        figures.append(entry)
    return figures


def print_report(result: dict[str, Any]) -> None:
    columns = ("phase", "seconds", "messages", "failed_messages", "sends", "2xx", "5xx", "timeouts", "connection_errors",
               "p50_ms", "p99_ms", "max_ms", "max_outbox_depth")
    print()
    print(" | ".join(columns))
    for row in result["phases"]:
        print(" | ".join("-" if row[c] is None else str(row[c]) for c in columns))
    print()
    print("fault | p50 before | p99 before | p50 during | p99 during | p50 after | p99 after (ms) "
          "| outbox at baseline after (s)")
    for fault in result["faults"]:
        print(" | ".join([fault["fault"]] + ["-" if fault[k] is None else str(fault[k]) for k in (
            "before_p50_ms", "before_p99_ms", "during_p50_ms", "during_p99_ms", "after_p50_ms", "after_p99_ms",
            "outbox_back_to_baseline_after_s")]))
    print()
    for name, value in result["totals"].items():
        if name != "lost_keys":
            print(f"{name:32} {value}")
    print(f"{'outbox drained after (s)':32} {result['drained_after_s']}")
    for lost in result["lost_messages"]:
        sends = ", ".join(f"{x['server']}@{x['t']}s {x['status'] or x['error']} in {x['latency_ms']} ms"
                          for x in lost["sends"])
        print(f"lost {lost['msg_id']}: {sends}")
    for note in result["notes"]:
        print(f"note: {note}")
    verdict = "PASS" if result["totals"]["lost"] == 0 and result["final_outbox_depth"] == 0 else "FAIL"
    print(f"verdict: {verdict} (lost must be 0 and the outbox must drain)")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Faults under load: backend outage, Redis restart, SIGKILL.")
    parser.add_argument("--rate", type=float, default=50.0, help="new messages per second (default 50)")
    parser.add_argument("--baseline", type=float, default=30.0, help="seconds of load before the first fault")
    parser.add_argument("--backend-down", type=float, default=60.0, help="seconds the backend stays stopped")
    parser.add_argument("--redis-down", type=float, default=5.0, help="seconds Redis stays stopped")
    parser.add_argument("--kill-down", type=float, default=5.0, help="seconds the killed server stays dead")
    parser.add_argument("--recovery", type=float, default=30.0, help="seconds of load after each fault")
    parser.add_argument("--drain-timeout", type=float, default=180.0,
                        help="longest wait for the outbox to empty after the load stops")
    parser.add_argument("--redis-signal", choices=["term", "kill"], default="term",
                        help="how Redis is stopped: SIGTERM (clean) or SIGKILL (crash); AOF fsyncs every write")
    parser.add_argument("--workers", type=int, default=1, help="workers per server process (default 1)")
    parser.add_argument("--forward-timeout", type=float, default=0.5, help="the channel's inline forward timeout")
    parser.add_argument("--short", action="store_true",
                        help="smoke run (~1 minute): 5 s baseline, 10 s backend outage, 3 s Redis and server "
                             "outages, 5 s recoveries, 60 s drain")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "faults.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, AOF, delivery record)")
    args = parser.parse_args(argv)
    if args.short:
        args.baseline, args.backend_down, args.redis_down, args.kill_down = 5.0, 10.0, 3.0, 3.0
        args.recovery, args.drain_timeout = 5.0, 60.0
    options = Options(args.rate, args.baseline, args.backend_down, args.redis_down, args.kill_down, args.recovery,
                      args.drain_timeout, args.redis_signal, args.workers, args.forward_timeout, args.out, args.keep)
    # A plain kill of the run still stops what it started (the finally blocks run on KeyboardInterrupt).
    signal.signal(signal.SIGTERM, _interrupt)
    work = temp_dir("wxcallback-faults-")
    print(f"work dir: {work}", flush=True)
    started = time.time()
    sharing = other_load()
    run, load, deliveries = asyncio.run(_fault_run(options, work))
    rows = phase_figures(run, load)
    result: dict[str, Any] = {
        "command": " ".join(["reliability/faults.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "busiest_processes_at_start": sharing,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "wall_seconds": round(time.time() - started, 1),
        "phases": rows,
        "faults": fault_figures(rows, run),
        "totals": totals(load, deliveries),
        "drained_after_s": None if run.drained_after is None else round(run.drained_after, 1),
        "final_outbox_depth": run.final_depth,
        "depth_series": [(round(t - started, 1), phase, d) for t, phase, d in run.depth_series],
        "lost_messages": lost_histories(load, deliveries, started),
        "notes": run.notes,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"results: {options.out}")
    if options.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if result["totals"]["lost"] == 0 and run.final_depth == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
