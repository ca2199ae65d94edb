"""The platform side, for in-process server tests: signed, encrypted requests and reply checks."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from wxcallback import MessageCrypto, sign

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
APPID = "wx5823bf96d3bd56c7"
_ids = itertools.count(int(time.time() * 1000))


def oa_text(content: str, msg_id: int | None = None, user: str = "o_user") -> str:
    return (f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or next(_ids)}</MsgId></xml>")


def wecom_text(content: str, msg_id: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or next(_ids)}</MsgId>"
            f"<AgentID>1000002</AgentID></xml>")


def robot_text(content: str, msg_id: str | None = None) -> str:
    return json.dumps({"msgid": msg_id or f"m{next(_ids)}", "aibotid": "bot1", "chattype": "single",
                       "from": {"userid": "zhangsan"}, "response_url": "https://example.invalid/r",
                       "msgtype": "text", "text": {"content": content}})


def robot_refresh(stream_id: str) -> str:
    return json.dumps({"msgid": f"m{next(_ids)}", "aibotid": "bot1", "chattype": "single",
                       "from": {"userid": "zhangsan"}, "msgtype": "stream", "stream": {"id": stream_id}})


@dataclass
class Platform:
    """Plays WeChat / WeCom for one channel."""

    platform: str
    path: str
    receive_id: str = APPID
    token: str = TOKEN
    key: str = KEY
    crypto: MessageCrypto = field(init=False)

    def __post_init__(self) -> None:
        envelope = "json" if self.platform == "wecom-robot" else "xml"
        self.crypto = MessageCrypto(self.token, self.key, self.receive_id, envelope=envelope)

    def verify_url_request(self) -> str:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        if self.platform in ("official-account", "signature-only"):
            echostr = str(secrets.randbelow(10**19))
            query = {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                     "echostr": echostr}
            self.expected_echo = echostr
        else:
            self.expected_echo = str(secrets.randbelow(10**19))
            echostr = self.crypto.encrypt_reply(self.expected_echo, nonce, timestamp=timestamp).encrypt
            query = {"msg_signature": sign(self.token, timestamp, nonce, echostr), "timestamp": timestamp,
                     "nonce": nonce, "echostr": echostr}
        return f"{self.path}?{urlencode(query)}"

    def callback(self, plaintext: str, *, encrypted: bool = True, nonce: str | None = None,
                 timestamp: str | None = None) -> tuple[str, bytes]:
        """(url, body) of a signed callback as the platform sends it."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(5)
        self.last_nonce = nonce
        if not encrypted:
            query = {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
            return f"{self.path}?{urlencode(query)}", plaintext.encode()
        encrypt = self.crypto.encrypt_reply(plaintext, nonce, timestamp=timestamp).encrypt
        query = {"msg_signature": sign(self.token, timestamp, nonce, encrypt), "timestamp": timestamp,
                 "nonce": nonce}
        if self.platform == "official-account":
            query |= {"signature": sign(self.token, timestamp, nonce), "encrypt_type": "aes", "openid": "o_user"}
        if self.platform == "wecom-robot":
            body = json.dumps({"encrypt": encrypt})
        else:
            body = f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return f"{self.path}?{urlencode(query)}", body.encode()

    def open_reply(self, body: bytes, nonce: str | None = None) -> str:
        """Check an encrypted reply as the platform would, and return its plaintext."""
        text = body.decode()
        if self.platform == "wecom-robot":
            envelope: dict[str, Any] = json.loads(text)
            signature, timestamp, echoed = envelope["msgsignature"], str(envelope["timestamp"]), envelope["nonce"]
        else:
            signature = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
            timestamp = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
            echoed = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
        if nonce is not None:
            assert echoed == nonce, "the reply must echo the request nonce"
        return self.crypto.decrypt(text, signature, timestamp, echoed).text
