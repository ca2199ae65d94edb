"""The platform's side for tests: sample accounts and messages, and signed, encrypted requests
for one channel, built by the simulator's wire module (``wxcallback.simulator.wire``), which
``wxcallback simulate`` sends too; replies are opened by its checks."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

from wxcallback import MessageCrypto
from wxcallback.simulator.checks import open_reply
from wxcallback.simulator.target import Target
from wxcallback.simulator.wire import callback_request, url_verification

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
    """Plays WeChat / WeCom for the channel on ``path``: ``(url, body)`` pairs to send, replies to open."""

    platform: str
    path: str
    receive_id: str = APPID
    token: str = TOKEN
    key: str = KEY
    target: Target = field(init=False)
    expected_echo: str = field(init=False, default="")
    last_nonce: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.target = self._target("safe")

    @property
    def crypto(self) -> MessageCrypto:
        """The channel's keys, for a test that builds an envelope of its own."""
        assert self.target.crypto is not None
        return self.target.crypto

    def _target(self, mode: str) -> Target:
        # Everything sealed for receive_id: for a suite, the tests name whom each URL is sealed for.
        return Target.create("http://platform.test" + self.path, platform=self.platform, token=self.token,
                             encoding_aes_key=self.key, receive_id=self.receive_id, mode=mode,
                             tenant=self.receive_id if self.platform == "wecom-suite" else "")

    def verify_url_request(self) -> str:
        """The URL check's path and query; ``expected_echo`` is what the server must answer."""
        request = url_verification(self.target)
        self.expected_echo = request.plaintext
        return f"{self.path}?{request.query}"

    def callback(self, plaintext: str, *, encrypted: bool = True, nonce: str | None = None,
                 timestamp: str | None = None) -> tuple[str, bytes]:
        """(url, body) of a signed callback carrying ``plaintext``, as the platform sends it
        (``encrypted=False``: an Official Account in plaintext mode)."""
        target = self.target if encrypted else self._target("plaintext")
        request = callback_request(target, plaintext, nonce=nonce, timestamp=timestamp,
                                   sender="o_user" if self.platform == "official-account" else None)
        self.last_nonce = request.nonce
        return f"{self.path}?{request.query}", request.body

    def open_reply(self, body: bytes, nonce: str | None = None) -> str:
        """Check an encrypted reply as the platform would (the nonce echoed, when given) and return
        its plaintext."""
        return open_reply(self.target, body, nonce)
