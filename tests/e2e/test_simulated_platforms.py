"""The simulator plays every platform and mode against a real `wxcallback serve` process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import ServerProcess, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN
from wxcallback.simulator import Simulator

CHANNELS: dict[str, dict[str, Any]] = {
    "oa_plain": {"path": "/oa-plain", "platform": "official-account", "token": TOKEN, "modes": ["plaintext"]},
    "oa_compat": {"path": "/oa-compat", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
                  "receive_id": APPID, "modes": ["compatible"]},
    "oa_safe": {"path": "/oa-safe", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
                "receive_id": APPID, "modes": ["safe"]},
    "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID},
    "robot": {"path": "/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY,
              "handler": "tests.e2e.e2e_handlers:slow_stream"},
    "gateway": {"path": "/social/on/wechat/7", "platform": "signature-only", "token": TOKEN},
}

CASES = [
    ("oa_plain", "official-account", "plaintext"),
    ("oa_compat", "official-account", "compatible"),
    ("oa_safe", "official-account", "safe"),
    ("wecom", "wecom-app", "safe"),
    ("robot", "wecom-robot", "safe"),
    ("gateway", "signature-only", "plaintext"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("simulated")
    (folder / "calls.txt").touch()
    config = write_config(folder / "wx.toml", f"sqlite:///{folder}/state.db", CHANNELS, max_body_bytes=65536)
    with serve(config, workers=2, env={"WXCALLBACK_E2E_CALLS": str(folder / "calls.txt")}) as process:
        yield process


@pytest.mark.parametrize("name, platform, mode", CASES, ids=[c[0] for c in CASES])
def test_simulator_suite_passes(server: ServerProcess, name: str, platform: str, mode: str) -> None:
    channel = CHANNELS[name]

    async def run() -> Any:
        async with Simulator(server.url + channel["path"], platform=platform, token=TOKEN,
                             encoding_aes_key=channel.get("encoding_aes_key"),
                             receive_id=channel.get("receive_id", ""), mode=mode, stream_interval=0.2,
                             stream_timeout=20, oversize_bytes=100_000) as simulator:
            return await simulator.run_suite(retries=3, hostile=True)

    report = asyncio.run(run())
    assert report.passed, report.table()


def test_load_mode_through_two_workers(server: ServerProcess) -> None:
    async def run() -> Any:
        async with Simulator(server.url + "/wecom", platform="wecom-app", token=TOKEN, encoding_aes_key=KEY,
                             receive_id=APPID) as simulator:
            return await simulator.load(300, concurrency=8, retry_fraction=0.2)

    report = asyncio.run(run())
    assert not report.failures, report.summary()
    assert set(report.status_counts) == {"200"}
