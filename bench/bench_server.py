"""Callback server throughput: ``wxcallback serve`` against Flask, Starlette and Node peers, in one run.

    .venv/bin/python bench/bench_server.py [--workers 2] [--connections 16] [--duration 10] [--close] [--rounds 3]

Every server does the same job for a WeCom app channel: check msg_signature, decrypt
a ~300 B text message, parse it, drop duplicates by message, answer "echo: <content>"
as an encrypted reply. The servers run one after another on 127.0.0.1, each with the
same number of worker processes:

- wxcallback     ``wxcallback serve`` (uvicorn), demo echo handler, with the SQLite,
                 Redis and memory stores: replay guard (timestamp window; the signature binds the nonce)
                 and dedup (claim/complete) in the store, shared by the workers;
- flask          Flask + wechatpy 1.8.18 under gunicorn sync workers (bench/server/flask_wechatpy.py);
- starlette      Starlette + wechatpy 1.8.18 under uvicorn (bench/server/starlette_wechatpy.py);
- node           Node ``http`` + @wecom/crypto, ``cluster`` workers (bench/server/node_wecom.js),
                 installed with npm into a temp folder; skipped with the reason if npm/node fail.

The three peers dedup with a dict by MsgId per worker process and keep no replay guard.

Every wxcallback row is ``wxcallback serve --config`` exactly as a user runs it (it sets
TCP_NODELAY on its connections itself). uvicorn's own ``--workers`` listener loses TCP_NODELAY
on the asyncio loop (uvloop sets it anyway), which adds ~40 ms to responses, so the
Starlette peer runs through bench/server/nodelay.py.

Load: wrk with bench/server/requests.lua. Every request is a fresh message (unique
MsgId and nonce, current timestamp), signed and encrypted just before the run and read
from a file, so the replay guard and the dedup store do real work. The "retry" row
resends one message (a platform retry): the guard lets it through, dedup answers from
the cache. The "access log on" row runs at the default log level (info), one JSON access
line per request to the server's log file; the other wxcallback rows set ``log_level =
"warning"``. Each server is checked first (one reply decrypted and compared), then warmed
up, then measured. Latencies are wrk's (p50, p99 over all requests of the run); the server's
CPU time per request is the user + system time of its processes over the measured run, divided
by the requests (steadier than req/s on a shared machine); a second table splits it into user
and system time and counts the read and write system calls per request.

On a shared machine the same row moves by 20 % and more between runs, the Node row too, so one
run's ratio is a draw. ``--rounds N`` runs every server N times, one round after another, takes
each round's ratios to that round's Node row, and prints the median of each figure with the
range of the ratios; the targets are judged on the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from wxcallback.core import MessageCrypto
from wxcallback.core.safexml import parse_xml

BENCH = Path(__file__).resolve().parent
SERVERS = BENCH / "server"
LUA = SERVERS / "requests.lua"

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
PATH = "/wecom"
MESSAGE_BYTES = 300
TARGET_P99_MS = 10.0
# Throughput targets, as a fraction of the Node peer's in the same run.
TARGETS = {"sqlite": 0.6, "redis": 0.5, "memory (per worker)": 0.9}

crypto = MessageCrypto(TOKEN, KEY, CORP_ID)


# -- requests ---------------------------------------------------------------------------------


class Messages:
    """Signed, encrypted callbacks as WeCom sends them; MsgIds and nonces never repeat in a run."""

    def __init__(self) -> None:
        self._next = int(time.time() * 1000) * 1000
        self._run = os.urandom(3).hex()

    def plaintext(self, msg_id: int) -> str:
        head = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]>"
                f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                "<Content><![CDATA[")
        tail = f"]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
        filler = "hello " * MESSAGE_BYTES
        return head + filler[: max(1, MESSAGE_BYTES - len(head) - len(tail))] + tail

    def fresh(self) -> tuple[str, bytes, str]:
        """(path with query, body, content) of a message never sent before."""
        self._next += 1
        nonce = f"{self._run}{self._next % 10**9}"
        text = self.plaintext(self._next)
        timestamp = str(int(time.time()))
        encrypt = crypto.encrypt_reply(text, nonce, timestamp=timestamp).encrypt
        signature = crypto.sign(timestamp, nonce, encrypt)
        body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        content = text.split("<Content><![CDATA[")[1].split("]]>")[0]
        return f"{PATH}?msg_signature={signature}&timestamp={timestamp}&nonce={nonce}", body.encode(), content

    def write(self, path: Path, count: int, *, retry: bool = False) -> None:
        """``count`` requests, one per line; with ``retry`` the same request ``count`` times."""
        with path.open("w", encoding="utf-8") as out:
            if retry:
                target, body, _ = self.fresh()
                line = f"{target}\t{body.decode()}\n"
                out.write(line * count)
                return
            for _ in range(count):
                target, body, _ = self.fresh()
                out.write(f"{target}\t{body.decode()}\n")


def open_reply(body: bytes, nonce: str) -> dict[str, str]:
    """Check a reply as WeCom would (signature, decryption, CorpID) and return its fields."""
    envelope = parse_xml(body)
    fields = {child.tag: child.text for child in envelope}
    if fields.get("Nonce") != nonce:
        raise AssertionError(f"the reply does not echo the nonce: {body[:200]!r}")
    text = crypto.decrypt(body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]).text
    return {child.tag: child.text for child in parse_xml(text)}


def post(port: int, target: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{target}", data=body, method="POST",
                                     headers={"Content-Type": "application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check_answers(port: int, messages: Messages) -> None:
    """One fresh message and its retry must both get the encrypted echo."""
    target, body, content = messages.fresh()
    nonce = target.rsplit("nonce=", 1)[1]
    for attempt in ("first", "retry"):
        status, reply = post(port, target, body)
        if status != 200:
            raise AssertionError(f"{attempt} request answered {status}: {reply[:200]!r}")
        fields = open_reply(reply, nonce)
        if fields.get("Content") != f"echo: {content}" or fields.get("ToUserName") != "zhangsan":
            raise AssertionError(f"{attempt} request: unexpected reply {fields}")


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    store: str
    does: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    retry: bool = False


@dataclass
class Result:
    server: Server
    workers: int
    stats: dict[str, Any] | None = None
    skipped: str = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(server: Server, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **server.env, "BENCH_TOKEN": TOKEN, "BENCH_AES_KEY": KEY, "BENCH_CORP_ID": CORP_ID}
    with log.open("wb") as errors:
        # A session of its own, so stopping it stops its workers and nothing else.
        process = subprocess.Popen(server.argv, env=env, stdout=errors, stderr=errors, start_new_session=True)
        try:
            wait_ready(process, port, log)
            yield process
        finally:
            stop(process)


def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text(errors='replace')[-800:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {timeout:.0f} s: {log.read_text(errors='replace')[-800:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Usage(NamedTuple):
    """What ``pid`` and its live descendants have used so far: CPU seconds in user space and in
    the kernel, and read and write system calls (``/proc/<pid>/io``; None where unreadable)."""

    user_s: float
    system_s: float
    reads: int | None
    writes: int | None

    def per_request(self, before: Usage, requests: int) -> dict[str, float | None]:
        count = max(1, requests)

        def calls(now: int | None, then: int | None) -> float | None:
            return None if now is None or then is None else (now - then) / count

        return {"cpu_us": (self.user_s + self.system_s - before.user_s - before.system_s) * 1e6 / count,
                "user_us": (self.user_s - before.user_s) * 1e6 / count,
                "system_us": (self.system_s - before.system_s) * 1e6 / count,
                "reads": calls(self.reads, before.reads), "writes": calls(self.writes, before.writes)}


def tree_usage(pid: int) -> Usage:
    """``Usage`` of ``pid`` and its live descendants. CPU time per request is a cost that other
    load on the machine disturbs far less than requests per second; its split, and the system
    calls, say where it goes (the kernel's share, a store's file or socket traffic)."""
    children: dict[int, list[int]] = {}
    times: dict[int, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            times[int(entry.name)] = (int(fields[11]) / tick, int(fields[12]) / tick)
    user = system = 0.0
    reads: int | None = 0
    writes: int | None = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        if current not in times:
            continue
        user, system = user + times[current][0], system + times[current][1]
        try:
            io = dict(line.split(":", 1) for line in Path(f"/proc/{current}/io").read_text().splitlines())
            if reads is not None and writes is not None:
                reads, writes = reads + int(io["syscr"]), writes + int(io["syscw"])
        except (OSError, KeyError, ValueError):
            reads = writes = None
    return Usage(user, system, reads, writes)


def wrk(port: int, requests: Path, duration: float, connections: int, threads: int,
        close: bool = False) -> dict[str, Any]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
            "-s", str(LUA), f"http://127.0.0.1:{port}"]
    env = {**os.environ, "WRK_REQUESTS": str(requests), "WRK_THREADS": str(threads), "WRK_CLOSE": "1" if close else ""}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            stats: dict[str, Any] = json.loads(line[len("WRK_JSON "):])
            stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
            return stats
    raise RuntimeError(f"wrk gave no summary: {done.stdout[-500:]} {done.stderr[-500:]}")


def node_modules(reason: list[str]) -> Path | None:
    """A node_modules folder with @wecom/crypto, installed into a temp folder (None: say why)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        reason.append("node or npm is not installed")
        return None
    folder = Path(tempfile.gettempdir()) / "wxcallback-bench-node"
    modules = folder / "node_modules"
    if not (modules / "@wecom" / "crypto" / "package.json").exists():
        folder.mkdir(exist_ok=True)
        try:
            subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder),
                            "@wecom/crypto"], check=True, capture_output=True, timeout=180)
        except (subprocess.SubprocessError, OSError) as exc:
            reason.append(f"npm install @wecom/crypto failed: {str(exc)[:200]}")
            return None
    return modules


