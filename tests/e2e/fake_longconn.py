"""The fake long-connection platform on a thread of its own, for tests whose bots are other processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from wxcallback.simulator.longconn import FakePlatform

T = TypeVar("T")


class ThreadedFake:
    """A FakePlatform served by an event loop on a background thread; ``call`` runs a coroutine there."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.fake = self.call(lambda: FakePlatform(**options).start())

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.call(lambda: _holds(predicate)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"waited {timeout} s in vain")
            time.sleep(0.05)

    def close(self) -> None:
        self.call(self.fake.stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


async def _holds(predicate: Callable[[], bool]) -> bool:
    return predicate()


@contextmanager
def fake_platform(**options: Any) -> Iterator[ThreadedFake]:
    threaded = ThreadedFake(**options)
    try:
        yield threaded
    finally:
        threaded.close()
