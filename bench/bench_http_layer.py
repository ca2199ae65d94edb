"""The HTTP layer under attack and under load: uvicorn (plain, guarded, h11), hypercorn, granian.

    .venv/bin/pip install hypercorn granian          # the two candidates not in [server]
    .venv/bin/python bench/bench_http_layer.py        # prints two Markdown tables
    .venv/bin/python bench/bench_http_layer.py --only guarded,granian --json out.json

Each candidate serves the same ASGI app, one after another on 127.0.0.1:

- plain     uvicorn + httptools as it comes (``timeout_keep_alive`` 5 s);
- guarded   uvicorn + httptools with ``--http wxcallback.server.protocol:GuardedHTTPProtocol``
            (head 64 KiB / 100 fields, head timeout 5 s, 1,000 connections, idle ones evicted
            first) and the open-file limit raised at start, as ``wxcallback serve`` runs it;
- h11       uvicorn + h11: ``h11_max_incomplete_event_size`` 64 KiB, ``timeout_keep_alive`` 5 s,
            ``limit_concurrency`` 1,000;
- hypercorn hypercorn + uvloop: ``h11_max_incomplete_size`` 64 KiB, ``keep_alive_timeout`` 5 s,
            ``read_timeout`` 5 s, ``backlog`` 2048;
- granian   granian ASGI, HTTP/1: ``http1_buffer_size`` 64 KiB, ``http1_header_read_timeout``
            5 s, ``backpressure`` 1,000.

plain and h11 run through bench/server/nodelay.py so that, with two workers, uvicorn's
listener keeps TCP_NODELAY (guarded sets it per connection itself); nothing else changes.

Attacks run against the callback app (``wxcallback.server.app:app_from_environment``, a
WeCom app channel, memory store), one worker, with the open-file soft limit at the usual
1,024 (the hard limit as it is), the server restarted before each case. Every attack
goes over a raw socket:

- one 100 MiB header sent in 64 KiB pieces: the status, the time to the status line, how
  much the client got into the socket (an upper bound on what the server read), the peak
  growth of the server's RSS (all its processes), and meanwhile a signed WeCom URL check
  every 100 ms on another connection (its worst latency, and how many failed);
- 100,000 small headers (~1.2 MB) and 150 small headers (~2 KB, a count limit only);
- 1,100 sockets that send nothing, then a legitimate URL check: answered, and how fast;
  how many of the idle sockets the server closed within 15 s, and when;
- a request line and headers trickled one byte every 0.5 s: closed (or answered) after
  how long, up to 60 s.

Throughput: wrk (bench/server/requests.lua, 16 connections, 10 s after a 2 s warm-up)
with 1 and 2 workers, on two apps: a bare ASGI app that reads the body and answers
200 "ok", and the callback app answering fresh signed, encrypted WeCom callbacks (the
load of bench/bench_server.py: verify, replay guard, decrypt, dedup, echo, encrypt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
MIB = 1024 * 1024
HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 5
MAX_CONNECTIONS = 1000
USUAL_NOFILE = 1024
IDLE_SOCKETS = 1100


# -- the bare app (imported by the servers from this file) ----------------------------------


async def minimal_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Reads the request body and answers 200 "ok": the HTTP layer's own cost."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


# -- candidates -------------------------------------------------------------------------------

APPS = {
    # (import string, is a factory)
    "bare": ("bench_http_layer:minimal_app", False),
    "callback": ("wxcallback.server.app:app_from_environment", True),
}
RAISE_THEN_UVICORN = ("import sys; from wxcallback.server.protocol import raise_open_file_limit; "
                      f"raise_open_file_limit({MAX_CONNECTIONS + 64}); "
                      "from uvicorn.main import main; sys.argv[0] = 'uvicorn'; main()")


@dataclass
class Candidate:
    name: str
    settings: str
    argv: Callable[[str, int, int, Path], list[str]]
    env: dict[str, str] = field(default_factory=dict)


def _uvicorn_common(app: str, port: int, workers: int) -> list[str]:
    target, factory = APPS[app]
    return [target, *(["--factory"] if factory else []), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--log-level", "warning", "--no-access-log"]


def _plain(app: str, port: int, workers: int, scratch: Path) -> list[str]:
    return [sys.executable, str(BENCH / "server" / "nodelay.py"), "uvicorn", *_uvicorn_common(app, port, workers),
            "--http", "httptools"]


def _guarded(app: str, port: int, workers: int, scratch: Path) -> list[str]:
    return [sys.executable, "-c", RAISE_THEN_UVICORN, *_uvicorn_common(app, port, workers),
            "--http", "wxcallback.server.protocol:GuardedHTTPProtocol"]


def _h11(app: str, port: int, workers: int, scratch: Path) -> list[str]:
    return [sys.executable, str(BENCH / "server" / "nodelay.py"), "uvicorn", *_uvicorn_common(app, port, workers),
            "--http", "h11", "--h11-max-incomplete-event-size", str(HEAD_BYTES),
            "--timeout-keep-alive", str(HEAD_TIMEOUT), "--limit-concurrency", str(MAX_CONNECTIONS)]


def _hypercorn(app: str, port: int, workers: int, scratch: Path) -> list[str]:
    target, factory = APPS[app]
    config = scratch / "hypercorn.toml"
    config.write_text(f"h11_max_incomplete_size = {HEAD_BYTES}\nkeep_alive_timeout = {HEAD_TIMEOUT}\n"
                      f"read_timeout = {HEAD_TIMEOUT}\nbacklog = 2048\nloglevel = \"WARNING\"\n", encoding="utf-8")
    return [sys.executable, "-m", "hypercorn", "--config", str(config),
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "uvloop",
            target + ("()" if factory else "")]


def _granian(app: str, port: int, workers: int, scratch: Path) -> list[str]:
    target, factory = APPS[app]
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--http", "1", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--log-level", "warning",
            "--no-ws", "--http1-buffer-size", str(HEAD_BYTES),
            "--http1-header-read-timeout", str(HEAD_TIMEOUT * 1000), "--backpressure", str(MAX_CONNECTIONS),
            *(["--factory"] if factory else []), target]


CANDIDATES = [
    Candidate("plain", "uvicorn + httptools, defaults (timeout_keep_alive 5 s)", _plain),
    Candidate("guarded", "uvicorn + GuardedHTTPProtocol: head 64 KiB / 100 fields, head timeout 5 s, "
              "1,000 connections (idle evicted first), RLIMIT_NOFILE raised", _guarded,
              {"WXCALLBACK_HTTP_LIMITS": json.dumps({"max_header_bytes": HEAD_BYTES, "max_headers": 100,
                                                     "header_timeout": float(HEAD_TIMEOUT),
                                                     "max_connections": MAX_CONNECTIONS})}),
    Candidate("h11", "uvicorn + h11: h11_max_incomplete_event_size 64 KiB, timeout_keep_alive 5 s, "
              "limit_concurrency 1,000", _h11),
    Candidate("hypercorn", "hypercorn (uvloop): h11_max_incomplete_size 64 KiB, keep_alive_timeout 5 s, "
              "read_timeout 5 s, backlog 2048", _hypercorn),
    Candidate("granian", "granian ASGI HTTP/1: http1_buffer_size 64 KiB, http1_header_read_timeout 5 s, "
              "backpressure 1,000", _granian),
]


# -- running a server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _usual_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (USUAL_NOFILE, hard))


def _tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and all its descendants (granian and multi-worker servers fork)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


@contextmanager
def running(candidate: Candidate, app: str, workers: int, scratch: Path, config: Path,
            *, usual_limit: bool) -> Iterator[Running]:
    port = _free_port()
    log = scratch / f"{candidate.name}-{app}-{workers}.log"
    env = {**os.environ, **candidate.env, "WXCALLBACK_CONFIG": str(config),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH", "")]))}
    with log.open("ab") as output:
        # A session of its own, so stopping it stops its workers and nothing else.
        process = subprocess.Popen(candidate.argv(app, port, workers, scratch), env=env, stdout=output,
                                   stderr=output, start_new_session=True,
                                   preexec_fn=_usual_open_files if usual_limit else None)
    try:
        _wait_ready(process, port, log)
        yield Running(process, port, log)
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30.0) -> None:
    import hostile

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text(errors='replace')[-800:]}")
        try:
            if hostile.request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"", limit=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {timeout:.0f} s: {log.read_text(errors='replace')[-800:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    from bench_server import stop  # the same SIGTERM-then-SIGKILL of a process group

    stop(process)


# -- the attacks ------------------------------------------------------------------------------


def url_check_head() -> bytes:
    """A WeCom URL check as the platform sends it: signed, a fresh nonce, an encrypted echostr."""
    import bench_server

    nonce, timestamp = os.urandom(6).hex(), str(int(time.time()))
    echostr = bench_server.crypto.encrypt_reply("1234567890", nonce, timestamp=timestamp).encrypt
    signature = bench_server.crypto.sign(timestamp, nonce, echostr)
    target = (f"{bench_server.PATH}?msg_signature={signature}&timestamp={timestamp}&nonce={nonce}"
              f"&echostr={quote(echostr, safe='')}")
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


class Probe:
    """URL checks every ``interval`` on fresh connections, and the server's RSS, while an attack runs."""

    def __init__(self, port: int, pid: int, interval: float = 0.1) -> None:
        self.port, self.pid, self.interval = port, pid, interval
        self.latencies: list[float] = []
        self.failures = 0
        self.peak_rss = _tree_rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import hostile

        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, _tree_rss_mb(self.pid))
            try:
                answer = hostile.request(self.port, url_check_head(), b"", limit=10)
            except OSError:
                answer = None
            if answer is not None and answer.status == 200:
                self.latencies.append(answer.ms)
            else:
                self.failures += 1
            self._stop.wait(self.interval)


