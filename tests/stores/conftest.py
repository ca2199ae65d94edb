"""Fixtures for the state stores: a real Redis, and one ``backend`` per store implementation.

The Redis and Redis Cluster fixtures (``redis_url``, ``redis_prefix``, ``redis_cluster_url``,
``redis_cluster_prefix``) live in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from wxcallback.server.stores import ClaimResult, MemoryStore, SQLiteStore, Store


async def claims_one_per_turn(claim: Callable[[str], Awaitable[ClaimResult]], count: int) -> list[ClaimResult]:
    """``count`` claims made one per turn of the loop, as a worker reads one request per turn."""
    loop = asyncio.get_running_loop()
    made: list[asyncio.Future[ClaimResult]] = []

    def arrive() -> None:
        made.append(asyncio.ensure_future(claim(f"turn-{len(made)}")))
        if len(made) < count:
            loop.call_soon(arrive)

    arrive()
    while len(made) < count:
        await asyncio.sleep(0)
    return list(await asyncio.gather(*made))


class FakeClock:
    """A clock the test moves by hand, so expiry is tested without sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Backend:
    """One store implementation under test: how to open it and how to let time pass."""

    def __init__(
        self, name: str, make: Callable[[], Store], fake_clock: FakeClock | None = None
    ) -> None:
        self.name = name
        self.make = make
        self._fake_clock = fake_clock

    def __repr__(self) -> str:
        return f"Backend({self.name})"

    def clock(self) -> float:
        """Now, on the clock the store uses for retry times."""
        return self._fake_clock.now if self._fake_clock is not None else time.time()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for the store (Redis expires keys on its own clock: sleep)."""
        if self._fake_clock is not None:
            self._fake_clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    def run(self, scenario: Callable[[Store], Awaitable[None]]) -> None:
        """Open a store, run ``scenario`` on it in a fresh event loop, close it."""

        async def main() -> None:
            async with self.make() as store:
                await scenario(store)

        asyncio.run(main())


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store implementation in turn, fresh and empty."""
    if request.param == "memory":
        memory_clock = FakeClock()
        return Backend("memory", lambda: MemoryStore(clock=memory_clock), memory_clock)
    if request.param == "sqlite":
        sqlite_clock = FakeClock()
        path = tmp_path / "state.db"
        return Backend("sqlite", lambda: SQLiteStore(path, clock=sqlite_clock), sqlite_clock)
    from wxcallback.server.stores import open_store
    from wxcallback.server.stores.redis import RedisStore

    if request.param == "redis-cluster":
        cluster_url: str = request.getfixturevalue("redis_cluster_url")
        cluster_prefix: str = request.getfixturevalue("redis_cluster_prefix")
        return Backend("redis-cluster", lambda: open_store(f"{cluster_url}/?prefix={cluster_prefix}"))
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return Backend("redis", lambda: RedisStore.from_url(url, prefix=prefix))
