"""CPU time of one callback, split between the HTTP layer and the pipeline, in process.

    .venv/bin/python bench/bench_request_split.py [--stores memory sqlite redis] [--count 4000] [--rounds 5]

Whole HTTP/1.1 requests (fresh, signed, encrypted WeCom app text messages, ~300 B) are fed to
the protocol ``wxcallback serve`` runs (``GuardedHTTPProtocol`` over uvicorn's httptools
protocol, uvloop) through an in-memory transport: no socket, no kernel, no load generator
sharing the CPU. 16 connections, one request in flight on each: as wrk does, a connection sends
its next request as soon as its answer is written, and the process sleeps while a shared store's
round trip is on the wire (no polling). Rows:

- **bare ASGI app**: the same requests answered "ok" by a three-line ASGI app: what the HTTP
  layer (parser, guard, uvicorn's request cycle) costs;
- **callback app**: ``create_app(config)`` as served: HTTP layer + the whole pipeline;
- **respond alone**: ``CallbackServer.respond`` called directly, 16 at a time.

CPU seconds of this process (``time.process_time``, the store's thread included; not Redis's
own) per request, best of ``--rounds`` batches:
steadier than wall time on a shared machine, and what a worker's throughput is bound by.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_server import clean_redis  # noqa: E402
from bench_stages import Requests, config  # noqa: E402
from uvicorn.config import Config  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402

from wxcallback.server.app import create_app  # noqa: E402
from wxcallback.server.connections import GuardedHTTPProtocol  # noqa: E402
from wxcallback.server.runtime import CallbackServer  # noqa: E402

CONNECTIONS = 16


class MemoryTransport(asyncio.Transport):
    """Counts the responses written to it and, like wrk, sends the connection's next request
    as soon as one is answered (from the loop, as a socket read would arrive)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, requests: list[bytes], finished: asyncio.Future[None]) -> None:
        super().__init__()
        self.loop = loop
        self.requests = requests  # this connection's, last first
        self.finished = finished  # set when every connection has had all its answers
        self.protocol: asyncio.Protocol | None = None
        self.answered = 0
        self.refused = 0
        self.closing = False

    def send_next(self) -> None:
        assert self.protocol is not None
        if self.requests:
            self.loop.call_soon(self.protocol.data_received, self.requests.pop())
        elif not self.finished.done():
            self.finished.set_result(None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        answered = data.count(b"HTTP/1.1 200 ")
        refused = data.count(b"HTTP/1.1 4") + data.count(b"HTTP/1.1 5")
        self.answered += answered
        self.refused += refused
        if answered + refused:
            self.send_next()

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _raw_requests(requests: Requests, count: int) -> list[bytes]:
    return [b"POST %s?%s HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), query, len(body), body) for path, query, body in requests.make(count)]


async def through_protocol(app: Any, requests: Requests, count: int, rounds: int) -> float:
    """µs of CPU per request fed to GuardedHTTPProtocol, as serve configures uvicorn."""
    settings = Config(app=app, http=GuardedHTTPProtocol, log_level="warning", access_log=False, lifespan="off",
                      proxy_headers=False)
    settings.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    times = []
    for round_ in range(rounds + 1):  # the first round warms up
        raw = _raw_requests(requests, count)
        connections = []
        waits = []
        for first in range(CONNECTIONS):
            finished = loop.create_future()
            transport = MemoryTransport(loop, raw[first::CONNECTIONS][::-1], finished)
            protocol = GuardedHTTPProtocol(config=settings, server_state=state, app_state={})
            protocol.connection_made(transport)
            transport.protocol = protocol
            connections.append((protocol, transport))
            waits.append(finished)
        started = time.process_time()
        for _, transport in connections:
            transport.send_next()
        # no polling: the process sleeps while a shared store's round trip is on the wire
        await asyncio.wait(waits)
        while state.tasks:  # what is still running after the last answer
            await asyncio.wait(set(state.tasks))
        elapsed = time.process_time() - started
        answered = sum(t.answered for _, t in connections)
        if answered != count:
            raise RuntimeError(f"{answered} of {count} requests answered 200")
        for protocol, _ in connections:
            protocol.connection_lost(None)
        if round_:
            times.append(elapsed)
    return min(times) / count * 1e6


async def respond_alone(server: CallbackServer, requests: Requests, count: int, rounds: int) -> float:
    times = []
    for round_ in range(rounds + 1):
        batch = requests.make(count)
        started = time.process_time()
        for first in range(0, count, CONNECTIONS):
            done = await asyncio.gather(*[server.respond("POST", path, query, body, len(body))
                                          for path, query, body in batch[first:first + CONNECTIONS]])
            assert all(handled.status == 200 for handled in done), done
        if round_:
            times.append(time.process_time() - started)
    return min(times) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="+", default=["memory", "sqlite"], choices=["memory", "sqlite", "redis"])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--count", type=int, default=4000, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=5, help="batches; the best is reported")
    args = parser.parse_args(argv)

    async def run() -> None:
        requests = Requests("wecom-app", "/wecom")
        bare = await through_protocol(_bare, requests, args.count, args.rounds)
        print("| store | bare ASGI app µs | callback app µs | respond alone µs |")
        print("|---|---|---|---|")
        with tempfile.TemporaryDirectory() as folder:
            prefix = f"wxcallback-split-{os.getpid()}:"
            for name in args.stores:
                url = {"memory": "memory://", "sqlite": f"sqlite:///{folder}/split.db",
                       "redis": f"{args.redis}?prefix={prefix}"}[name]
                app = create_app(config(url))
                await app.server.start()
                whole = await through_protocol(app, requests, args.count, args.rounds)
                alone = await respond_alone(app.server, requests, args.count, args.rounds)
                await app.server.stop()
                print(f"| {name} | {bare:.1f} | {whole:.1f} | {alone:.1f} |")
            if "redis" in args.stores:
                clean_redis(args.redis, prefix)

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
