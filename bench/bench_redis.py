"""The Redis store's client-side CPU per callback: what the wxcallback process spends on Redis calls.

    .venv/bin/python bench/bench_redis.py [--redis redis://127.0.0.1:6379/0] [--in-flight 1 8 16]

Each "callback" makes the calls a request makes: ``claim`` then ``complete`` (a new message
on a handler channel), or ``enqueue`` then ``ack`` (a forwarded message delivered at once).
``--in-flight`` of them run at once on one event loop (uvloop when installed), as a worker
serves that many connections; the figure is the process's CPU time (user + system, so the
socket writes count) per callback, best of ``--rounds``. The Redis server's own CPU is not in
it. Keys go under a prefix of their own and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from wxcallback.server.stores.redis import RedisStore  # noqa: E402

BODY = b"x" * 600  # about an encrypted echo reply


async def measure(url: str, op: str, in_flight: int, count: int, rounds: int) -> float:
    prefix = f"wxcallback-bench-redis-{os.getpid()}:"
    store = RedisStore.from_url(url, prefix=prefix)
    numbers = iter(range(10**12))

    async def callback() -> None:
        key = f"wecom:dedup:{next(numbers)}"
        if op == "claim":
            claimed = await store.claim(key, 60)
            assert claimed.claimed
            await store.complete(key, BODY, "application/xml", 60)
        else:
            await store.ack(await store.enqueue("wecom", BODY, key))

    async def connection(calls: int) -> None:
        for _ in range(calls):
            await callback()

    try:
        await asyncio.gather(*(connection(200) for _ in range(in_flight)))  # warm up, connect
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            await asyncio.gather(*(connection(count // in_flight) for _ in range(in_flight)))
            best = min(best, (time.process_time() - started) / (count // in_flight * in_flight) * 1e6)
        return best
    finally:
        names = [name async for name in store._redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(names), 500):
            await store._redis.delete(*names[start:start + 500])
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--ops", nargs="+", choices=["claim", "outbox"], default=["claim", "outbox"])
    parser.add_argument("--count", type=int, default=20000, help="callbacks per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    import redis.utils

    print(f"hiredis: {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}")
    print("| calls | in flight | client CPU µs/callback |")
    print("|---|---|---|")
    for op in args.ops:
        for in_flight in args.in_flight:
            cpu = asyncio.run(measure(args.redis, op, in_flight, args.count, args.rounds))
            calls = "claim + complete" if op == "claim" else "enqueue + ack"
            print(f"| {calls} | {in_flight} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
