"""The lease that lets exactly one process hold a bot's long connection.

The platform keeps one connection per bot: a second subscribe evicts the first (it gets
``disconnected_event``), and two holders that both reconnect evict each other forever.
So among all workers and hosts serving a bot, only the holder of the lease
``longconn:<bot_id>`` may connect. A store-backed implementation (SQLite for one host,
Redis across hosts) must give these semantics; :class:`MemoryLease` gives them inside
one process, for tests.

Semantics, for a lease ``name``, a ``holder`` string unique per process and a ``ttl`` in
seconds:

- ``acquire(name, holder, ttl)`` is atomic. It returns True, and makes ``holder`` the
  owner until now + ttl, when the lease is free, expired, or already owned by ``holder``
  (re-acquiring extends it). It returns False while another holder owns it unexpired.
- ``renew(name, holder, ttl)`` returns True and moves the expiry to now + ttl only while
  ``holder`` owns the lease unexpired. It returns False otherwise, and never takes a
  lease it does not hold: a holder that lost it must stop using the resource at once.
- ``release(name, holder)`` frees the lease if, and only if, ``holder`` owns it; releasing
  a lease one does not hold is a no-op (the next owner's lease is never touched).
- An owner that dies without releasing loses the lease at expiry; then anyone may acquire
  it. A holder renews well before expiry (the runner renews every ttl / 3) and stops
  using the resource when a renewal fails or when ttl has passed since the last good one.
- Expiry is measured by the store's own clock (Redis ``PX`` / the database's time), so
  holders on different hosts need no synchronised clocks.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Lease", "MemoryLease", "default_holder", "lease_name"]


@runtime_checkable
class Lease(Protocol):
    """A named, expiring, exclusive claim (see the module docstring for the semantics)."""

    async def acquire(self, name: str, holder: str, ttl: float) -> bool: ...

    async def renew(self, name: str, holder: str, ttl: float) -> bool: ...

    async def release(self, name: str, holder: str) -> None: ...


def lease_name(bot_id: str) -> str:
    """The lease that guards the connection of ``bot_id``."""
    return f"longconn:{bot_id}"


def default_holder() -> str:
    """A holder id unique to this process: host, pid and 4 random bytes."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class MemoryLease:
    """The lease semantics inside one process (tests, single-process servers)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._owners: dict[str, tuple[str, float]] = {}

    def owner(self, name: str) -> str | None:
        """The current unexpired owner of ``name``, if any."""
        entry = self._owners.get(name)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        current = self.owner(name)
        if current is not None and current != holder:
            return False
        self._owners[name] = (holder, self._clock() + ttl)
        return True

    async def renew(self, name: str, holder: str, ttl: float) -> bool:
        if self.owner(name) != holder:
            return False
        self._owners[name] = (holder, self._clock() + ttl)
        return True

    async def release(self, name: str, holder: str) -> None:
        if self.owner(name) == holder:
            del self._owners[name]
