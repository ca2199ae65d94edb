"""Passive replies of WeCom smart robots: streams and template cards.

Limits from the robot reply doc (101031/101032), checked when the value is built so a
bad reply never reaches the wire: stream content is the *cumulative* text, at most
20480 bytes of UTF-8; images ride only on the final (``finish=True``) reply, at most
10, each at most 10 MB with the md5 of its raw bytes; a feedback id is at most 256 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import InvalidReplyError
from .replies import Reply, require_text

__all__ = [
    "MAX_FEEDBACK_ID_BYTES",
    "MAX_STREAM_CONTENT_BYTES",
    "MAX_STREAM_IMAGES",
    "MAX_STREAM_IMAGE_BYTES",
    "TEMPLATE_CARD_TYPES",
    "StreamImage",
    "StreamReply",
    "StreamWithTemplateCardReply",
    "TemplateCardReply",
    "check_template_card",
    "new_stream_id",
    "utf8_length",
]

MAX_STREAM_CONTENT_BYTES = 20480
MAX_STREAM_IMAGES = 10
MAX_STREAM_IMAGE_BYTES = 10 * 1024 * 1024
MAX_FEEDBACK_ID_BYTES = 256
TEMPLATE_CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"})
# task_id: letters, digits, "_-@", at most 128 (template card doc 101032)
_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


def utf8_length(value: str, what: str) -> int:
    """Length in UTF-8 bytes; text that cannot be UTF-8 (lone surrogates) is refused."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidReplyError(f"{what} is not encodable as UTF-8") from None


def new_stream_id() -> str:
    """A fresh stream id (32 hex characters from the OS CSPRNG)."""
    return secrets.token_hex(16)


def check_template_card(card: Any, what: str = "template_card") -> dict[str, Any]:
    """A robot template card as a dict, with its card_type and task_id checked."""
    if not isinstance(card, Mapping):
        raise InvalidReplyError(f"{what} must be a mapping (the card's JSON object)")
    card_type = card.get("card_type")
    if card_type not in TEMPLATE_CARD_TYPES:
        accepted = ", ".join(sorted(TEMPLATE_CARD_TYPES))
        raise InvalidReplyError(f"{what}.card_type must be one of {accepted}, got {card_type!r}")
    task_id = card.get("task_id")
    if task_id is not None and (not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id)):
        raise InvalidReplyError(f"{what}.task_id must be 1-128 characters of [0-9A-Za-z_-@]")
    return dict(card)


def _check_feedback_id(feedback_id: Any, what: str) -> None:
    if feedback_id is None:
        return
    require_text(feedback_id, what)
    if not feedback_id or utf8_length(feedback_id, what) > MAX_FEEDBACK_ID_BYTES:
        raise InvalidReplyError(f"{what} must be 1-{MAX_FEEDBACK_ID_BYTES} bytes of UTF-8")


