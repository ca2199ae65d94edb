"""Frames of the smart robot's long connection: the model, the codec and the limits.

Every frame is one JSON text message ``{"cmd", "headers": {"req_id"}, "body"}`` (WeCom doc
101463; the official Node SDK). The platform answers each frame the bot sends with an
*ack* that has no ``cmd``: ``{"headers": {"req_id"}, "errcode", "errmsg"}``, plus a ``body``
when the command returns data (media upload). Replies to a callback carry the callback's
own req_id; requests the bot starts (subscribe, ping, send, upload) carry a new one.

Reading a platform frame gives a :class:`Callback` or an :class:`Ack`; anything else is a
:class:`FrameError` with a short ``reason``. Building a frame checks the protocol limits
first, so nothing the platform would refuse is sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from wxcallback.messages import (
    MAX_STREAM_CONTENT_BYTES,
    MAX_STREAM_IMAGES,
    EmptyReply,
    EnterChatEvent,
    InvalidReplyError,
    Message,
    Platform,
    Reply,
    RobotTemplateCardEvent,
    check_reply,
    parse_message,
    render_reply,
)
from wxcallback.messages.robot_replies import check_template_card, utf8_length

from .errors import FrameBuildError, FrameError

__all__ = [
    "DEFAULT_URL",
    "ERRCODE_AUTH_FAILED",
    "ERRCODE_INVALID_REQ_ID",
    "ERRCODE_STREAM_EXPIRED",
    "MAX_CHUNKS",
    "MAX_CHUNK_BYTES",
    "MAX_CONTENT_BYTES",
    "MEDIA_TYPES",
    "Ack",
    "Callback",
    "Cmd",
    "Frame",
    "check_body",
    "check_stream",
    "chunk_media",
    "encode_ack",
    "encode_callback",
    "markdown_body",
    "media_body",
    "new_req_id",
    "parse_frame",
    "parse_request",
    "ping_frame",
    "reply_command",
    "reply_frame",
    "respond_frame",
    "send_msg_frame",
    "subscribe_frame",
    "template_card_body",
    "upload_chunk_frame",
    "upload_finish_frame",
    "upload_init_frame",
]

DEFAULT_URL: Final = "wss://openws.work.weixin.qq.com"

# errcodes seen in acks (the official Node SDK and recorded frames of the live platform)
ERRCODE_AUTH_FAILED: Final = 853000  # subscribe: "invalid bot_id or secret"
ERRCODE_INVALID_REQ_ID: Final = 846605  # this reply kind is not allowed for that req_id
ERRCODE_STREAM_EXPIRED: Final = 846608  # stream frame after the stream's ~6 minutes

MAX_CONTENT_BYTES: Final = MAX_STREAM_CONTENT_BYTES  # stream and markdown content, UTF-8 bytes
MAX_CHUNK_BYTES: Final = 512 * 1024  # one upload chunk, before base64
MAX_CHUNKS: Final = 100
MEDIA_TYPES: Final = frozenset({"file", "image", "voice", "video"})


class Cmd:
    """The ``cmd`` values (the official Node SDK's command table)."""

    # bot -> platform
    SUBSCRIBE: Final = "aibot_subscribe"
    PING: Final = "ping"
    RESPOND_MSG: Final = "aibot_respond_msg"
    RESPOND_WELCOME: Final = "aibot_respond_welcome_msg"
    RESPOND_UPDATE: Final = "aibot_respond_update_msg"
    SEND_MSG: Final = "aibot_send_msg"
    UPLOAD_INIT: Final = "aibot_upload_media_init"
    UPLOAD_CHUNK: Final = "aibot_upload_media_chunk"
    UPLOAD_FINISH: Final = "aibot_upload_media_finish"
    # platform -> bot
    MSG_CALLBACK: Final = "aibot_msg_callback"
    EVENT_CALLBACK: Final = "aibot_event_callback"

    REPLIES: Final = frozenset({RESPOND_MSG, RESPOND_WELCOME, RESPOND_UPDATE})
    REQUESTS: Final = frozenset({SUBSCRIBE, PING, SEND_MSG, UPLOAD_INIT, UPLOAD_CHUNK, UPLOAD_FINISH})
    CALLBACKS: Final = frozenset({MSG_CALLBACK, EVENT_CALLBACK})


def new_req_id(cmd: str, *, now_ms: int | None = None, token: Callable[[int], str] = secrets.token_hex) -> str:
    """A fresh req_id, ``<cmd>_<epoch ms>_<8 hex from the OS CSPRNG>`` as the Node SDK makes them.

    The platform only needs it unique; the command prefix makes logs readable.
    """
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{cmd}_{millis}_{token(4)}"


def _dumps(document: Mapping[str, Any]) -> str:
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise FrameBuildError(f"the frame cannot be written as JSON: {exc}") from None


def _redacted(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is not None and "secret" in body:
        return {**body, "secret": "***"}
    return body


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame the bot sends (or, on the platform side, receives): cmd, req_id, body.

    Its repr never shows a subscribe secret.
    """

    cmd: str
    req_id: str
    body: Mapping[str, Any] | None = field(default=None)

    def to_json(self) -> str:
        document: dict[str, Any] = {"cmd": self.cmd, "headers": {"req_id": self.req_id}}
        if self.body is not None:
            document["body"] = self.body
        return _dumps(document)

    def __repr__(self) -> str:
        return f"Frame(cmd={self.cmd!r}, req_id={self.req_id!r}, body={_redacted(self.body)!r})"


@dataclass(frozen=True, slots=True)
class Ack:
    """The platform's answer to one frame: errcode 0 is success; ``body`` carries returned data."""

    req_id: str
    errcode: int
    errmsg: str = ""
    body: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.errcode == 0


@dataclass(frozen=True, slots=True)
class Callback:
    """A message (``aibot_msg_callback``) or event (``aibot_event_callback``) pushed to the bot.

    ``body`` is the same JSON as the callback-URL mode's decrypted plaintext; ``message()``
    gives the typed Message the Router handles.
    """

    cmd: str
    req_id: str
    body: Mapping[str, Any]

    @property
    def is_event(self) -> bool:
        return self.cmd == Cmd.EVENT_CALLBACK

    @property
    def msgid(self) -> str:
        value = self.body.get("msgid")
        return value if isinstance(value, str) else ""

    @property
    def msgtype(self) -> str:
        value = self.body.get("msgtype")
        return value if isinstance(value, str) else ""

    @property
    def eventtype(self) -> str:
        """The event's name (``enter_chat``, ``disconnected_event``, …); "" for a message."""
        event = self.body.get("event")
        name = event.get("eventtype") if self.is_event and isinstance(event, Mapping) else None
        return name if isinstance(name, str) else ""

    def plaintext(self) -> str:
        """The body as compact JSON: what the callback-URL mode would have decrypted."""
        return _dumps(self.body)

    def message(self) -> Message:
        """The typed robot Message of this callback."""
        return parse_message(self.plaintext(), Platform.WECOM_ROBOT)


# --- reading -----------------------------------------------------------------------------

def _decode(data: str | bytes) -> tuple[dict[str, Any], str]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("the frame is not UTF-8 text", reason="not-json") from None
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise FrameError("the frame is not JSON", reason="not-json") from None
    if not isinstance(document, dict):
        raise FrameError("the frame is not a JSON object", reason="not-object")
    headers = document.get("headers")
    req_id = headers.get("req_id") if isinstance(headers, dict) else None
    if not isinstance(req_id, str) or not req_id:
        raise FrameError("the frame has no headers.req_id string", reason="no-req-id")
    return document, req_id


def _optional_body(document: dict[str, Any], req_id: str) -> dict[str, Any] | None:
    body = document.get("body")
    if body is not None and not isinstance(body, dict):
        raise FrameError("the frame's body is not a JSON object", reason="bad-body", req_id=req_id)
    return body


def parse_frame(data: str | bytes) -> Callback | Ack:
    """Read a frame from the platform: a callback, or an ack of one of our frames.

    Raises FrameError (``reason``: not-json, not-object, no-req-id, bad-cmd, unknown-cmd,
    bad-body, bad-errcode) for anything else.
    """
    document, req_id = _decode(data)
    cmd = document.get("cmd")
    if cmd is not None and not isinstance(cmd, str):
        raise FrameError("the frame's cmd is not a string", reason="bad-cmd", req_id=req_id)
    if cmd in Cmd.CALLBACKS:
        body = document.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("msgtype"), str):
            raise FrameError(f"{cmd} has no body object with a msgtype", reason="bad-body", req_id=req_id)
        if cmd == Cmd.EVENT_CALLBACK:
            event = body.get("event")
            if not isinstance(event, dict) or not isinstance(event.get("eventtype"), str):
                raise FrameError("aibot_event_callback has no body.event.eventtype", reason="bad-body",
                                 req_id=req_id)
        return Callback(cmd, req_id, body)
    # an ack has no cmd (a cmd-carrying ack is read as one too, as the Node SDK does)
    if not cmd or "errcode" in document:
        errcode = document.get("errcode")
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise FrameError("the ack has no integer errcode", reason="bad-errcode", req_id=req_id)
        errmsg = document.get("errmsg")
        return Ack(req_id, errcode, errmsg if isinstance(errmsg, str) else "",
                   _optional_body(document, req_id))
    raise FrameError(f"unknown cmd {cmd[:64]!r}", reason="unknown-cmd", req_id=req_id)


def parse_request(data: str | bytes) -> Frame:
    """Read a frame the bot sent (the platform side): its cmd, req_id and body.

    Raises FrameError when it is not JSON, has no req_id, or no known command.
    """
    document, req_id = _decode(data)
    cmd = document.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise FrameError("the frame has no cmd", reason="bad-cmd", req_id=req_id)
    if cmd not in Cmd.REPLIES | Cmd.REQUESTS:
        raise FrameError(f"unknown cmd {cmd[:64]!r}", reason="unknown-cmd", req_id=req_id)
    return Frame(cmd, req_id, _optional_body(document, req_id))


def encode_ack(req_id: str, errcode: int = 0, errmsg: str = "ok", body: Mapping[str, Any] | None = None) -> str:
    """An ack as the platform sends it (for the fake platform and tests)."""
    document: dict[str, Any] = {"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg}
    if body is not None:
        document["body"] = body
    return _dumps(document)


def encode_callback(cmd: str, req_id: str, body: Mapping[str, Any]) -> str:
    """A callback frame as the platform pushes it (for the fake platform and tests)."""
    if cmd not in Cmd.CALLBACKS:
        raise FrameBuildError(f"{cmd!r} is not a callback command")
    return _dumps({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})


# --- checking bodies (both sides) ---------------------------------------------------------

def _check_content(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise FrameBuildError(f"{what} must be a string")
    size = utf8_length(value, what)
    if size > MAX_CONTENT_BYTES:
        raise FrameBuildError(f"{what} is {size} bytes of UTF-8; the limit is {MAX_CONTENT_BYTES}")


def check_stream(stream: Any) -> None:
    """Check one ``stream`` object: an id, a bool finish, content ≤ 20480 bytes, and
    ``msg_item`` (≤ 10 images) only on the finishing frame."""
    if not isinstance(stream, Mapping):
        raise FrameBuildError("stream must be an object")
    stream_id = stream.get("id")
    if not isinstance(stream_id, str) or not stream_id:
        raise FrameBuildError("stream.id must be a non-empty string")
    finish = stream.get("finish", False)
    if not isinstance(finish, bool):
        raise FrameBuildError("stream.finish must be a bool")
    if "content" in stream:
        _check_content(stream["content"], "stream.content")
    items = stream.get("msg_item")
    if items is not None:
        if not finish:
            raise FrameBuildError("stream.msg_item is allowed only on the finishing frame (finish: true)")
        if not isinstance(items, list) or len(items) > MAX_STREAM_IMAGES:
            raise FrameBuildError(f"stream.msg_item must be a list of at most {MAX_STREAM_IMAGES} images")


def _check_card(card: Any, what: str) -> None:
    try:
        check_template_card(card, what)
    except InvalidReplyError as exc:
        raise FrameBuildError(str(exc)) from None


_MSG_BODIES: Final = frozenset({"stream", "template_card", "stream_with_template_card", *MEDIA_TYPES})


def check_body(cmd: str, body: Any) -> None:
    """Check a reply or send body against its command's rules (the Node SDK's body types).

    aibot_respond_msg: stream | template_card | stream_with_template_card | file/image/voice/video;
    aibot_respond_welcome_msg: text | template_card; aibot_respond_update_msg:
    response_type update_template_card with a card; aibot_send_msg: a chatid and markdown |
    template_card | file/image/voice/video.
    """
    if not isinstance(body, Mapping):
        raise FrameBuildError(f"the body of {cmd} must be an object")
    msgtype = body.get("msgtype")
    if cmd == Cmd.RESPOND_UPDATE:
        if body.get("response_type") != "update_template_card":
            raise FrameBuildError("aibot_respond_update_msg needs response_type update_template_card")
        _check_card(body.get("template_card"), "template_card")
        userids = body.get("userids")
        if userids is not None and not (isinstance(userids, list) and all(isinstance(u, str) for u in userids)):
            raise FrameBuildError("userids must be a list of strings")
        return
    if cmd == Cmd.RESPOND_WELCOME:
        if msgtype == "text":
            text = body.get("text")
            _check_content(text.get("content") if isinstance(text, Mapping) else None, "text.content")
        elif msgtype == "template_card":
            _check_card(body.get("template_card"), "template_card")
        else:
            raise FrameBuildError(f"a welcome is text or template_card, not {msgtype!r}")
        return
    if cmd == Cmd.SEND_MSG:
        chatid = body.get("chatid")
        if not isinstance(chatid, str) or not chatid:
            raise FrameBuildError("aibot_send_msg needs a chatid (a userid for a single chat)")
        if msgtype == "markdown":
            markdown = body.get("markdown")
            _check_content(markdown.get("content") if isinstance(markdown, Mapping) else None,
                           "markdown.content")
            return
    elif cmd != Cmd.RESPOND_MSG:
        raise FrameBuildError(f"{cmd!r} takes no reply body")
    if msgtype in ("stream", "stream_with_template_card") and cmd == Cmd.RESPOND_MSG:
        check_stream(body.get("stream"))
        if msgtype == "stream_with_template_card" and "template_card" in body:
            _check_card(body.get("template_card"), "template_card")
    elif msgtype == "template_card":
        _check_card(body.get("template_card"), "template_card")
    elif msgtype in MEDIA_TYPES:
        media = body.get(msgtype)
        media_id = media.get("media_id") if isinstance(media, Mapping) else None
        if not isinstance(media_id, str) or not media_id:
            raise FrameBuildError(f"{msgtype}.media_id must be a non-empty string")
    else:
        accepted = "markdown, template_card, file, image, voice, video" if cmd == Cmd.SEND_MSG else \
            ", ".join(sorted(_MSG_BODIES))
        raise FrameBuildError(f"{cmd} does not take msgtype {msgtype!r} (accepted: {accepted})")


# --- building ---------------------------------------------------------------------------

def _require_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise FrameBuildError(f"{what} must be a non-empty string")
    return value


def subscribe_frame(bot_id: str, secret: str, *, extra: Mapping[str, Any] | None = None,
                    req_id: str | None = None) -> Frame:
    """The first frame on a new connection: ``{bot_id, secret}`` (plus e.g. ``scene``)."""
    body: dict[str, Any] = {"bot_id": _require_text(bot_id, "bot_id"), "secret": _require_text(secret, "secret")}
    for key, value in (extra or {}).items():
        if key not in body:
            body[key] = value
    return Frame(Cmd.SUBSCRIBE, req_id or new_req_id(Cmd.SUBSCRIBE), body)


def ping_frame(req_id: str | None = None) -> Frame:
    """The heartbeat: a ping with a fresh req_id and no body."""
    return Frame(Cmd.PING, req_id or new_req_id(Cmd.PING))


def respond_frame(cmd: str, req_id: str, body: Mapping[str, Any]) -> Frame:
    """A reply frame (``aibot_respond_*``) on a callback's req_id, its body checked."""
    if cmd not in Cmd.REPLIES:
        raise FrameBuildError(f"{cmd!r} is not a reply command")
    check_body(cmd, body)
    return Frame(cmd, _require_text(req_id, "req_id"), dict(body))


def markdown_body(content: str) -> dict[str, Any]:
    """The body of a proactive markdown message."""
    _check_content(content, "markdown.content")
    return {"msgtype": "markdown", "markdown": {"content": content}}


def template_card_body(card: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a template card (proactive, or as a reply)."""
    _check_card(card, "template_card")
    return {"msgtype": "template_card", "template_card": dict(card)}


def media_body(msgtype: str, media_id: str, *, title: str | None = None,
               description: str | None = None) -> dict[str, Any]:
    """The body of a file / image / voice / video message by media_id (video may add a title)."""
    if msgtype not in MEDIA_TYPES:
        raise FrameBuildError(f"media msgtype must be one of {sorted(MEDIA_TYPES)}, got {msgtype!r}")
    media: dict[str, Any] = {"media_id": _require_text(media_id, "media_id")}
    if msgtype == "video":
        if title is not None:
            media["title"] = title
        if description is not None:
            media["description"] = description
    elif title is not None or description is not None:
        raise FrameBuildError("only a video takes a title and a description")
    return {"msgtype": msgtype, msgtype: media}


def send_msg_frame(chatid: str, body: Mapping[str, Any], *, req_id: str | None = None) -> Frame:
    """A proactive message to a chat (a userid for a single chat, the chatid of a group)."""
    full = {"chatid": chatid, **{k: v for k, v in body.items() if k != "chatid"}}
    check_body(Cmd.SEND_MSG, full)
    return Frame(Cmd.SEND_MSG, req_id or new_req_id(Cmd.SEND_MSG), full)


def reply_frame(reply: Reply, to: Callback) -> Frame | None:
    """The frame that answers ``to`` with ``reply``; None for an empty reply (nothing to send).

    Which reply may answer which callback is the HTTP mode's rule (``check_reply``): a
    message takes stream / template_card / stream_with_template_card (aibot_respond_msg),
    enter_chat a text or template_card welcome (aibot_respond_welcome_msg),
    template_card_event an update_template_card (aibot_respond_update_msg). Other events
    take no reply on their req_id: the platform answers 846605.
    """
    message = to.message()
    check_reply(reply, message)
    if isinstance(reply, EmptyReply):
        return None
    body = json.loads(render_reply(reply, message))
    return respond_frame(reply_command(to, message), to.req_id, body)


def reply_command(to: Callback, message: Message | None = None) -> str:
    """The command that answers ``to``: aibot_respond_welcome_msg for enter_chat,
    aibot_respond_update_msg for template_card_event, aibot_respond_msg for a message.

    Other events take no reply on their req_id (FrameBuildError): the platform answers 846605.
    """
    message = to.message() if message is None else message
    if isinstance(message, EnterChatEvent):
        return Cmd.RESPOND_WELCOME
    if isinstance(message, RobotTemplateCardEvent):
        return Cmd.RESPOND_UPDATE
    if to.is_event:
        raise FrameBuildError(f"a {to.eventtype!r} event takes no reply on its req_id; "
                              "send a proactive message (aibot_send_msg) instead")
    return Cmd.RESPOND_MSG


# --- media upload -----------------------------------------------------------------------

def chunk_media(data: bytes, chunk_size: int = MAX_CHUNK_BYTES) -> list[bytes]:
    """``data`` cut into upload chunks of at most 512 KB each, at most 100 chunks."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FrameBuildError("media must be bytes")
    raw = bytes(data)
    if not raw:
        raise FrameBuildError("media cannot be empty")
    if not 0 < chunk_size <= MAX_CHUNK_BYTES:
        raise FrameBuildError(f"chunk size must be 1..{MAX_CHUNK_BYTES} bytes")
    count = math.ceil(len(raw) / chunk_size)
    if count > MAX_CHUNKS:
        raise FrameBuildError(f"media of {len(raw)} bytes needs {count} chunks; the limit is {MAX_CHUNKS}")
    return [raw[i:i + chunk_size] for i in range(0, len(raw), chunk_size)]


def upload_init_frame(media_type: str, filename: str, data: bytes, chunks: Sequence[bytes], *,
                      req_id: str | None = None) -> Frame:
    """Start an upload: type, filename, total size, chunk count and the md5 of the whole file."""
    if media_type not in MEDIA_TYPES:
        raise FrameBuildError(f"media type must be one of {sorted(MEDIA_TYPES)}, got {media_type!r}")
    body = {"type": media_type, "filename": _require_text(filename, "filename"), "total_size": len(data),
            "total_chunks": len(chunks), "md5": hashlib.md5(data).hexdigest()}
    return Frame(Cmd.UPLOAD_INIT, req_id or new_req_id(Cmd.UPLOAD_INIT), body)


def upload_chunk_frame(upload_id: str, index: int, chunk: bytes, *, req_id: str | None = None) -> Frame:
    """One chunk (≤ 512 KB before base64), numbered from 0 as the Node SDK does."""
    if len(chunk) > MAX_CHUNK_BYTES:
        raise FrameBuildError(f"an upload chunk is at most {MAX_CHUNK_BYTES} bytes, got {len(chunk)}")
    if index < 0 or index >= MAX_CHUNKS:
        raise FrameBuildError(f"chunk_index must be 0..{MAX_CHUNKS - 1}")
    body = {"upload_id": _require_text(upload_id, "upload_id"), "chunk_index": index,
            "base64_data": base64.b64encode(chunk).decode("ascii")}
    return Frame(Cmd.UPLOAD_CHUNK, req_id or new_req_id(Cmd.UPLOAD_CHUNK), body)


def upload_finish_frame(upload_id: str, *, req_id: str | None = None) -> Frame:
    """End an upload; the ack's body carries ``media_id`` (valid 3 days), ``type``, ``created_at``."""
    return Frame(Cmd.UPLOAD_FINISH, req_id or new_req_id(Cmd.UPLOAD_FINISH),
                 {"upload_id": _require_text(upload_id, "upload_id")})
