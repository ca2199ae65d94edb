"""The callbacks a platform pushes, as plaintext documents, and which answers each allows.

Each builder returns a :class:`Callback`: the decrypted message the platform would
send (fields in the platform's own names and order), who sent it, and the reply
types the platform accepts for it. Identifiers (MsgId, msgid, task ids) are unique
per call, and CreateTime is the current second, as on the real platforms.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

from wxcallback.channel import ChannelKind

from .target import Target

__all__ = [
    "OA_REPLY_TYPES",
    "ROBOT_MESSAGE_REPLIES",
    "UPDATE_TEMPLATE_CARD",
    "WECOM_REPLY_TYPES",
    "Callback",
    "Scenarios",
]

# Passive reply MsgTypes (OA 被动回复用户消息, WeCom 90241).
OA_REPLY_TYPES = frozenset({"text", "image", "voice", "video", "music", "news", "transfer_customer_service"})
WECOM_REPLY_TYPES = frozenset({"text", "image", "voice", "video", "news", "update_button", "update_template_card"})
# Robot replies (101031): a user message gets a stream or a card, never plain text.
ROBOT_MESSAGE_REPLIES = frozenset({"stream", "template_card", "stream_with_template_card"})
ROBOT_WELCOME_REPLIES = frozenset({"text", "template_card"})
ROBOT_STREAM_REPLIES = frozenset({"stream", "stream_with_template_card"})
# A robot card-event answer has no msgtype, only response_type.
UPDATE_TEMPLATE_CARD = "update_template_card"


@dataclass(frozen=True)
class Callback:
    """One push from the platform, before signing and encryption."""

    name: str
    payload: dict[str, Any]
    # FromUserName / from.userid: a correct XML reply is addressed back to it.
    sender: str
    # Reply types the platform accepts; empty means only "no reply" (robot feedback_event).
    reply_types: frozenset[str]
    # A stream refresh must be answered with a stream; other callbacks may get no reply.
    reply_required: bool = False
    # Robot card events carry a task_id the update reply must repeat.
    task_id: str | None = None
    # A third party's notice: the only answer is the literal "success".
    success_only: bool = False


class _Ids:
    """Unique MsgId / msgid values: 64-bit decimal for XML platforms, opaque strings for robots."""

    def __init__(self) -> None:
        self._counter = itertools.count(secrets.randbelow(1 << 40) << 20)

    def msg_id(self) -> int:
        return next(self._counter) & 0x7FFF_FFFF_FFFF_FFFF

    def robot_msgid(self) -> str:
        return secrets.token_hex(16)


class Scenarios:
    """Builders for one target's callbacks (``default()`` is the suite's selection)."""

    def __init__(
        self,
        target: Target,
        *,
        user_id: str | None = None,
        aibot_id: str = "aibotid-wxcallback-sim",
        chat_id: str = "wrkSFfCgAAsimulatedchat",
    ) -> None:
        self.target = target
        if user_id is None:
            # OA senders are OpenIDs (28 characters); WeCom senders are member UserIDs.
            user_id = "oSIM" + secrets.token_hex(12) if target.is_official_account_like else "SimUser"
        self.user_id = user_id
        self.aibot_id = aibot_id
        self.chat_id = chat_id
        self._ids = _Ids()

    # -- dispatch ---------------------------------------------------------------------

    def text(self, content: str = "hello") -> Callback:
        if self.target.platform is ChannelKind.WECOM_ROBOT:
            return self.robot_message("text", {"content": content})
        return self._xml_message("text", Content=content)

    def event(self, event: str, **fields: Any) -> Callback:
        if self.target.platform is ChannelKind.WECOM_ROBOT:
            return self.robot_event(event, **fields)
        return self._xml_event(event, **fields)

    def default(self) -> list[Callback]:
        """A callback of every common kind for this platform."""
        platform = self.target.platform
        if platform is ChannelKind.WECOM_ROBOT:
            return [
                self.text("hello"),
                self.robot_message("mixed", {"msg_item": [
                    {"msgtype": "text", "text": {"content": "what is in this picture?"}},
                    {"msgtype": "image", "image": {"url": "https://ww-aibot-img.example/sim.jpg"}},
                ]}, chat="group"),
                self.robot_message("image", {"url": "https://ww-aibot-img.example/sim.jpg"}),
                self.robot_event("enter_chat"),
                self.robot_event("template_card_event"),
                self.robot_event("feedback_event"),
            ]
        if self.target.wecom_app_like:
            return [
                self.text("hello"),
                self.event("enter_agent"),
                self.event("change_contact"),
                self.event("template_card_event"),
            ]
        return [
            self.text("hello"),
            self._xml_message("image", PicUrl="https://mmbiz.qpic.cn/sim.jpg", MediaId="media_id_sim"),
            self._xml_message("voice", MediaId="media_id_sim", Format="amr", Recognition="你好"),
            self.event("subscribe"),
            self.event("CLICK", EventKey="V1001_TODAY_MUSIC"),
            self.event("SCAN", EventKey="123123", Ticket="TICKET_SIM"),
        ]

    # -- Official Account and WeCom app (XML field names) -----------------------------

    def _reply_types(self) -> frozenset[str]:
        return WECOM_REPLY_TYPES if self.target.wecom_app_like else OA_REPLY_TYPES

    def _header(self, sender: str, msg_type: str) -> dict[str, Any]:
        to_user = self.target.receive_id if self.target.wecom_app_like else self.target.account_id
        return {"ToUserName": to_user, "FromUserName": sender, "CreateTime": int(time.time()), "MsgType": msg_type}

    def _xml_message(self, msg_type: str, **fields: Any) -> Callback:
        payload = {**self._header(self.user_id, msg_type), **fields, "MsgId": self._ids.msg_id()}
        if self.target.wecom_app_like:
            payload["AgentID"] = self.target.agent_id
        return Callback(msg_type, payload, self.user_id, self._reply_types())

    def _xml_event(self, event: str, **fields: Any) -> Callback:
        sender = self.user_id
        task_id = None
        if self.target.wecom_app_like:
            if event == "change_contact":
                # Contact changes come from "sys", not from a member (90240).
                sender = "sys"
                fields = {"ChangeType": "update_user", "UserID": self.user_id, **fields}
            elif event == "template_card_event":
                task_id = str(fields.get("TaskId", "task" + secrets.token_hex(8)))
                fields = {"EventKey": "confirm", "TaskId": task_id, "CardType": "button_interaction",
                          "ResponseCode": "rc" + secrets.token_hex(8), **fields}
        elif event == "subscribe" and "EventKey" not in fields:
            fields = {"EventKey": "", **fields}
        payload = {**self._header(sender, "event"), "Event": event, **fields}
        if self.target.wecom_app_like:
            payload["AgentID"] = self.target.agent_id
        return Callback(f"event {event}", payload, sender, self._reply_types(), task_id=task_id)

    # -- third parties' notices (InfoType) ------------------------------------------------

    def notices(self, authorizer: str = "wxba5fad812f8e6fb9") -> list[Callback]:
        """A component's ticket and authorization notices, or a suite's instructions."""
        now = int(time.time())
        if self.target.platform is ChannelKind.WECOM_SUITE:
            suite = {"SuiteId": self.target.receive_id}
            bodies = [{**suite, "InfoType": "suite_ticket", "TimeStamp": now,
                       "SuiteTicket": "sim-ticket-" + secrets.token_urlsafe(24)},
                      {**suite, "InfoType": "create_auth", "TimeStamp": now, "AuthCode": secrets.token_urlsafe(32)},
                      {**suite, "InfoType": "cancel_auth", "TimeStamp": now, "AuthCorpId": "wwsimulatedcorp000"}]
        else:
            app = {"AppId": self.target.receive_id, "CreateTime": now}
            granted = {"AuthorizerAppid": authorizer, "AuthorizationCode": "queryauthcode@@@" + secrets.token_hex(16),
                       "AuthorizationCodeExpiredTime": now + 3600, "PreAuthCode": "preauthcode@@@sim"}
            bodies = [{**app, "InfoType": "component_verify_ticket",
                       "ComponentVerifyTicket": "ticket@@@" + secrets.token_urlsafe(32)},
                      {**app, "InfoType": "authorized", **granted},
                      {**app, "InfoType": "updateauthorized", **granted},
                      {**app, "InfoType": "unauthorized", "AuthorizerAppid": authorizer}]
        return [Callback(f"notice {body['InfoType']}", body, "", frozenset(), success_only=True) for body in bodies]

    # -- WeCom smart robot (JSON field names) -----------------------------------------

    def _robot_common(self, msgtype: str, chat: str) -> dict[str, Any]:
        common: dict[str, Any] = {"msgid": self._ids.robot_msgid(), "aibotid": self.aibot_id}
        if chat == "group":
            common["chatid"] = self.chat_id
        common.update({"chattype": chat, "from": {"userid": self.user_id}, "msgtype": msgtype})
        return common

    def _response_url(self) -> str:
        return "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=" + secrets.token_urlsafe(24)

    def robot_message(self, msgtype: str, body: dict[str, Any], *, chat: str = "single") -> Callback:
        """A user message: text, mixed, image, voice, file or video."""
        payload = self._robot_common(msgtype, chat)
        payload["response_url"] = self._response_url()
        payload[msgtype] = body
        return Callback(msgtype, payload, self.user_id, ROBOT_MESSAGE_REPLIES)

    def robot_event(self, event: str, **fields: Any) -> Callback:
        """An event: enter_chat, template_card_event, feedback_event (or any other name)."""
        payload = self._robot_common("event", "single")
        payload["create_time"] = int(time.time())
        task_id = None
        detail: dict[str, Any] = dict(fields)
        replies: frozenset[str] = frozenset()
        if event == "enter_chat":
            replies = ROBOT_WELCOME_REPLIES
        elif event == "template_card_event":
            task_id = str(detail.get("task_id", "task" + secrets.token_hex(8)))
            detail = {"card_type": "button_interaction", "event_key": "confirm", "task_id": task_id, **detail}
            payload["response_url"] = self._response_url()
            replies = frozenset({UPDATE_TEMPLATE_CARD})
        elif event == "feedback_event":
            # The doc allows only an empty answer to feedback (101031).
            detail = {"id": "feedback" + secrets.token_hex(8), "type": 1, **detail}
        payload["event"] = {"eventtype": event, event: detail} if detail else {"eventtype": event}
        return Callback(f"event {event}", payload, self.user_id, replies, task_id=task_id)

    def stream_refresh(self, stream_id: str, *, chat: str = "single") -> Callback:
        """The platform's poll for the next state of a stream reply (new msgid each time)."""
        payload = self._robot_common("stream", chat)
        payload["stream"] = {"id": stream_id}
        return Callback("stream refresh", payload, self.user_id, ROBOT_STREAM_REPLIES, reply_required=True)
