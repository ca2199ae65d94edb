"""Scale-out on one Redis: one ``wxcallback serve`` process against two, side by side in one run.

    .venv/bin/python bench/bench_scale_out.py [--redis redis://127.0.0.1:6379/0] [--rounds 2] [--duration 10]

Each process is ``wxcallback serve --workers 1 --store redis://…`` as a user runs it (access log
off), the WeCom app channel and fresh encrypted messages of bench/bench_server.py. One process
gets 16 wrk connections; then two processes on the same Redis get 8 each, loaded at the same time,
and their req/s are added. Both check that a message and its retry get the encrypted echo before
the load. On one host the two processes share its CPUs with Redis and wrk, so this shows what a
second process costs the shared store, not what a second host would add.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import (  # noqa: E402
    CORP_ID,
    KEY,
    PATH,
    TOKEN,
    Messages,
    Server,
    check_answers,
    clean_redis,
    free_port,
    memory_backed,
    redis_reachable,
    running,
    wrk,
)


def serve(scratch: Path, url: str) -> Server:
    channel = (f'[channels.wecom]\npath = "{PATH}"\nplatform = "wecom-app"\ntoken = "{TOKEN}"\n'
               f'encoding_aes_key = "{KEY}"\nreceive_id = "{CORP_ID}"\n')
    config = scratch / "wxcallback.toml"
    config.write_text(f'[server]\nlog_level = "warning"\n\n{channel}', encoding="utf-8")
    launcher = str(Path(sys.executable).parent / "wxcallback")
    return Server("wxcallback", "redis", "", [launcher, "serve", "--config", str(config), "--store", url,
                                              "--workers", "1", "--port", "{port}"])


def measure(processes: int, connections: int, args: argparse.Namespace, url: str, scratch: Path,
            inputs: Path, messages: Messages) -> list[dict[str, Any]]:
    """Start ``processes`` serve processes, load them all at once, return each one's wrk figures."""
    with ExitStack() as stack:
        ports = []
        for number in range(processes):
            server = serve(scratch, url)
            port = free_port()
            server.argv = [part.replace("{port}", str(port)) for part in server.argv]
            stack.enter_context(running(server, port, scratch / f"serve-{processes}-{number}.log"))
            check_answers(port, messages)
            ports.append(port)
        files = []
        for number, port in enumerate(ports):
            warmup = inputs / f"warmup-{number}.txt"
            messages.write(warmup, 20000)
            warm = wrk(port, warmup, args.warmup, connections, 1)
            requests = inputs / f"requests-{number}.txt"
            # Enough fresh messages for three times the warm-up rate: a wrap would resend.
            messages.write(requests, max(20000, int(warm["rps"] * args.duration * 3)))
            files.append(requests)
        results: list[dict[str, Any]] = [{} for _ in ports]

        def load(number: int) -> None:
            results[number] = wrk(ports[number], files[number], args.duration, connections, 1)

        threads = [threading.Thread(target=load, args=(number,)) for number in range(len(ports))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for port in ports:
            check_answers(port, messages)  # still answering correctly after the load
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args(argv)
    reason = redis_reachable(args.redis)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    prefix = f"wxcallback-bench-scale-{os.getpid()}:"
    url = f"{args.redis}?prefix={prefix}"
    print("| round | one process req/s | p99 ms | two processes req/s (each) | p99 ms (worst) | ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="wxcallback-bench-") as folder, \
            tempfile.TemporaryDirectory(prefix="wxcallback-bench-inputs-", dir=memory_backed()) as inputs:
        messages = Messages()
        try:
            for number in range(1, args.rounds + 1):
                one = measure(1, 16, args, url, Path(folder), Path(inputs), messages)[0]
                two = measure(2, 8, args, url, Path(folder), Path(inputs), messages)
                total = sum(result["rps"] for result in two)
                each = " + ".join(f"{result['rps']:,.0f}" for result in two)
                print(f"| {number} | {one['rps']:,.0f} | {one['p99_us'] / 1000:.2f} | {total:,.0f} ({each}) | "
                      f"{max(result['p99_us'] for result in two) / 1000:.2f} | {total / one['rps']:.2f}x |",
                      flush=True)
        finally:
            clean_redis(args.redis, prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
