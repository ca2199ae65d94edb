"""A bot under test: a LongConnection against a FakePlatform on loopback, with fast timings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from wxcallback.longconn import Callback, LongConnection, LongConnSettings

BOT_ID = "bot-under-test"
SECRET = "very-secret-value-7f3a"

# generous: a test waits this long for something that normally takes milliseconds
WAIT = 10.0


def run(scenario: Awaitable[Any], timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(scenario, timeout)
    return asyncio.run(bounded())


def settings(url: str, **overrides: Any) -> LongConnSettings:
    values: dict[str, Any] = {"bot_id": BOT_ID, "secret": SECRET, "url": url, "heartbeat_interval": 5.0,
                              "backoff_base": 0.02, "backoff_max": 0.1, "ack_timeout": 2.0,
                              "subscribe_timeout": 2.0, "close_timeout": 0.5, "stream_interval": 0.0}
    values.update(overrides)
    return LongConnSettings(**values)


class Bot:
    """Collects callbacks; ``handler`` (if set) answers them."""

    def __init__(self, handler: Callable[[LongConnection, Callback], Awaitable[None]] | None = None) -> None:
        self.callbacks: list[Callback] = []
        self.handler = handler
        self.connection: LongConnection | None = None

    async def __call__(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        if self.handler is not None:
            assert self.connection is not None
            await self.handler(self.connection, callback)

    def connect(self, url: str, **overrides: Any) -> LongConnection:
        lease = overrides.pop("lease", None)
        holder = overrides.pop("holder", None)
        self.connection = LongConnection(settings(url, **overrides), self, lease=lease, holder=holder)
        return self.connection