@dataclass(frozen=True, slots=True)
class StreamImage:
    """An image for a final stream reply: standard base64 of the raw bytes and their md5 (hex)."""

    base64: str
    md5: str

    def __post_init__(self) -> None:
        require_text(self.base64, "StreamImage.base64")
        require_text(self.md5, "StreamImage.md5")
        if not _MD5_HEX.fullmatch(self.md5):
            raise InvalidReplyError("StreamImage.md5 must be 32 hex characters")
        if len(self.base64) > (MAX_STREAM_IMAGE_BYTES + 2) // 3 * 4:
            raise InvalidReplyError(f"a stream image is at most {MAX_STREAM_IMAGE_BYTES} bytes")
        try:
            data = base64.b64decode(self.base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidReplyError("StreamImage.base64 is not standard base64") from None
        if not data:
            raise InvalidReplyError("a stream image cannot be empty")
        # the platform checks the md5 against the decoded bytes; catch a mismatch here
        if hashlib.md5(data).hexdigest() != self.md5.lower():
            raise InvalidReplyError("StreamImage.md5 is not the md5 of the decoded image")

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamImage:
        """The image (JPG or PNG bytes) encoded for a stream reply."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidReplyError("StreamImage.from_bytes takes bytes")
        raw = bytes(data)
        return cls(base64.b64encode(raw).decode("ascii"), hashlib.md5(raw).hexdigest())

    def to_dict(self) -> dict[str, str]:
        return {"base64": self.base64, "md5": self.md5}


@dataclass(frozen=True, slots=True)
class StreamReply(Reply):
    """One state of a streamed answer: the reply to the user message and to every refresh.

    ``content`` is the whole text so far, not a delta. The server keeps one of these per
    stream id and answers each stream refresh callback with the current state;
    ``with_content``/``append``/``finished`` make the next state (values are immutable).
    """

    id: str
    content: str = ""
    finish: bool = False
    images: tuple[StreamImage, ...] = ()
    feedback_id: str | None = None
    type: ClassVar[str] = "stream"

    def __init__(self, id: str, content: str = "", finish: bool = False,
                 images: Sequence[StreamImage] = (), feedback_id: str | None = None) -> None:
        require_text(id, "StreamReply.id")
        if not id:
            raise InvalidReplyError("StreamReply.id cannot be empty")
        require_text(content, "StreamReply.content")
        if not isinstance(finish, bool):
            raise InvalidReplyError("StreamReply.finish must be a bool")
        if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
            raise InvalidReplyError("StreamReply.images must be a sequence of StreamImage")
        chosen = tuple(images)
        if not all(isinstance(image, StreamImage) for image in chosen):
            raise InvalidReplyError("StreamReply.images must hold StreamImage values")
        size = utf8_length(content, "StreamReply.content")
        if size > MAX_STREAM_CONTENT_BYTES:
            raise InvalidReplyError(
                f"stream content is {size} bytes of UTF-8; the limit is {MAX_STREAM_CONTENT_BYTES}")
        if chosen and not finish:
            raise InvalidReplyError("images can only be sent with the final stream reply (finish=True)")
        if len(chosen) > MAX_STREAM_IMAGES:
            raise InvalidReplyError(f"a stream carries at most {MAX_STREAM_IMAGES} images, got {len(chosen)}")
        _check_feedback_id(feedback_id, "StreamReply.feedback_id")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "content", content)
        object.__setattr__(self, "finish", finish)
        object.__setattr__(self, "images", chosen)
        object.__setattr__(self, "feedback_id", feedback_id)

    def with_content(self, content: str) -> StreamReply:
        """The next state with the whole text replaced by ``content``."""
        self._check_open()
        return StreamReply(self.id, content, False, (), self.feedback_id)

    def append(self, text: str) -> StreamReply:
        """The next state with ``text`` added to the end of the content."""
        self._check_open()
        require_text(text, "appended text")
        return StreamReply(self.id, self.content + text, False, (), self.feedback_id)

    def finished(self, content: str | None = None, images: Sequence[StreamImage] = ()) -> StreamReply:
        """The final state (``finish=True``), optionally with final content and images."""
        self._check_open()
        return StreamReply(self.id, self.content if content is None else content, True, images,
                           self.feedback_id)

    def _check_open(self) -> None:
        if self.finish:
            raise InvalidReplyError(f"stream {self.id!r} is already finished")

    def stream_object(self) -> dict[str, Any]:
        """The ``stream`` JSON object of the reply."""
        stream: dict[str, Any] = {"id": self.id, "finish": self.finish, "content": self.content}
        if self.images:
            stream["msg_item"] = [{"msgtype": "image", "image": image.to_dict()} for image in self.images]
        if self.feedback_id is not None:
            stream["feedback"] = {"id": self.feedback_id}
        return stream

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "id": self.id, "content": self.content,
                                "finish": self.finish}
        if self.images:
            data["images"] = [image.to_dict() for image in self.images]
        if self.feedback_id is not None:
            data["feedback_id"] = self.feedback_id
        return data


@dataclass(frozen=True, slots=True)
class TemplateCardReply(Reply):
    """A template card: a robot's answer to a user message, or its enter_chat welcome."""

    template_card: Mapping[str, Any]
    feedback_id: str | None = None
    type: ClassVar[str] = "template_card"

    def __init__(self, template_card: Mapping[str, Any], feedback_id: str | None = None) -> None:
        card = check_template_card(template_card, "TemplateCardReply.template_card")
        _check_feedback_id(feedback_id, "TemplateCardReply.feedback_id")
        object.__setattr__(self, "template_card", card)
        object.__setattr__(self, "feedback_id", feedback_id)

    def card_object(self) -> dict[str, Any]:
        card = dict(self.template_card)
        if self.feedback_id is not None:
            card["feedback"] = {"id": self.feedback_id}
        return card

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "template_card": dict(self.template_card)}
        if self.feedback_id is not None:
            data["feedback_id"] = self.feedback_id
        return data


@dataclass(frozen=True, slots=True)
class StreamWithTemplateCardReply(Reply):
    """A stream state plus a template card (the card is sent once per message)."""

    stream: StreamReply
    template_card: Mapping[str, Any]
    type: ClassVar[str] = "stream_with_template_card"

    def __init__(self, stream: StreamReply, template_card: Mapping[str, Any]) -> None:
        if not isinstance(stream, StreamReply):
            raise InvalidReplyError("StreamWithTemplateCardReply.stream must be a StreamReply")
        card = check_template_card(template_card, "StreamWithTemplateCardReply.template_card")
        object.__setattr__(self, "stream", stream)
        object.__setattr__(self, "template_card", card)

    def to_dict(self) -> dict[str, Any]:
        stream = self.stream.to_dict()
        del stream["type"]
        return {"type": self.type, "stream": stream, "template_card": dict(self.template_card)}
