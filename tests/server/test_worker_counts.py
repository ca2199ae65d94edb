"""Counts summed across the workers of one server, through their files in the runtime directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wxcallback.server.worker_counts import WorkerCounts

NAMES = ("refused", "evicted")


def _worker(directory: Path, pid: int, monkeypatch: pytest.MonkeyPatch) -> WorkerCounts:
    monkeypatch.setattr(os, "getpid", lambda: pid)
    return WorkerCounts(str(directory), "connections", NAMES)


def test_every_workers_counts_are_summed_and_a_dead_ones_are_kept(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _worker(tmp_path, 101, monkeypatch), _worker(tmp_path, 102, monkeypatch)
    first.write([3, 1])
    second.write([4, 0])
    (tmp_path / "metrics-101.bin").write_bytes(b"\x09" * 16)  # another kind's file is not counted
    assert first.total() == second.total() == {"refused": 7, "evicted": 1}
    # a new worker that is given the dead first one's pid goes on from its counts
    assert _worker(tmp_path, 101, monkeypatch).mine() == (3, 1)
