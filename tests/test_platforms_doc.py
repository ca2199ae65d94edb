"""The log lines quoted in docs/platforms.md are the server's own, for the mistakes they name.

Each console mistake is replayed against the server in process; the access-log lines it
writes must be exactly the doc's lines (latency aside), and the doc must quote no other line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, robot_text
from wxcallback import MessageCrypto, sign
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore

DOC = Path(__file__).resolve().parents[1] / "docs" / "platforms.md"
# Another valid EncodingAESKey (the MP SDK's test key): what a key not copied from the console does.
OTHER_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CONFIG = parse_config({"channels": {
    "oa": {"path": "/wechat/oa", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
           "receive_id": APPID, "modes": ["safe"]},
    "app": {"path": "/wecom/app", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
            "receive_id": APPID},
    "robot": {"path": "/wecom/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY},
}})


def _sealed(key: str, plaintext: str, receive_id: str = APPID, timestamp: str | None = None) -> tuple[str, str, str]:
    """(timestamp, nonce, Encrypt) with a fixed random prefix, so a wrong key fails the same way each run."""
    timestamp = timestamp or str(int(time.time()))
    crypto = MessageCrypto(TOKEN, key, receive_id)
    return timestamp, "1372623149", crypto.encrypt_reply(plaintext, "1372623149", timestamp=timestamp,
                                                         random=b"0960688932c47ef1").encrypt


def _url_check(path: str, key: str) -> tuple[str, str, bytes]:
    timestamp, nonce, encrypt = _sealed(key, "1616140317555161061")
    query = {"msg_signature": sign(TOKEN, timestamp, nonce, encrypt), "timestamp": timestamp, "nonce": nonce,
             "echostr": encrypt}
    return "GET", f"{path}?{urlencode(query)}", b""


def _oa_post(key: str) -> tuple[str, str, bytes]:
    # A fixed message (oa_text would stamp the current time): the same garbage every run.
    plaintext = ("<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[o_user]]>"
                 "</FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                 "<Content><![CDATA[hello]]></Content><MsgId>4561255354251345929</MsgId></xml>")
    timestamp, nonce, encrypt = _sealed(key, plaintext)
    query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": "o_user",
             "encrypt_type": "aes", "msg_signature": sign(TOKEN, timestamp, nonce, encrypt)}
    body = f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return "POST", f"/wechat/oa?{urlencode(query)}", body.encode()


def _app_post_at(timestamp: str) -> tuple[str, str, bytes]:
    _, nonce, encrypt = _sealed(KEY, "<xml><MsgType>text</MsgType></xml>", timestamp=timestamp)
    query = {"msg_signature": sign(TOKEN, timestamp, nonce, encrypt), "timestamp": timestamp, "nonce": nonce}
    body = f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return "POST", f"/wecom/app?{urlencode(query)}", body.encode()


def _scenarios() -> list[tuple[str, str, bytes]]:
    robot_for_a_corp = Platform("wecom-robot", "/wecom/robot", receive_id=APPID)
    url, body = robot_for_a_corp.callback(robot_text("hi"))
    oa = Platform("official-account", "/wechat/oa")
    plain_url, plain_body = oa.callback(oa_text("hi"), encrypted=False)
    return [
        ("GET", Platform("wecom-app", "/wecom/app", token="WrongToken").verify_url_request(), b""),
        ("GET", Platform("official-account", "/wechat/oa", token="WrongToken").verify_url_request(), b""),
        _url_check("/wecom/app", OTHER_KEY),
        _oa_post(OTHER_KEY),
        ("GET", Platform("wecom-app", "/wecom/app", receive_id="ww0000000000000000").verify_url_request(), b""),
        ("POST", url, body),
        ("POST", plain_url, plain_body),
        ("GET", "/wecom/ap?msg_signature=x&timestamp=1&nonce=1&echostr=x", b""),
        _app_post_at(str(int(time.time()) - 3600)),
    ]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def _comparable(line: dict[str, Any]) -> str:
    line = {k: v for k, v in line.items() if k != "latency_ms"}
    # The clock moves while the test runs: "3600 s away" may be measured as 3601.
    line["detail"] = re.sub(r"timestamp is 36\d\d s away", "timestamp is 36xx s away", line.get("detail", ""))
    return json.dumps(line, ensure_ascii=False, sort_keys=True)


def _server_lines() -> list[dict[str, Any]]:
    app = create_app(CONFIG, store=MemoryStore())
    handler = _Lines()
    access = logging.getLogger("wxcallback.access")
    access.addHandler(handler)
    previous = access.level
    access.setLevel(logging.INFO)

    async def replay() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for method, url, body in _scenarios():
                await client.request(method, url, content=body)
        await app.state.wxcallback.stop()

    try:
        asyncio.run(replay())
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
    return handler.lines


def _doc_lines() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [json.loads(line) for block in blocks for line in block.splitlines() if line.strip()]


def test_every_quoted_log_line_is_the_servers_own_for_that_mistake() -> None:
    documented = sorted(_comparable(line) for line in _doc_lines())
    produced = sorted(_comparable(line) for line in _server_lines())
    assert documented == produced


def test_no_quoted_line_carries_a_secret() -> None:
    text = DOC.read_text(encoding="utf-8")
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        assert TOKEN not in block and KEY not in block and OTHER_KEY not in block