def _pieces(total: int, piece: bytes) -> Iterator[bytes]:
    for _ in range(total // len(piece)):
        yield piece


def big_header(run: Running) -> dict[str, Any]:
    import hostile

    before = _tree_rss_mb(run.process.pid)
    with Probe(run.port, run.process.pid) as probe:
        pieces = _pieces(100 * MIB, b"a" * 65536)
        answer = hostile.request(run.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ",
                                 (*pieces, b"\r\n\r\n"), limit=90)
        time.sleep(0.3)
    return {"status": answer.status, "ms": answer.ms, "sent_mib": round(answer.sent / MIB, 2),
            "rss_growth_mb": round(probe.peak_rss - before, 1),
            "probe_max_ms": max(probe.latencies, default=None),
            "probe_p50_ms": statistics.median(probe.latencies) if probe.latencies else None,
            "probe_count": len(probe.latencies), "probe_failures": probe.failures}


def many_headers(run: Running, count: int) -> dict[str, Any]:
    import hostile

    before = _tree_rss_mb(run.process.pid)
    block = b"".join(b"X-H%d: v\r\n" % index for index in range(count)) + b"\r\n"
    pieces = [block[start:start + 65536] for start in range(0, len(block), 65536)]
    with Probe(run.port, run.process.pid, interval=0.05) as probe:
        answer = hostile.request(run.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", pieces, limit=60)
        time.sleep(0.2)
    return {"status": answer.status, "ms": answer.ms, "head_kb": round(len(block) / 1024),
            "sent_kb": round(answer.sent / 1024), "rss_growth_mb": round(probe.peak_rss - before, 1)}


def _hold_idle(port: int, report: Any) -> None:
    """In a process of its own (its descriptors would be past select()'s range in ours): open
    the idle sockets, report how many connected, then when the server closes them."""
    sockets = []
    for _ in range(IDLE_SOCKETS):
        conn = socket.socket()
        conn.setblocking(False)
        conn.connect_ex(("127.0.0.1", port))
        sockets.append(conn)
    opened_at = time.monotonic()
    poller = select.poll()
    by_fd = {conn.fileno(): conn for conn in sockets}
    for fd in by_fd:
        poller.register(fd, select.POLLOUT)
    connected: set[int] = set()
    while len(connected) < len(by_fd) and time.monotonic() < opened_at + 5:
        for fd, _ in poller.poll(200):
            if not by_fd[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                connected.add(fd)
            poller.unregister(fd)
    report.send(len(connected))
    poller = select.poll()
    for fd in connected:
        poller.register(fd, select.POLLIN)
    closed_at: dict[int, float] = {}
    while len(closed_at) < len(connected) and time.monotonic() < opened_at + 15:
        for fd, _ in poller.poll(200):
            try:
                data = by_fd[fd].recv(4096)
            except OSError:
                data = b""
            if not data:
                closed_at[fd] = time.monotonic() - opened_at
                poller.unregister(fd)
    report.send(sorted(closed_at.values()))
    for conn in sockets:
        conn.close()


def idle_sockets(run: Running) -> dict[str, Any]:
    import multiprocessing

    import hostile

    ours, theirs = multiprocessing.Pipe()
    attacker = multiprocessing.get_context("fork").Process(target=_hold_idle, args=(run.port, theirs))
    attacker.start()
    connected = ours.recv()
    time.sleep(0.5)
    answer = hostile.request(run.port, url_check_head(), b"", limit=10)
    times = ours.recv()
    attacker.join()
    time.sleep(0.5)
    after = hostile.request(run.port, url_check_head(), b"", limit=10)
    return {"connected": connected, "status": answer.status, "ms": answer.ms, "closed_by_server": len(times),
            "first_closed_s": round(times[0], 1) if times else None,
            "median_closed_s": round(statistics.median(times), 1) if times else None,
            "after_status": after.status}


def trickle(run: Running) -> dict[str, Any]:
    import hostile

    data = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Trickle: yes\r\n" * 100
    answer = hostile.request(run.port, b"", (data[i:i + 1] for i in range(len(data))), pace=0.5, limit=60)
    return {"status": answer.status, "ms": answer.ms, "sent": answer.sent}


# -- throughput -------------------------------------------------------------------------------


def throughput(run: Running, app: str, scratch: Path, duration: float) -> dict[str, Any]:
    import bench_server

    messages = bench_server.Messages()
    if app == "callback":
        bench_server.check_answers(run.port, messages)
    warmup, requests = scratch / "warmup.txt", scratch / "requests.txt"
    messages.write(warmup, 5000)
    warm = bench_server.wrk(run.port, warmup, 2, 16, 1)
    messages.write(requests, max(20000, int(warm["rps"] * duration * 3)))
    cpu_before = bench_server.tree_cpu_s(run.process.pid)
    stats: dict[str, Any] = bench_server.wrk(run.port, requests, duration, 16, 1)
    stats["cpu_us_per_request"] = (bench_server.tree_cpu_s(run.process.pid) - cpu_before) * 1e6 / max(1, stats["requests"])
    if app == "callback":
        bench_server.check_answers(run.port, messages)
    return stats


# -- report -----------------------------------------------------------------------------------


def _s(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def attack_table(results: dict[str, dict[str, Any]]) -> str:
    rows = ["| candidate | 100 MiB header: status, time | client sent | RSS growth | URL check during it: "
            "worst (failed) | 100,000 headers | 150 headers | 1,100 idle, then a URL check | idle closed by "
            "server | trickled head |",
            "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | {r['error']} |" + " |" * 8)
            continue
        big, many, few, idle, slow = r["big_header"], r["many_headers"], r["150_headers"], r["idle"], r["trickle"]
        rows.append(
            f"| {name} | {big['status']}, {_s(big['ms'])} | {big['sent_mib']} MiB | +{big['rss_growth_mb']} MB "
            f"| {_s(big['probe_max_ms'])} ({big['probe_failures']} of {big['probe_count'] + big['probe_failures']})"
            f" | {many['status']}, {_s(many['ms'])}, +{many['rss_growth_mb']} MB | {few['status']} "
            f"| {idle['status']}, {_s(idle['ms'])} ({idle['connected']} connected) "
            f"| {idle['closed_by_server']} of {idle['connected']}"
            + (f", median {idle['median_closed_s']} s" if idle['closed_by_server'] else "")
            + f"; after: {idle['after_status']} | {slow['status']} after {_s(slow['ms'])} ({slow['sent']} B) |")
    return "\n".join(rows)


def throughput_table(results: dict[str, dict[str, Any]]) -> str:
    rows = ["| candidate | bare app, 1 worker | bare app, 2 workers | callback app, 1 worker | "
            "callback app, 2 workers |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        cells = []
        for key in ("bare-1", "bare-2", "callback-1", "callback-2"):
            runs = [stats for stats in r.get("throughput", {}).get(key, []) if "error" not in stats]
            failed = [stats for stats in r.get("throughput", {}).get(key, []) if "error" in stats]
            if not runs:
                cells.append(failed[0]["error"][:60] if failed else "-")
                continue
            best = max(runs, key=lambda stats: stats["rps"])
            errors = sum(stats["status"] + stats["read"] + stats["timeout"] + stats["connect"] for stats in runs)
            spread = f" ({min(s['rps'] for s in runs):,.0f}-{max(s['rps'] for s in runs):,.0f})" if len(runs) > 1 else ""
            cpu = min(stats["cpu_us_per_request"] for stats in runs) if "cpu_us_per_request" in best else None
            cells.append(f"{best['rps']:,.0f} req/s, p99 {best['p99_us'] / 1000:.1f} ms{spread}"
                         + (f", {cpu:,.0f} µs CPU/req" if cpu is not None else "")
                         + (f", {errors} errors" if errors else "") + (f", {len(failed)} failed" if failed else ""))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def versions() -> str:
    names = ["uvicorn", "httptools", "h11", "uvloop", "hypercorn", "granian", "starlette"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (absent)")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated candidates (default: all)")
    parser.add_argument("--no-attacks", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0, help="wrk seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per candidate and setting")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    import bench_server
    import hostile

    chosen = [c for c in CANDIDATES if not args.only or c.name in args.only.split(",")]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="wxcallback-http-layer-") as directory:
        scratch = Path(directory)
        config = scratch / "wxcallback.toml"
        config.write_text(f'[server]\nstore = "memory://"\nlog_level = "warning"\n\n[channels.wecom]\n'
                          f'path = "{bench_server.PATH}"\nplatform = "wecom-app"\ntoken = "{bench_server.TOKEN}"\n'
                          f'encoding_aes_key = "{bench_server.KEY}"\nreceive_id = "{bench_server.CORP_ID}"\n',
                          encoding="utf-8")
        for candidate in chosen:
            result: dict[str, Any] = results.setdefault(candidate.name, {"settings": candidate.settings})
            try:
                if not args.no_attacks:
                    cases: list[tuple[str, Callable[[Running], dict[str, Any]]]] = [
                        ("big_header", big_header),
                        ("many_headers", lambda run: many_headers(run, 100_000)),
                        ("150_headers", lambda run: many_headers(run, 150)),
                        ("idle", idle_sockets),
                        ("trickle", trickle),
                    ]
                    for case, attack in cases:
                        print(f"  {candidate.name}: {case} ...", file=sys.stderr, flush=True)
                        with running(candidate, "callback", 1, scratch, config, usual_limit=True) as run:
                            result[case] = attack(run)
                        print(f"    {result[case]}", file=sys.stderr, flush=True)
            except (RuntimeError, OSError) as exc:
                result["error"] = f"failed: {exc}"
        if not args.no_throughput:
            # In rounds, each candidate once per round, so load from elsewhere on the machine
            # spreads over all of them instead of landing on one.
            for round_number in range(args.rounds):
                for candidate in chosen:
                    for app in ("bare", "callback"):
                        for workers in (1, 2):
                            key = f"{app}-{workers}"
                            print(f"  round {round_number + 1}: {candidate.name} {key} ...", file=sys.stderr,
                                  flush=True)
                            load = os.getloadavg()[0]
                            try:
                                with running(candidate, app, workers, scratch, config, usual_limit=False) as run:
                                    stats = throughput(run, app, scratch, args.duration)
                            except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as exc:
                                stats = {"error": f"failed: {exc}"}
                            stats["load_before"] = load
                            results[candidate.name].setdefault("throughput", {}).setdefault(key, []).append(stats)
                            print(f"    {stats}", file=sys.stderr, flush=True)
    print(f"{hostile.machine()}; {versions()}\n")
    for name, r in results.items():
        print(f"- **{name}**: {r['settings']}")
    if not args.no_attacks:
        print("\nAttacks (callback app, 1 worker, open-file soft limit 1,024):\n")
        print(attack_table(results))
    if not args.no_throughput:
        print(f"\nThroughput (wrk, 1 thread, 16 connections, {args.duration:g} s after 2 s of warm-up; the best "
              f"of {args.rounds} rounds, p99 of that run, the range of req/s over the rounds, and the least "
              f"server CPU time per request over the rounds):\n")
        print(throughput_table(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": hostile.machine(), "versions": versions(), "results": results},
                                        indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
