"""Soak: a steady load at half the measured peak for minutes; RSS, fds and p99 must stay flat.

    .venv/bin/python reliability/soak.py --minutes 10            # measure the peak, soak at half of it
    .venv/bin/python reliability/soak.py --minutes 10 --rate 200 # soak at a given rate

One ``wxcallback serve`` with the embedded SQLite store (a temp file) and 2 workers, a WeCom
app channel answering with the demo echo. First a short closed-loop ramp (rising numbers of
concurrent senders) finds the peak req/s of this machine with this generator; then an
open-loop load of fresh, signed, encrypted text messages at the soak rate. Every 10 s the RSS
and open file descriptors of every server process are read from /proc; per minute the p50/p99
latency (from each request's scheduled time, so a stalled server cannot hide its backlog) and
the errors (any non-200, a timeout, a connection error, a reply that does not decrypt to the echo).

Verdict: flat when the last minute's total RSS is within ``--rss-tolerance`` (10 %) of minute 2's,
the non-socket fds are unchanged, open sockets never exceed the client's connection cap plus
what was open at the start, no later minute's p99 exceeds ``--p99-factor`` (2) times minute 2's,
and there are zero errors. ``--from-json FILE`` judges a saved result afresh (and saves the new verdict) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    Connection,
    SendError,
    ServerProcess,
    WeComSender,
    command_of,
    free_port,
    machine,
    other_load,
    percentile,
    rss_kib,
    temp_dir,
    write_config,
)

from wxcallback.core import WXCallbackError

TIMEOUT = 5.0


def fd_kinds(pid: int) -> tuple[int, int] | None:
    """(sockets, other fds) open in ``pid``; None when the process is gone."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    sockets = 0
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                sockets += 1
        except OSError:
            continue
    return sockets, len(names) - sockets


@dataclass
class Result:
    scheduled_at: float  # monotonic
    latency: float
    ok: bool
    error: str | None = None


class Load:
    """Signed callbacks for one server over a fixed set of keep-alive connections, one request each at a time."""

    def __init__(self, sender: WeComSender, port: int, connections: int) -> None:
        self.sender = sender
        self.connections = [Connection("127.0.0.1", port) for _ in range(connections)]
        self.results: list[Result] = []
        self._next_id = int(time.time() * 1000) * 1000

    async def send(self, connection: Connection, scheduled_at: float) -> Result:
        self._next_id += 1
        msg_id = self._next_id
        path, body = self.sender.callback(self.sender.text(msg_id, f"soak {msg_id}"))
        error: str | None = None
        try:
            status, reply = await connection.post(path, body, TIMEOUT)
            if status != 200:
                error = f"status {status}"
            elif msg_id % 50 == 0:
                error = self._check_reply(reply, msg_id)
        except asyncio.TimeoutError:
            error = "timeout"
        except SendError as exc:
            error = str(exc)
        result = Result(scheduled_at, time.monotonic() - scheduled_at, error is None, error)
        self.results.append(result)
        return result

    def _check_reply(self, body: bytes, msg_id: int) -> str | None:
        """Open one reply in fifty as the platform would: it must be the encrypted echo."""
        text = body.decode(errors="replace")
        try:
            signature = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
            timestamp = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
            nonce = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
            plain = self.sender.crypto.decrypt(text, signature, timestamp, nonce).text
        except (IndexError, WXCallbackError) as exc:  # not the envelope, or it does not open
            return f"bad reply: {type(exc).__name__}"
        return None if f"echo: soak {msg_id}" in plain else "reply is not the echo"

    async def closed_loop(self, concurrency: int, seconds: float) -> float:
        """Completed requests per second with ``concurrency`` senders each waiting for its answer."""
        deadline = time.monotonic() + seconds
        done = 0

        async def sender(connection: Connection) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                result = await self.send(connection, time.monotonic())
                done += result.ok

        started = time.monotonic()
        await asyncio.gather(*(sender(c) for c in self.connections[:concurrency]))
        return done / (time.monotonic() - started)

    async def open_loop(self, rate: float, seconds: float, on_tick: Any) -> None:
        """A request due every 1/rate s for ``seconds``, taken by the first free connection.

        A backlog waits in the queue, and its latency counts from when it was due.
        """
        due_times: asyncio.Queue[float | None] = asyncio.Queue()

        async def sender(connection: Connection) -> None:
            while (due := await due_times.get()) is not None:
                await self.send(connection, due)

        senders = [asyncio.create_task(sender(c)) for c in self.connections]
        start = time.monotonic()
        next_tick = start + 10.0
        seq = 0
        while True:
            now = time.monotonic()
            if now >= next_tick:
                on_tick(now - start)
                next_tick += 10.0
            if now - start >= seconds:
                break
            due = start + seq / rate
            if due > now:
                await asyncio.sleep(min(due, next_tick) - now)
                continue
            due_times.put_nowait(due)
            seq += 1
        for _ in senders:
            due_times.put_nowait(None)
        await asyncio.gather(*senders)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def _sample(server: ServerProcess, results: list[Result], since: int, elapsed: float,
            db: Path) -> dict[str, Any]:
    window = results[since:]
    processes = []
    for pid in server.pids():
        kinds = fd_kinds(pid)
        rss = rss_kib(pid)
        if kinds is None or rss is None:
            continue
        processes.append({"pid": pid, "role": _role(command_of(pid)), "rss_kib": rss, "sockets": kinds[0],
                          "other_fds": kinds[1]})
    db_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
    return {
        "t": round(elapsed),
        "requests": len(window),
        "errors": sum(1 for r in window if not r.ok),
        "p99_ms": _ms(percentile([r.latency for r in window], 99)),
        "processes": processes,
        "rss_kib_total": sum(p["rss_kib"] for p in processes),
        "sockets_total": sum(p["sockets"] for p in processes),
        "other_fds_total": sum(p["other_fds"] for p in processes),
        "db_bytes": db_bytes,
    }


