"""Cost per request against message size and channel count, in process.

    .venv/bin/python bench/bench_scale.py [--stores memory sqlite] [--channels 1 100 10000]

Sizes: one WeCom app channel, text messages of 300 B, 2 KB and 64 KB of plaintext XML,
encrypted; each request a fresh message through the whole ``CallbackServer.respond``
(verify, replay window, decrypt, parse, dedup claim, handler, encrypt the reply, metrics).
The handler answers a short text whatever the size (the demo echo would repeat 64 KB,
over the 2,048-byte reply limit), so the rows show what grows with the request.

Channels: 1, 100 and 10,000 WeCom app channels, each with its own path, Token,
EncodingAESKey and CorpID (so its own key ring, replay guard, dedup keys and metric
labels), 300 B messages spread evenly over all of them. Reported: the time to read the
configuration (``parse_config``), to build the server (``CallbackServer``, handlers
loaded) and to start it (key rings, endpoints), the memory that costs, and µs per request.

Best of ``--rounds`` batches (noise on a shared machine only adds time). One process, one
request at a time: this is the pipeline's own cost, without the HTTP layer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.platform_requests import Platform  # noqa: E402

from wxcallback.server.config import parse_config  # noqa: E402
from wxcallback.server.runtime import CallbackServer  # noqa: E402

SIZES = (300, 2048, 65536)


async def short_reply(message: Any) -> str:
    """The handler of every channel here: a short answer whatever the message's size (async, so
    on the event loop as the demo echo is, where a plain function would run in a thread)."""
    return f"got {len(getattr(message, 'content', ''))} characters"


def wecom_text(receive_id: str, msg_id: int, size: int) -> str:
    head = (f"<xml><ToUserName><![CDATA[{receive_id}]]></ToUserName><FromUserName><![CDATA[zhangsan]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            "<Content><![CDATA[")
    tail = f"]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    filler = "hello " * (size // 6 + 1)
    return head + filler[: max(1, size - len(head) - len(tail))] + tail


def channel_secrets(index: int) -> tuple[str, str, str]:
    """(Token, EncodingAESKey, CorpID) of channel ``index``: distinct for every channel."""
    digest = hashlib.sha256(f"channel {index}".encode()).digest()
    key = base64.b64encode(digest).decode()[:43]
    return f"token{index}", key, f"wx{digest[:8].hex()}"


def config(channels: int, store: str) -> Any:
    table = {}
    for index in range(channels):
        token, key, corp_id = channel_secrets(index)
        table[f"c{index}"] = {"path": f"/c{index}", "platform": "wecom-app", "token": token,
                              "encoding_aes_key": key, "receive_id": corp_id, "handler": "bench_scale:short_reply"}
    return {"server": {"store": store, "log_level": "warning", "app_dir": str(Path(__file__).parent)},
            "channels": table}


class Requests:
    """Fresh signed, encrypted requests, spread over the first ``channels`` channels."""

    def __init__(self, channels: int) -> None:
        self.sides = []
        for index in range(channels):
            token, key, corp_id = channel_secrets(index)
            self.sides.append(Platform("wecom-app", f"/c{index}", receive_id=corp_id, token=token, key=key))
        self.next_id = int(time.time() * 1000) * 1000 + secrets.randbelow(1000) * 10**9
        self.turn = 0

    def make(self, count: int, size: int) -> list[tuple[str, bytes, bytes]]:
        made = []
        for _ in range(count):
            side = self.sides[self.turn % len(self.sides)]
            self.turn += 1
            self.next_id += 1
            url, body = side.callback(wecom_text(side.receive_id, self.next_id, size))
            path, _, query = url.partition("?")
            made.append((path, query.encode(), body))
        return made


def rss_mb() -> float:
    """Resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def per_request(server: CallbackServer, requests: Requests, size: int, count: int, rounds: int) -> float:
    for path, query, body in requests.make(min(200, count), size):  # warm-up
        handled = await server.respond("POST", path, query, body, len(body))
        assert handled.status == 200 and handled.outcome == "ok", handled
    best = float("inf")
    for _ in range(rounds):
        batch = requests.make(count, size)
        started = time.perf_counter()
        for path, query, body in batch:
            await server.respond("POST", path, query, body, len(body))
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6


async def sizes(store: str, count: int, rounds: int) -> dict[int, float]:
    server = CallbackServer(parse_config(config(1, store)))
    await server.start()
    requests = Requests(1)
    found = {size: await per_request(server, requests, size, count if size < 65536 else count // 4, rounds)
             for size in SIZES}
    await server.stop()
    return found


async def channels(store: str, channels: int, count: int, rounds: int) -> dict[str, float]:
    before = rss_mb()
    raw = config(channels, store)
    started = time.perf_counter()
    parsed = parse_config(raw)
    loaded = time.perf_counter()
    server = CallbackServer(parsed)
    built = time.perf_counter()
    await server.start()
    up = time.perf_counter()
    grown = rss_mb() - before
    requests = Requests(channels)
    # every channel gets requests: count per round, at least one per channel
    cost = await per_request(server, requests, 300, max(count, min(channels, 20000)), rounds)
    await server.stop()
    return {"parse_config s": loaded - started, "CallbackServer() s": built - loaded, "start s": up - built,
            "RSS MB": grown, "µs per request": cost}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="+", default=["memory", "sqlite"], choices=["memory", "sqlite"])
    parser.add_argument("--channels", nargs="+", type=int, default=[1, 100, 10000])
    parser.add_argument("--count", type=int, default=2000, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=5, help="batches; the best is reported")
    args = parser.parse_args(argv)

    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            urls = {"memory": "memory://", "sqlite": f"sqlite:///{folder}/scale.db"}
            print("| store | " + " | ".join(f"{size:,} B µs/request" for size in SIZES) + " |")
            print("|---|" + "---|" * len(SIZES))
            for store in args.stores:
                found = await sizes(urls[store], args.count, args.rounds)
                print(f"| {store} | " + " | ".join(f"{found[size]:.1f}" for size in SIZES) + " |", flush=True)
            print()
            print("| store | channels | parse_config s | CallbackServer() s | start s | RSS growth MB | µs/request |")
            print("|---|---|---|---|---|---|---|")
            for store in args.stores:
                for count in args.channels:
                    urls["sqlite"] = f"sqlite:///{folder}/scale-{count}.db"
                    found = await channels(urls[store], count, args.count, args.rounds)
                    print(f"| {store} | {count:,} | {found['parse_config s']:.3f} | {found['CallbackServer() s']:.3f} "
                          f"| {found['start s']:.3f} | {found['RSS MB']:.1f} | {found['µs per request']:.1f} |",
                          flush=True)

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