def redis_reachable(url: str) -> str:
    """'' when Redis answers at ``url``, else the reason."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:  # any connection failure means: skip this row
        return f"Redis at {url} does not answer: {type(exc).__name__}"
    return ""


def clean_redis(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    client.close()
    return len(keys)


def servers(args: argparse.Namespace, scratch: Path, skipped: list[tuple[Server, str]]) -> list[Server]:
    workers = str(args.workers)
    python = sys.executable
    channel = (f'[channels.wecom]\npath = "{PATH}"\nplatform = "wecom-app"\ntoken = "{TOKEN}"\n'
               f'encoding_aes_key = "{KEY}"\nreceive_id = "{CORP_ID}"\n')
    config = scratch / "wxcallback.toml"
    config.write_text(f'[server]\nlog_level = "warning"\n\n{channel}', encoding="utf-8")
    # log_level left at its default (info): one access line per request, to the server's log file
    logged = scratch / "wxcallback-info.toml"
    logged.write_text(channel, encoding="utf-8")
    # uvicorn's own --workers listener loses TCP_NODELAY; ``wxcallback serve`` sets it itself
    # (server/connections.py), the Starlette peer runs through the wrapper.
    nodelay = [python, str(SERVERS / "nodelay.py")]
    ours_does = ("verify, replay guard (timestamp window), decrypt, parse, dedup claim/complete, "
                 "echo handler under a deadline, encrypt; access log off (log_level warning)")

    def ours(store_name: str, url: str, *, retry: bool = False, access_log: bool = False) -> Server:
        name = "wxcallback (retry)" if retry else "wxcallback (access log on)" if access_log else "wxcallback"
        does = ours_does.replace("access log off (log_level warning)", "access log on (log_level info, the "
                                 "default): one JSON line per request") if access_log else ours_does
        # As a user runs it: the installed command, nothing wrapped.
        launcher = str(Path(python).parent / "wxcallback")
        return Server(name, store_name, does, [launcher, "serve", "--config", str(logged if access_log else config),
                                               "--store", url, "--workers", workers, "--port", "{port}"], retry=retry)

    peer_does = "verify, decrypt, parse, dedup dict by MsgId per process, encrypt; no replay guard"
    everything = {
        "flask": Server("flask+wechatpy", "dict", peer_does + " (gunicorn sync workers, no keep-alive)",
                        [python, "-m", "gunicorn", "--workers", workers, "--bind", "127.0.0.1:{port}",
                         "--chdir", str(SERVERS), "flask_wechatpy:app"]),
        "starlette": Server("starlette+wechatpy", "dict", peer_does + " (uvicorn)",
                            [*nodelay, "uvicorn", "starlette_wechatpy:app", "--app-dir", str(SERVERS),
                             "--workers", workers, "--port", "{port}", "--no-access-log", "--log-level",
                             "warning"]),
    }
    node_reason: list[str] = []
    modules = node_modules(node_reason) if "node" in args.servers else None
    node = Server("node+@wecom/crypto", "Map", peer_does.replace("dict", "Map") + " (bare http, cluster)",
                  ["node", str(SERVERS / "node_wecom.js")],
                  {"NODE_PATH": str(modules), "BENCH_WORKERS": workers, "BENCH_PORT": "{port}"})
    if modules is not None:
        everything["node"] = node
    elif "node" in args.servers:
        skipped.append((node, node_reason[0]))
    for store_name in args.stores:
        if store_name == "sqlite":
            everything["ours-sqlite"] = ours("sqlite", f"sqlite:///{scratch / 'bench.db'}")
            everything["ours-sqlite-retry"] = ours("sqlite", f"sqlite:///{scratch / 'retry.db'}", retry=True)
            everything["ours-sqlite-logged"] = ours("sqlite", f"sqlite:///{scratch / 'logged.db'}", access_log=True)
        elif store_name == "memory":
            everything["ours-memory"] = ours("memory (per worker)", "memory://")
        elif store_name == "redis":
            reason = redis_reachable(args.redis)
            url = f"{args.redis}?prefix={args.redis_prefix}"
            if reason:
                skipped.append((ours("redis", url), reason))
            else:
                everything["ours-redis"] = ours("redis", url)
    order = ["flask", "starlette", "node", "ours-sqlite", "ours-redis", "ours-memory", "ours-sqlite-retry",
             "ours-sqlite-logged"]
    wanted = set(args.servers) | ({key for key in order if key.startswith("ours-")}
                                  if "wxcallback" in args.servers else set())
    return [everything[key] for key in order if key in everything and key in wanted]


def memory_backed() -> str | None:
    """Where wrk's request files go: a RAM-backed folder when there is one.

    They are hundreds of MB per server (a fresh message per request). Written to the disk the
    SQLite store is on, their writeback made the store's fsyncs (its WAL checkpoints and the WAL's
    restarts) wait 100 ms and more: the SQLite row's p99 was 39-46 ms right after the Node row,
    whose files are the largest, and 6-7 ms without it (docs/bench_server.md, "SQLite store").
    """
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def measure(server: Server, args: argparse.Namespace, scratch: Path, inputs: Path, messages: Messages) -> Result:
    port = free_port()
    server.argv = [part.replace("{port}", str(port)) for part in server.argv]
    server.env = {name: value.replace("{port}", str(port)) for name, value in server.env.items()}
    log = scratch / (re.sub(r"[^a-z0-9]+", "-", f"{server.name} {server.store}".lower()) + ".log")
    result = Result(server, args.workers)
    print(f"  {server.name} [{server.store}] on :{port} ...", file=sys.stderr, flush=True)
    try:
        with running(server, port, log) as process:
            check_answers(port, messages)
            warmup = inputs / "warmup.txt"
            messages.write(warmup, args.warmup_requests, retry=server.retry)
            warm = wrk(port, warmup, args.warmup, args.connections, args.threads, args.close)
            # Enough fresh messages for the run at three times the warm-up rate: a wrap would resend.
            count = max(20000, int(warm["rps"] * args.duration * 3))
            requests = inputs / "requests.txt"
            messages.write(requests, count, retry=server.retry)
            before = tree_usage(process.pid)
            result.stats = wrk(port, requests, args.duration, args.connections, args.threads, args.close)
            result.stats.update(tree_usage(process.pid).per_request(before, result.stats["requests"]))
            result.stats["prepared"] = count
            check_answers(port, messages)  # still answering correctly after the load
    except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as exc:
        result.skipped = f"failed: {exc}"
    return result


# -- report -----------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in ("uvicorn", "starlette", "gunicorn", "flask", "wechatpy"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    http = "httptools" if _importable("httptools") else "h11"
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("node") else "no node"
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu}), "
            f"Python {platform.python_version()} ({interpreter()}), {', '.join(versions)} "
            f"(uvicorn on {loop} + {http}), "
            f"node {node}, {wrk_version}")


def interpreter() -> str:
    """Where the interpreter of this run (and of every Python server in it) comes from.

    Its build moves every Python row: the same code needed a quarter more CPU per request on
    a build without profile-guided and link-time optimisation (docs/deployment.md)."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    # Debian's PGO build does not show in CONFIG_ARGS (those are its shared build's): the path tells it.
    optimized = "--enable-optimizations" in str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    return f"{base}, built with --enable-optimizations" if optimized else str(base)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def aligned(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table whose columns line up in a terminal too."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(head, widths)) + " |",
             "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    lines += ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


def table(results: list[Result], skipped: list[tuple[Server, str]]) -> str:
    baseline = next((r.stats["rps"] for r in results if r.stats and r.server.name == "node+@wecom/crypto"), None)
    head = ("server", "store", "workers", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "errors (http/socket)",
            "vs node")
    rows = []
    for result in results:
        stats = result.stats
        if stats is None:
            rows.append((result.server.name, result.server.store, str(result.workers), "-", "-", "-", "-", "-",
                         result.skipped[:60]))
            continue
        sockets = stats["connect"] + stats["read"] + stats["write"] + stats["timeout"]
        ratio = f"{stats['rps'] / baseline:.2f}x" if baseline else "-"
        rows.append((result.server.name, result.server.store, str(result.workers), f"{stats['rps']:,.0f}",
                     f"{stats['p50_us'] / 1000:.2f}", f"{stats['p99_us'] / 1000:.2f}", f"{stats['cpu_us']:.0f}",
                     f"{stats['status']}/{sockets}", ratio))
    for server, reason in skipped:
        rows.append((server.name, server.store, "-", "-", "-", "-", "-", "-", f"skipped: {reason}"[:60]))
    return aligned(head, rows)


def split(results: list[Result]) -> str:
    """Where each server's CPU per request goes, and its system calls per request."""
    lines = ["| server | store | user µs/req | system µs/req | reads/req | writes/req |", "|---|---|---|---|---|---|"]

    def calls(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for result in results:
        stats = result.stats
        if stats is not None:
            lines.append(f"| {result.server.name} | {result.server.store} | {stats['user_us']:.0f} | "
                         f"{stats['system_us']:.0f} | {calls(stats['reads'])} | {calls(stats['writes'])} |")
    return "\n".join(lines)


def ratios(results: list[Result]) -> dict[tuple[str, str], float]:
    """Each measured row's req/s over the Node row's of the same round."""
    node = next((r.stats["rps"] for r in results if r.stats and r.server.name == "node+@wecom/crypto"), None)
    if not node:
        return {}
    return {(r.server.name, r.server.store): r.stats["rps"] / node for r in results if r.stats}


def medians(rounds: list[list[Result]]) -> str:
    """Per row: the median of each figure over the rounds, and the range of its ratio to Node."""
    head = ("server", "store", "rounds", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "vs node (median)",
            "vs node (range)")
    per_round = [ratios(results) for results in rounds]
    rows = []
    for result in rounds[0]:
        name = (result.server.name, result.server.store)
        measured = [r.stats for results in rounds for r in results
                    if r.stats and (r.server.name, r.server.store) == name]
        if not measured:
            continue
        shares = [found[name] for found in per_round if name in found]
        rows.append((*name, str(len(measured)), f"{statistics.median(m['rps'] for m in measured):,.0f}",
                     f"{statistics.median(m['p50_us'] for m in measured) / 1000:.2f}",
                     f"{statistics.median(m['p99_us'] for m in measured) / 1000:.2f}",
                     f"{statistics.median(m['cpu_us'] for m in measured):.0f}",
                     f"{statistics.median(shares):.2f}x" if shares else "-",
                     f"{min(shares):.2f}-{max(shares):.2f}x" if shares else "-"))
    return aligned(head, rows)


def verdict(rounds: list[list[Result]]) -> list[str]:
    per_round = [ratios(results) for results in rounds]
    lines = []
    for store, target in TARGETS.items():
        name = ("wxcallback", store)
        shares = [found[name] for found in per_round if name in found]
        if not shares:
            continue
        ratio = statistics.median(shares)
        p99 = statistics.median(r.stats["p99_us"] for results in rounds for r in results
                                if r.stats and (r.server.name, r.server.store) == name) / 1000
        met = ratio >= target and p99 <= TARGET_P99_MS
        of = f" (median of {len(shares)} rounds, {min(shares):.2f}-{max(shares):.2f}x)" if len(shares) > 1 else ""
        lines.append(f"target ({store}): >= {target}x node+@wecom/crypto and p99 <= {TARGET_P99_MS:g} ms: "
                     f"{ratio:.2f}x, p99 {p99:.2f} ms{of} -> {'met' if met else 'MISSED'}")
    wrapped = sorted({f"{r.server.name} [{r.server.store}]" for results in rounds for r in results
                      if r.stats and r.stats["wrapped"] and not r.server.retry})
    if wrapped:
        lines.append("WARNING: ran out of fresh messages and resent some: " + ", ".join(wrapped))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="worker processes per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--close", action="store_true",
                        help="a new connection for every request (Connection: close), as a client that keeps none")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the load generator's own CPU)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--warmup-requests", type=int, default=20000)
    parser.add_argument("--servers", nargs="+", default=["flask", "starlette", "node", "wxcallback"],
                        choices=["flask", "starlette", "node", "wxcallback", "ours"])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "redis", "memory"],
                        choices=["sqlite", "redis", "memory"])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-prefix", default=f"wxcallback-bench-{os.getpid()}:")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every server this many times, round after round; report medians")
    parser.add_argument("--stages", action="store_true",
                        help="then print bench_stages.py's µs per stage of one request, per store")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if "ours" in args.servers:
        args.servers = [name for name in args.servers if name != "ours"] + ["wxcallback"]
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    print(machine())
    print(f"{args.workers} workers per server, {args.connections} connections"
          f"{' (a new one per request)' if args.close else ''}, {args.threads} wrk thread(s), "
          f"{args.warmup:g} s warm-up + {args.duration:g} s per server, ~{MESSAGE_BYTES} B text message, "
          f"every request a fresh message unless marked retry", flush=True)
    skipped: list[tuple[Server, str]] = []
    rounds: list[list[Result]] = []
    with tempfile.TemporaryDirectory(prefix="wxcallback-bench-") as folder, \
            tempfile.TemporaryDirectory(prefix="wxcallback-bench-inputs-", dir=memory_backed()) as inputs:
        messages = Messages()
        try:
            for number in range(1, args.rounds + 1):
                scratch = Path(folder) / f"round-{number}"  # fresh SQLite files every round
                scratch.mkdir()
                if args.rounds > 1:
                    print(f"round {number} of {args.rounds}", file=sys.stderr, flush=True)
                skipped = []
                rounds.append([measure(server, args, scratch, Path(inputs), messages)
                               for server in servers(args, scratch, skipped)])
        finally:
            if "redis" in args.stores and not redis_reachable(args.redis):
                clean_redis(args.redis, args.redis_prefix)
    for number, results in enumerate(rounds, 1):
        print()
        if args.rounds > 1:
            print(f"round {number}:")
        print(table(results, skipped))
        print()
        print(split(results))
    if args.rounds > 1:
        print()
        print(f"medians of {len(rounds)} rounds (each ratio to its own round's Node row):")
        print(medians(rounds))
    print()
    for server in {r.server.name: r.server for r in rounds[0]}.values():
        print(f"{server.name}: {server.does}")
    for line in verdict(rounds):
        print(line)
    if args.stages:
        print(flush=True)
        stages = [sys.executable, str(BENCH / "bench_stages.py")]
        stages += ["--redis", args.redis] if "redis" in args.stores and not redis_reachable(args.redis) else ["--redis", ""]
        subprocess.run(stages, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