def _role(command: str) -> str:
    if "multiprocessing" in command and "resource_tracker" in command:
        return "resource tracker"
    if "multiprocessing" in command:
        return "worker"
    return "main"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def minutes_of(results: list[Result], start: float, minutes: int) -> list[dict[str, Any]]:
    rows = []
    for minute in range(minutes):
        chunk = [r for r in results if minute * 60 <= r.scheduled_at - start < (minute + 1) * 60]
        latencies = [r.latency for r in chunk]
        rows.append({"minute": minute + 1, "requests": len(chunk), "rate": round(len(chunk) / 60, 1),
                     "errors": sum(1 for r in chunk if not r.ok), "p50_ms": _ms(percentile(latencies, 50)),
                     "p99_ms": _ms(percentile(latencies, 99)), "max_ms": _ms(max(latencies) if latencies else None)})
    return rows


def verdict(samples: list[dict[str, Any]], minutes: list[dict[str, Any]], *, rss_tolerance: float,
            socket_cap: int, p99_factor: float) -> dict[str, Any]:
    """Flat or not, and why: RSS, fds, p99 and errors, from minute 2 on."""
    if not samples:
        return {"flat": False, "reasons": ["no samples"]}
    # Minute 2's reference is its last sample (t = 120 s); the first minute warms caches up.
    # A run shorter than that (a smoke run) compares with its first sample.
    reference = next((s for s in samples if s["t"] >= 120), samples[0])
    last = samples[-1]
    reasons = []
    rss_change = (last["rss_kib_total"] - reference["rss_kib_total"]) / reference["rss_kib_total"]
    if abs(rss_change) > rss_tolerance:
        reasons.append(f"RSS changed {rss_change:+.1%} from minute 2 to the end")
    files = sorted({s["other_fds_total"] for s in samples if s["t"] >= reference["t"]})
    if len(files) > 1:
        reasons.append(f"non-socket fds varied: {files}")
    sockets_cap = samples[0]["sockets_total"] + socket_cap
    worst_sockets = max(s["sockets_total"] for s in samples)
    if worst_sockets > sockets_cap:
        reasons.append(f"open sockets reached {worst_sockets} (cap {sockets_cap})")
    # p99 stable: no later minute's p99 above p99_factor times minute 2's.
    base_p99 = minutes[1]["p99_ms"] if len(minutes) > 1 else minutes[0]["p99_ms"] if minutes else None
    later = [m for m in minutes[2:] if m["p99_ms"] is not None]
    worst = max(later, key=lambda m: m["p99_ms"], default=None)
    if base_p99 and worst is not None and worst["p99_ms"] > p99_factor * base_p99:
        reasons.append(f"p99 rose from {base_p99} ms (minute 2) to {worst['p99_ms']} ms (minute {worst['minute']})")
    errors = sum(m["errors"] for m in minutes)
    if errors:
        reasons.append(f"{errors} error(s)")
    return {"flat": not reasons, "reasons": reasons, "rss_change": round(rss_change, 4),
            "p99_ms_minute_2": base_p99, "p99_ms_worst_later": None if worst is None else worst["p99_ms"],
            "rss_kib_minute_2": reference["rss_kib_total"], "rss_kib_end": last["rss_kib_total"],
            "other_fds": files, "max_sockets": worst_sockets, "sockets_cap": sockets_cap, "errors": errors}


