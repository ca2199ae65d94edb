"""Where one callback's time goes: µs per stage of the in-process pipeline, and per store.

    .venv/bin/python bench/bench_stages.py [--redis redis://127.0.0.1:6379/0] [--rounds 7]

Each stage is timed alone, on the very objects ``CallbackServer`` builds for a WeCom app
text message (~300 B, encrypted) and a smart-robot text message (JSON, encrypted): best
of ``--rounds`` batches of ``--count`` calls, in µs per call. The last rows time the whole
``CallbackServer.respond`` one request at a time (fresh messages, so the store does real
work), with the memory, SQLite and Redis stores. Metrics are timed both in one process and
as ``wxcallback serve`` runs them with several workers (prometheus_client's multiprocess
mode, set up in a child process since the mode is chosen at import).

A stage timed alone runs on the same, warm objects over and over. The last table times the
same stages inside ``respond`` on fresh messages (memory store, each stage wrapped in a
timer: ~0.1 µs each), as a worker meets them: every message's bytes and objects are new.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.platform_requests import APPID, KEY, TOKEN, Platform, robot_text, wecom_text  # noqa: E402

from wxcallback.core import extract_encrypt  # noqa: E402
from wxcallback.core.encoding import strict_b64decode  # noqa: E402
from wxcallback.messages import parse_message  # noqa: E402
from wxcallback.server.config import parse_config  # noqa: E402
from wxcallback.server.dispatch import CLAIM_LEASE_MARGIN  # noqa: E402
from wxcallback.server.http import parse_query  # noqa: E402
from wxcallback.server.observe import Metrics, Outcome, log_request  # noqa: E402
from wxcallback.server.runtime import CallbackServer  # noqa: E402
from wxcallback.server.stores import MemoryStore, open_store  # noqa: E402

CONTENT = "hello " * 40  # a ~300 B WeCom plaintext once wrapped in its XML


def config(store: str) -> Any:
    return parse_config({"server": {"store": store, "log_level": "warning"}, "channels": {
        "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                  "receive_id": APPID},
        "robot": {"path": "/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY}}})


def best(call: Callable[[], object], count: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            call()
        times.append(time.perf_counter() - started)
    return min(times) / count * 1e6


async def best_async(call: Callable[[], Awaitable[object]], count: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            await call()
        times.append(time.perf_counter() - started)
    return min(times) / count * 1e6


class Requests:
    """Fresh signed, encrypted requests for one channel: (path, query bytes, body)."""

    def __init__(self, platform: str, path: str) -> None:
        self.side = Platform(platform, path, receive_id="" if platform == "wecom-robot" else APPID)
        self.text = robot_text if platform == "wecom-robot" else wecom_text

    def make(self, count: int) -> list[tuple[str, bytes, bytes]]:
        made = []
        for _ in range(count):
            url, body = self.side.callback(self.text(CONTENT))
            path, _, query = url.partition("?")
            made.append((path, query.encode(), body))
        return made


async def stages(name: str, requests: Requests, server: CallbackServer, count: int, rounds: int) -> dict[str, float]:
    pipeline = await server.start()
    path, query_string, body = requests.make(1)[0]
    endpoint = pipeline.endpoint_for(path)
    assert endpoint is not None and endpoint.crypto is not None
    crypto = endpoint.crypto
    query = parse_query(query_string)
    signature, timestamp, nonce = query["msg_signature"], query["timestamp"], query["nonce"]
    encrypt = extract_encrypt(body, crypto.envelope)
    decrypted = crypto.decrypt_ciphertext(encrypt, signature, timestamp, nonce)
    message = parse_message(decrypted.text, endpoint.channel.platform)
    dispatcher = pipeline._dispatcher  # noqa: SLF001 - timing its parts
    channel = endpoint.channel
    assert channel.handler is not None
    reply = await channel.handler(message)
    answer = dispatcher._render(channel, message, reply)  # noqa: SLF001
    outcome = Outcome("ok", channel=name, msg_type="text")
    metrics = Metrics()
    raw = crypto.keys.current.cipher

    result = {
        "query parsing": best(lambda: parse_query(query_string), count, rounds),
        "envelope (Encrypt out of XML/JSON)": best(lambda: extract_encrypt(body, crypto.envelope), count, rounds),
        "signature (SHA-1, compare)": best(lambda: crypto.verify_msg_signature(signature, timestamp, nonce, encrypt),
                                           count, rounds),
        "decrypt (base64, AES, frame)": best(lambda: raw.open(strict_b64decode(encrypt)), count, rounds),
        "replay window": best(lambda: endpoint.replay.check_timestamp(timestamp), count, rounds),
        "message parse (XML/JSON)": best(lambda: parse_message(decrypted.text, channel.platform), count, rounds),
        "dedup key": best(lambda: message.dedup_key, count, rounds),
        "handler (router dispatch)": await best_async(lambda: channel.handler(message), count, rounds),  # type: ignore[misc]
        "handler under deadline (task + timer)": await best_async(
            lambda: dispatcher._run(channel, message, "k", "k", None, None), count, rounds),  # noqa: SLF001
        "render reply": best(lambda: dispatcher._render(channel, message, reply), count, rounds),  # noqa: SLF001
        "cache entry (JSON)": best(lambda: answer.to_cache(), count, rounds),
        "encrypt reply (AES, sign, envelope)": best(
            lambda: crypto.encrypt(answer.text, nonce, reply_to=decrypted), count, rounds),
        "metrics (one process)": best(lambda: metrics.observe(outcome, 0.001), count, rounds),
        "access log (off, level warning)": best(lambda: log_request("POST", path, 200, outcome, 0.0), count, rounds),
    }
    return result


async def store_trips(url: str, count: int) -> dict[str, float]:
    """µs per call, one at a time, of the store calls a fresh message makes."""
    store = open_store(url)
    await store.start()
    stamp = f"{os.getpid()}-{time.time_ns()}"
    keys = [f"bench:dedup:{stamp}:{i}" for i in range(count)]
    ttl = 5 + CLAIM_LEASE_MARGIN
    memory = store if isinstance(store, MemoryStore) else None  # the server calls its claim_now / complete_now
    reply = b'{"kind":"reply","text":"x"}'
    started = time.perf_counter()
    for key in keys:
        memory.claim_now(key, ttl) if memory is not None else await store.claim(key, ttl)
    claimed = time.perf_counter()
    for key in keys:
        if memory is not None:
            memory.complete_now(key, reply, "application/json", 300)
        else:
            await store.complete(key, reply, "application/json", 300)
    completed = time.perf_counter()
    for key in keys:
        memory.claim_now(key, ttl) if memory is not None else await store.claim(key, ttl)
    again = time.perf_counter()
    await store.close()
    return {"claim (new)": (claimed - started) / count * 1e6, "complete": (completed - claimed) / count * 1e6,
            "claim (retry, cached)": (again - completed) / count * 1e6}


async def whole(url: str, count: int, rounds: int) -> dict[str, float]:
    """µs per ``respond`` of a fresh message, one request at a time."""
    server = CallbackServer(config(url))
    await server.start()
    found = {}
    for name, requests in (("wecom", Requests("wecom-app", "/wecom")), ("robot", Requests("wecom-robot", "/robot"))):
        batches = [requests.make(count) for _ in range(rounds + 1)]
        for path, query, body in batches[0][:200]:  # warm-up
            handled = await server.respond("POST", path, query, body, len(body))
            assert handled.status == 200, handled
        times = []
        for batch in batches[1:]:
            started = time.perf_counter()
            for path, query, body in batch:
                await server.respond("POST", path, query, body, len(body))
            times.append(time.perf_counter() - started)
        found[name] = min(times) / count * 1e6
    await server.stop()
    return found


def _timed_parts() -> list[tuple[Any, str, str]]:
    """What the "inside respond" table wraps: (owner, attribute, row); "a: b" is a part of a."""
    import wxcallback.server.inbound as inbound
    import wxcallback.server.runtime as runtime
    from wxcallback.core.crypto import MessageCrypto
    from wxcallback.server.dispatch import Dispatcher
    from wxcallback.server.inbound import InboundProtocol

    return [
        (InboundProtocol, "handle", "pipeline (InboundProtocol.handle)"),
        (inbound, "parse_query", "pipeline: query parsing"),
        (inbound, "extract_encrypt", "pipeline: envelope"),
        (MessageCrypto, "decrypt_ciphertext", "pipeline: signature + decrypt"),
        (inbound, "parse_message", "pipeline: message parse"),
        (Dispatcher, "dispatch", "pipeline: dispatch (dedup, handler, render, cache)"),
        (MemoryStore, "claim_now", "dispatch: claim"),
        (Dispatcher, "_run", "dispatch: handler under deadline"),
        (Dispatcher, "_render", "dispatch: render reply"),
        (Dispatcher, "_cache_later", "dispatch: cache the reply"),
        (MessageCrypto, "encrypt", "pipeline: encrypt reply"),
        (runtime, "log_request", "access log (off)"),
        (Metrics, "observe", "metrics"),
    ]


def _wrap(function: Callable[..., Any], spent: collections.Counter[str], row: str) -> Callable[..., Any]:
    clock = time.perf_counter_ns
    if asyncio.iscoroutinefunction(function):
        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await function(*args, **kwargs)
            finally:
                spent[row] += clock() - started
        return timed_async

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent[row] += clock() - started
    return timed


async def inside_respond(count: int, rounds: int) -> dict[str, float]:
    """µs per request of each stage inside ``respond`` (memory store, fresh WeCom messages)."""
    spent: collections.Counter[str] = collections.Counter()
    parts = _timed_parts()
    # what each owner held itself (an inherited method is not put back as its own)
    originals = [(owner, name, vars(owner).get(name)) for owner, name, _ in parts]
    for owner, name, row in parts:
        setattr(owner, name, _wrap(getattr(owner, name), spent, row))
    try:
        server = CallbackServer(config("memory://"))
        await server.start()
        requests = Requests("wecom-app", "/wecom")
        for path, query, body in requests.make(200):  # warm-up
            await server.respond("POST", path, query, body, len(body))
        best: dict[str, float] | None = None
        for _ in range(rounds):
            batch = requests.make(count)
            spent.clear()
            started = time.perf_counter_ns()
            for path, query, body in batch:
                await server.respond("POST", path, query, body, len(body))
            spent["respond (the whole request)"] = time.perf_counter_ns() - started
            found = {row: spent[row] / count / 1000 for row in ["respond (the whole request)"] +
                     [row for _, _, row in parts]}
            if best is None or found["respond (the whole request)"] < best["respond (the whole request)"]:
                best = found
        await server.stop()
    finally:
        for owner, name, original in originals:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
    assert best is not None
    return best


def multiprocess_metrics(count: int, rounds: int) -> float:
    """metrics.observe as ``wxcallback serve`` runs it with several workers (child process, on a
    loop, so it tallies), with the flush to the worker's files that follows every batch."""
    with tempfile.TemporaryDirectory() as folder:
        code = (
            "import sys; sys.path.insert(0, %r); from bench.bench_stages import best; import asyncio; "
            "from wxcallback.server.observe import Metrics, Outcome; m = Metrics(); "
            "o = Outcome('ok', channel='wecom', msg_type='text'); "
            "\ndef batch():\n    for _ in range(%d): m.observe(o, 0.001)\n    m.flush()\n"
            "async def run(): return best(batch, 1, %d) / %d\n"
            "print(asyncio.run(run()))" % (str(ROOT), count, rounds, count)
        )
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder},
                              capture_output=True, text=True, check=True)
        return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=7, help="batches; the best is reported")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="'' to skip Redis")
    args = parser.parse_args(argv)

    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            stores = {"memory": "memory://", "sqlite": f"sqlite:///{folder}/stages.db"}
            if args.redis:
                stores["redis"] = f"{args.redis}?prefix=wxcallback-stages-{os.getpid()}:"
            server = CallbackServer(config("memory://"))
            columns = {}
            for name, platform, path in (("wecom", "wecom-app", "/wecom"), ("robot", "wecom-robot", "/robot")):
                columns[name] = await stages(name, Requests(platform, path), server, args.count, args.rounds)
            await server.stop()
            rows = list(columns["wecom"])
            mp = multiprocess_metrics(args.count, args.rounds)
            print("| stage | WeCom app (XML) µs | robot (JSON) µs |")
            print("|---|---|---|")
            for row in rows:
                print(f"| {row} | {columns['wecom'][row]:.1f} | {columns['robot'][row]:.1f} |")
            print(f"| metrics (multiprocess, as with workers > 1) | {mp:.1f} | {mp:.1f} |")
            print()
            print("| store | claim (new) µs | complete µs | claim (retry, cached) µs | respond WeCom µs | respond robot µs |")
            print("|---|---|---|---|---|---|")
            for name, url in stores.items():
                trips = await store_trips(url, args.count)
                total = await whole(url, args.count // 2, max(3, args.rounds // 2))
                print(f"| {name} | {trips['claim (new)']:.1f} | {trips['complete']:.1f} | "
                      f"{trips['claim (retry, cached)']:.1f} | {total['wecom']:.1f} | {total['robot']:.1f} |")
            print()
            print("Inside respond, fresh WeCom app messages, memory store (µs per request):")
            print()
            print("| stage | µs |")
            print("|---|---|")
            for row, spent in (await inside_respond(args.count, max(3, args.rounds // 2))).items():
                print(f"| {row} | {spent:.1f} |")
            if args.redis:
                import redis

                client = redis.Redis.from_url(args.redis)
                for key in client.scan_iter(match=f"wxcallback-stages-{os.getpid()}:*", count=1000):
                    client.delete(key)
                client.close()

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
