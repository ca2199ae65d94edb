"""Counts that every worker of one server adds to, and any worker reads summed.

``wxcallback serve --workers N`` runs N processes, and /healthz is answered by whichever
one the kernel gives the connection: counts kept in one process's memory would make the
answer depend on that draw. So, as prometheus' multiprocess mode does for /metrics, each
worker keeps its counts in a small file of its own in the server's runtime directory
(``WXCALLBACK_RUNTIME_DIR``, made by ``wxcallback serve``), mapped into memory so that a
count is one store to memory, no system call; reading sums every worker's file. A worker
that dies leaves its file, so the sums never go back; a new worker given a dead one's pid
goes on from that file's counts.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence

__all__ = ["RUNTIME_DIR_ENV", "WorkerCounts"]

#: the directory ``wxcallback serve`` shares with its workers for what they sum between them
RUNTIME_DIR_ENV = "WXCALLBACK_RUNTIME_DIR"


class WorkerCounts:
    """This worker's file of ``len(names)`` counters named ``<kind>-<pid>.bin`` in ``directory``."""

    def __init__(self, directory: str, kind: str, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._directory = directory
        self._prefix = f"{kind}-"
        self._record = struct.Struct(f"<{len(self.names)}q")
        fd = os.open(os.path.join(directory, f"{kind}-{os.getpid()}.bin"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size != self._record.size:
                os.ftruncate(fd, self._record.size)
            self._map = mmap.mmap(fd, self._record.size)
        finally:
            os.close(fd)

    @classmethod
    def from_environment(cls, kind: str, names: Sequence[str]) -> WorkerCounts | None:
        """The counts in the server's runtime directory; None when there is none (one process)."""
        directory = os.environ.get(RUNTIME_DIR_ENV)
        if not directory:
            return None
        return cls(directory, kind, names)

    def mine(self) -> tuple[int, ...]:
        """This worker's counts as its file holds them."""
        return self._record.unpack_from(self._map, 0)

    def write(self, counts: Sequence[int]) -> None:
        self._record.pack_into(self._map, 0, *counts)

    def total(self) -> dict[str, int]:
        """Every worker's counts, summed."""
        sums = [0] * len(self.names)
        for entry in os.scandir(self._directory):
            if not (entry.name.startswith(self._prefix) and entry.name.endswith(".bin")):
                continue
            try:
                with open(entry.path, "rb") as file:
                    data = file.read(self._record.size)
            except OSError:
                continue
            if len(data) == self._record.size:
                for index, value in enumerate(self._record.unpack(data)):
                    sums[index] += value
        return dict(zip(self.names, sums))