async def _soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sender = WeComSender()
    db = work / "wxcallback.db"
    config = write_config(work / "wxcallback.toml", f"sqlite:///{db}", sender.channel_config())
    server = ServerProcess(config, free_port(), args.workers, work, "server")
    server.start()
    load = Load(sender, server.port, args.connections)
    result: dict[str, Any] = {"ramp": []}
    try:
        await load.closed_loop(8, args.warmup)  # imports, caches, SQLite pages
        if args.rate is None:
            for concurrency in args.ramp:
                rate = await load.closed_loop(concurrency, args.ramp_seconds)
                result["ramp"].append({"concurrency": concurrency, "req_per_s": round(rate, 1)})
                print(f"ramp: {concurrency:3} concurrent: {rate:7.1f} req/s", flush=True)
            peak = max(step["req_per_s"] for step in result["ramp"])
            rate = peak / 2
        else:
            peak, rate = None, args.rate
        result["peak_req_per_s"], result["rate"] = peak, round(rate, 1)
        print(f"soak: {rate:.1f} req/s for {args.minutes} min", flush=True)
        load.results.clear()
        samples: list[dict[str, Any]] = []
        seen = 0
        start = time.monotonic()

        def tick(elapsed: float) -> None:
            nonlocal seen
            # The results kept so far never become garbage: freezing them keeps the generator's
            # own full collections short, so its pauses do not show up as server latency.
            gc.freeze()
            sample = _sample(server, load.results, seen, elapsed, db)
            seen = len(load.results)
            samples.append(sample)
            print(f"t={sample['t']:4}s  requests {sample['requests']:5}  errors {sample['errors']}  "
                  f"p99 {sample['p99_ms']} ms  RSS {sample['rss_kib_total'] / 1024:.1f} MiB  "
                  f"sockets {sample['sockets_total']}  other fds {sample['other_fds_total']}  "
                  f"db {sample['db_bytes'] / 1024:.0f} KiB", flush=True)

        tick(0.0)
        await load.open_loop(rate, args.minutes * 60, tick)
        result["samples"] = samples
        result["minutes"] = minutes_of(load.results, start, args.minutes)
        result["errors_by_kind"] = _error_kinds(load.results)
        result["verdict"] = verdict(samples, result["minutes"], rss_tolerance=args.rss_tolerance,
                                    socket_cap=args.connections, p99_factor=args.p99_factor)
    finally:
        load.close()
        server.stop()
    text = server.log.read_text(errors="replace")
    result["server_log_tracebacks"] = text.count("Traceback")
    return result


def _error_kinds(results: list[Result]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in results:
        if r.error:
            kinds[r.error] = kinds.get(r.error, 0) + 1
    return kinds


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak: steady load at half the peak; RSS, fds, p99 flat.")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=None, help="req/s (default: half the peak the ramp measures)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections of the client (the most requests in flight)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up before the ramp")
    parser.add_argument("--ramp", type=int, nargs="+", default=[4, 8, 16, 32], help="concurrency steps of the ramp")
    parser.add_argument("--ramp-seconds", type=float, default=6.0)
    parser.add_argument("--rss-tolerance", type=float, default=0.10,
                        help="largest change of the total RSS from minute 2 to the end (default 0.10)")
    parser.add_argument("--p99-factor", type=float, default=2.0,
                        help="no minute after the 2nd may have a p99 above this times minute 2's (default 2)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="no run: print the report of a saved result, its verdict judged again")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = parser.parse_args(argv)
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        result["verdict"] = verdict(result["samples"], result["minutes"], rss_tolerance=args.rss_tolerance,
                                    socket_cap=result["connections"], p99_factor=args.p99_factor)
        args.from_json.write_text(json.dumps(result, indent=2) + "\n")
        return report(result, args.from_json)
    signal.signal(signal.SIGTERM, _interrupt)
    work = temp_dir("wxcallback-soak-")
    started = time.time()
    sharing = other_load()
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    result = asyncio.run(_soak(args, work))
    result = {"command": " ".join(["reliability/soak.py", *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine(), "loadavg_at_start": loadavg, "busiest_processes_at_start": sharing,
              "workers": args.workers, "connections": args.connections,
              "wall_seconds": round(time.time() - started, 1), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return report(result, args.out)


def report(result: dict[str, Any], path: Path) -> int:
    print()
    print("t (s) | RSS MiB (all processes) | sockets | other fds | SQLite MiB | p99 ms (10 s)")
    for sample in result["samples"]:
        print(f"{sample['t']} | {sample['rss_kib_total'] / 1024:.1f} | {sample['sockets_total']} | "
              f"{sample['other_fds_total']} | {sample['db_bytes'] / 2**20:.1f} | {sample['p99_ms']}")
    print()
    print("minute | requests | req/s | errors | p50 ms | p99 ms | max ms")
    for row in result["minutes"]:
        print(" | ".join(str(row[k]) for k in ("minute", "requests", "rate", "errors", "p50_ms", "p99_ms", "max_ms")))
    outcome = result["verdict"]
    print(f"verdict: {'FLAT' if outcome['flat'] else 'NOT FLAT'}"
          + ("" if outcome["flat"] else f" ({'; '.join(outcome['reasons'])})"))
    print(f"results: {path}")
    return 0 if outcome["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
