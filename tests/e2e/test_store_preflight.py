"""serve refuses a store it cannot trust before any worker starts, with one message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from tests.e2e.servers import ROOT, write_config
from tests.platform_requests import APPID, KEY, TOKEN


def test_a_redis_that_would_lose_the_outbox_is_refused_when_durability_is_required(
        tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        durable = client.config_get("appendonly").get("appendonly") == "yes"
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    finally:
        client.close()
    # the Redis these tests use keeps nothing on disk (appendonly no), which is what is checked here
    assert not (durable and policy == "noeviction"), "this test needs a Redis without AOF"
    channels = {"w": {"path": "/w", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                      "receive_id": APPID}}
    config = write_config(tmp_path / "wx.toml", f"{redis_url}?prefix={redis_prefix}&require_durable=1", channels)
    done = subprocess.run([sys.executable, "-m", "wxcallback", "serve", "--config", str(config), "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "store error" in done.stderr and "appendonly" in done.stderr
    assert "wxcallback" not in done.stdout  # no worker started
