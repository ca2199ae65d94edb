"""wxcallback_outbox_depth is the store's real depth, whatever happened to the workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.servers import Backend, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text


def _depths(url: str, tries: int = 8) -> set[float]:
    # each scrape lands on one of the workers: ask several times
    values = set()
    for _ in range(tries):
        text = httpx.get(url + "/metrics", timeout=5).text
        match = re.search(r"^wxcallback_outbox_depth (\S+)$", text, re.MULTILINE)
        assert match, text[:500]
        values.add(float(match.group(1)))
    return values


def _workers(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_the_depth_follows_the_store_after_a_worker_dies(tmp_path: Path) -> None:
    backend = Backend()
    channels = {"fwd": {"path": "/fwd", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                        "receive_id": APPID, "forward": backend.url, "forward_timeout": 0.3}}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    side = Platform("wecom-app", "/fwd")
    with serve(config, workers=2) as server:
        for i in range(5):  # the backend is down: all five wait in the outbox
            url, data = side.callback(wecom_text(f"m{i}"))
            assert httpx.post(server.url + url, content=data, timeout=5).status_code == 200
        assert _depths(server.url) == {5.0}
        workers = [p for p in _workers(server.process.pid) if p != os.getpid()]
        assert workers
        os.kill(workers[0], signal.SIGKILL)  # a worker dies having reported 5
        backend.start()
        try:
            deadline = time.monotonic() + 30
            while len(backend.deliveries) < 5 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len({key for key, _ in backend.deliveries}) == 5
            deadline = time.monotonic() + 10
            while _depths(server.url, 2) != {0.0} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _depths(server.url) == {0.0}
        finally:
            backend.stop()
