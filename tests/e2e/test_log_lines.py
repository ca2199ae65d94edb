"""Everything `wxcallback serve` writes is one JSON object per line, and no secret is in it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.servers import Backend, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text


def test_every_line_is_json_and_carries_no_secret(tmp_path: Path) -> None:
    backend = Backend()
    backend.start()
    forward = f"http://user:s3cret-pass@127.0.0.1:{backend.port}/hook?api_key=k3y-value"
    base = {"platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID}
    channels = {
        "fwd": base | {"path": "/fwd", "forward": forward},
        "broken": base | {"path": "/broken", "handler": "tests.server.handlers:broken"},
        "open": base | {"path": "/open", "replay_window": 0},
    }
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    try:
        with serve(config) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            for path in ("/fwd", "/broken", "/open"):
                side = Platform("wecom-app", path)
                url, data = side.callback(wecom_text("x"))
                assert client.post(url, content=data).status_code == 200
            assert client.get("/nowhere").status_code == 404
            deadline = time.monotonic() + 10
            while not backend.deliveries and time.monotonic() < deadline:
                time.sleep(0.1)
            assert backend.deliveries
        output = server.output()
    finally:
        backend.stop()
    lines = [line for line in output.splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # raises on any line that is not JSON
        assert isinstance(record, dict) and "level" in record, line
        records.append(record)
    assert "s3cret-pass" not in output and "k3y-value" not in output
    assert TOKEN not in output and KEY not in output
    assert any(r.get("outcome") == "replay_guard_off" and r.get("channel") == "open" for r in records)
    errors = [r for r in records if r.get("outcome") == "handler_error" and "traceback" in r]
    assert errors and "RuntimeError: handler bug" in errors[0]["traceback"]
    starting = next(r for r in records if r.get("outcome") == "starting")
    assert any(c.get("forward", "").startswith("http://127.0.0.1:") for c in starting["channels"])
    assert any(r.get("logger", "").startswith("uvicorn") for r in records)  # uvicorn's own lines too
