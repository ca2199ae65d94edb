"""The memory store at its bounds: what a message costs once the store is full, and the stalls.

    .venv/bin/python bench/bench_memory_store.py [--messages 400000]

One message is what the dispatch does for a fresh callback: a claim, then the cached reply
(~600 B, the size of an encrypted text answer's cache entry). With the default bounds
(200,000 entries, 128 MB) the store is full after ~150,000 such messages; from then on each
~15,000 more make it drop expired entries and then the oldest cached replies down to 90% of
its bounds. Reported: µs per message before and after it filled, how often it made room, and
the longest single claim + complete (a stall of the worker's event loop, which every request
in flight waits through). A worker at 5,000 messages a second fills it in ~30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from wxcallback.server.stores.memory import MemoryStore  # noqa: E402

REPLY = b'{"kind": "reply", "text": "' + b"x" * 560 + b'"}'


async def fill(messages: int) -> None:
    store = MemoryStore()
    await store.start()
    evictions = 0

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            nonlocal evictions
            evictions += 1

    logger = logging.getLogger("wxcallback.store")
    logger.addHandler(Count())
    logger.propagate = False
    full_at: int | None = None
    worst = (0.0, 0)
    started = time.perf_counter()
    filled = started
    for n in range(messages):
        key = f"wecom:dedup:msgid:{n:020d}:0123456789abcdef0123456789abcdef"
        before = time.perf_counter()
        await store.claim(key, 10.0)
        await store.complete(key, REPLY, "application/json; charset=utf-8", 300.0)
        took = time.perf_counter() - before
        if full_at is None and evictions:
            full_at, filled = n, before
        if full_at is not None and took > worst[0]:
            worst = (took, n)
    ended = time.perf_counter()
    await store.close()
    if full_at is None:
        print(f"{messages} messages: the store never filled ({ended - started:.1f} s); give --messages more")
        return
    print("| messages | µs per message until full | µs per message once full | times it made room | "
          "longest claim + complete |")
    print("|---|---|---|---|---|")
    print(f"| {messages:,} (full after {full_at:,}) | {(filled - started) / full_at * 1e6:.1f} "
          f"| {(ended - filled) / (messages - full_at) * 1e6:.1f} | {evictions} "
          f"| {worst[0] * 1000:.1f} ms (message {worst[1]:,}) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400_000)
    args = parser.parse_args(argv)
    asyncio.run(fill(args.messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
