"""The delivery worker delivers each claimed item on its own: a slow backend holds one slot only."""

from __future__ import annotations

import asyncio

import httpx

from wxcallback.server.forward import DeliveryWorker
from wxcallback.server.stores import MemoryStore


def test_a_slow_backend_does_not_hold_back_the_items_that_come_after_it() -> None:
    async def main() -> None:
        slow_started, slow_release = asyncio.Event(), asyncio.Event()
        delivered: list[str] = []

        async def backend(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/slow":
                slow_started.set()
                await slow_release.wait()  # a model still thinking
            delivered.append(request.url.path)
            return httpx.Response(200, json={})

        store = MemoryStore()
        await store.enqueue("slow", b'{"n": 1}', "slow-1")
        async with httpx.AsyncClient(transport=httpx.MockTransport(backend)) as client:
            worker = DeliveryWorker(store, {"slow": "http://backend/slow", "fast": "http://backend/fast"}, client,
                                    consumer="w", fresh_grace=0.0, idle=0.05, timeouts={"slow": 30.0})
            running = asyncio.ensure_future(worker.run())
            await asyncio.wait_for(slow_started.wait(), 5)
            # Messages that come while the slow delivery is in flight.
            for n in range(3):
                await store.enqueue("fast", b'{"n": %d}' % n, f"fast-{n}")
            for _ in range(200):
                if delivered.count("/fast") == 3:
                    break
                await asyncio.sleep(0.02)
            # Every fast item is through while the slow one is still being answered.
            assert delivered == ["/fast"] * 3
            assert await store.depth() == 1
            slow_release.set()
            for _ in range(200):
                if "/slow" in delivered:
                    break
                await asyncio.sleep(0.02)
            worker.stop()
            await asyncio.wait_for(running, 5)
        assert delivered == ["/fast"] * 3 + ["/slow"]
        assert await store.depth() == 0
        await store.close()

    asyncio.run(main())
