"""Distinct callbacks in one second each reach the business once, through `wxcallback serve`.

Customer-contact changes, batch-job results and template-send results come in bursts
with the same sender and CreateTime; only fields deeper in the document tell them
apart. Each must reach the handler / backend once, and each one's retry must get the
cached answer without running anything again.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.servers import Backend, serve, write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform
from wxcallback.messages import parse_message

SECOND = 1_700_000_000


def _burst() -> list[tuple[str, str]]:
    """(platform, plaintext) of 18 distinct callbacks stamped with the same second."""
    wecom_head = (f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
                  f"<CreateTime>{SECOND}</CreateTime><MsgType><![CDATA[event]]></MsgType>")
    callbacks: list[tuple[str, str]] = []
    for change in ("add_external_contact", "edit_external_contact", "del_external_contact"):
        for customer in ("wmA", "wmB"):
            callbacks.append(("wecom-app", wecom_head + "<Event><![CDATA[change_external_contact]]></Event>"
                              f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
                              f"<ExternalUserID><![CDATA[{customer}]]></ExternalUserID></xml>"))
    for job in range(6):
        callbacks.append(("wecom-app", wecom_head + "<Event><![CDATA[batch_job_result]]></Event><BatchJob>"
                          f"<JobId><![CDATA[job{job}]]></JobId><JobType><![CDATA[sync_user]]></JobType>"
                          "<ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob></xml>"))
    for msg_id in range(6):
        callbacks.append(("official-account",
                          f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><FromUserName><![CDATA[oUser]]>"
                          f"</FromUserName><CreateTime>{SECOND}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                          f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{200163836 + msg_id}</MsgID>"
                          f"<Status><![CDATA[success]]></Status></xml>"))
    return callbacks


def _channels(suffix: str, extra: dict[str, object]) -> dict[str, dict[str, object]]:
    base = {"token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID}
    return {
        f"oa{suffix}": {"path": f"/oa{suffix}", "platform": "official-account", "modes": ["safe"], **base, **extra},
        f"wecom{suffix}": {"path": f"/wecom{suffix}", "platform": "wecom-app", **base, **extra},
    }


def _send(client: httpx.Client, suffix: str, callbacks: list[tuple[str, str]]) -> None:
    for platform, plaintext in callbacks:
        side = Platform(platform, f"/{'oa' if platform == 'official-account' else 'wecom'}{suffix}")
        url, data = side.callback(plaintext)
        response = client.post(url, content=data)
        assert response.status_code == 200, response.text


def test_a_burst_of_same_second_events_reaches_handler_and_backend_once_each(tmp_path: Path,
                                                                             calls_file: Path) -> None:
    callbacks = _burst()
    keys = {parse_message(plaintext, platform).dedup_key for platform, plaintext in callbacks}
    assert len(keys) == len(callbacks) == 18
    backend = Backend()
    backend.start()
    channels = {**_channels("", {"handler": "tests.e2e.e2e_handlers:counting_echo"}),
                **_channels("_fwd", {"forward": backend.url, "forward_timeout": 2.0})}
    config = write_config(tmp_path / "wx.toml", f"sqlite:///{tmp_path}/state.db", channels)
    try:
        with serve(config, workers=2) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            for attempt in range(2):  # the burst, then the platform's retry of every one of them
                _send(client, "", callbacks)
                _send(client, "_fwd", callbacks)
                assert sorted(calls_file.read_text().split()) == sorted(keys), f"after attempt {attempt + 1}"
            deadline = time.monotonic() + 20
            while len(backend.deliveries) < len(callbacks) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # a duplicate delivery, if any, would land now
            delivered = [key for key, _ in backend.deliveries]
            assert sorted(delivered) == sorted(
                f"{'oa' if platform == 'official-account' else 'wecom'}_fwd:{parse_message(plaintext, platform).dedup_key}"
                for platform, plaintext in callbacks)
            events = {payload["message"]["event"] for _, payload in backend.deliveries}
            assert events == {"change_external_contact", "batch_job_result", "templatesendjobfinish"}
    finally:
        backend.stop()
