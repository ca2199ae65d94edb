"""WeCom smart robot callbacks (decrypted JSON, docs 100719 / 101027).

Every callback carries ``msgid`` (unique per callback: the dedup key), ``aibotid``,
``chattype``, ``from.userid``, optionally ``chatid`` and ``response_url``. Events put
their name in ``event.eventtype`` and their payload in ``event.<eventtype>``. A
``msgtype: "stream"`` callback is a *stream refresh*: WeCom asking for the current
state of a stream this server started; only a stream reply may answer it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Message
from .fields import items as items_field
from .fields import Path, as_items, as_mapping, as_str, lookup, optional_text, text
from .wecom import selected_items

__all__ = [
    "EnterChatEvent",
    "FeedbackEvent",
    "Quote",
    "RobotEvent",
    "RobotFileMessage",
    "RobotGenericEvent",
    "RobotGenericMessage",
    "RobotImageMessage",
    "RobotMessage",
    "RobotMixedMessage",
    "RobotTemplateCardEvent",
    "RobotTextMessage",
    "RobotVideoMessage",
    "RobotVoiceMessage",
    "StreamRefresh",
]


class Quote:
    """The message a user quoted: its msgtype and payload (text content when it is text)."""

    __slots__ = ("msg_type", "raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.msg_type = as_str(raw.get("msgtype"))

    @property
    def content(self) -> str:
        """The quoted text (text or voice content), "" for other kinds."""
        return as_str(lookup(self.raw, (("text", "content"), ("voice", "content"))))

    def __repr__(self) -> str:
        return f"Quote(msg_type={self.msg_type!r})"


class RobotMessage(Message):
    """Base of robot callbacks: ``source`` is from.userid, ``target`` the aibotid."""

    __slots__ = ()
    _source_paths: ClassVar[tuple[Path, ...]] = (("from", "userid"),)
    _target_paths: ClassVar[tuple[Path, ...]] = ("aibotid",)
    _create_time_paths: ClassVar[tuple[Path, ...]] = ("create_time",)
    _not_exported: ClassVar[frozenset[str]] = frozenset({"quote"})  # exported as its raw dict

    msg_id = text("msgid")
    bot_id = text("aibotid")
    chat_id = optional_text("chatid")
    chat_type = text("chattype")
    corp_id = optional_text(("from", "corpid"))
    response_url = optional_text("response_url")

    @property
    def quote(self) -> Quote | None:
        value = self.raw.get("quote")
        return Quote(value) if isinstance(value, dict) else None

    def _identity_label(self) -> str:
        msg_id = self.msg_id
        return f"msgid:{msg_id}" if msg_id else super()._identity_label()

    def fields(self) -> dict[str, Any]:
        data = super().fields()
        quote = self.raw.get("quote")
        data["quote"] = quote if isinstance(quote, dict) else None
        return data


class _RobotUserMessage(RobotMessage):
    __slots__ = ()
    is_user_message = True


class RobotTextMessage(_RobotUserMessage):
    """Text; in a group it includes the "@robot" mention."""

    __slots__ = ()
    content = text(("text", "content"))


class RobotImageMessage(_RobotUserMessage):
    """An image: ``url`` downloads an AES-encrypted file (valid 5 minutes)."""

    __slots__ = ()
    url = text(("image", "url"))


class RobotMixedMessage(_RobotUserMessage):
    """Text and images mixed: ``items`` is mixed.msg_item[], each with its msgtype."""

    __slots__ = ()
    items = items_field(("mixed", "msg_item"))

    @property
    def content(self) -> str:
        """The text parts joined by newlines."""
        parts = [as_str(lookup(item, (("text", "content"),))) for item in self.items
                 if isinstance(item, dict) and item.get("msgtype") == "text"]
        return "\n".join(parts)

    @property
    def image_urls(self) -> list[str]:
        return [as_str(lookup(item, (("image", "url"),))) for item in self.items
                if isinstance(item, dict) and item.get("msgtype") == "image"]


class RobotVoiceMessage(_RobotUserMessage):
    """Voice, delivered as its speech-to-text ``content``."""

    __slots__ = ()
    content = text(("voice", "content"))


class RobotFileMessage(_RobotUserMessage):
    __slots__ = ()
    url = text(("file", "url"))


class RobotVideoMessage(_RobotUserMessage):
    __slots__ = ()
    url = text(("video", "url"))


class RobotGenericMessage(_RobotUserMessage):
    """A robot msgtype this library has no class for; every field is still in ``raw``."""

    __slots__ = ()


class StreamRefresh(RobotMessage):
    """WeCom polling a stream this server started; answer with its current StreamReply."""

    __slots__ = ()
    stream_id = text(("stream", "id"))

    def _identity_label(self) -> str:
        return f"stream:{self.stream_id}"


class RobotEvent(RobotMessage):
    """Base of robot events; ``payload`` is the ``event.<eventtype>`` object."""

    __slots__ = ()

    @property
    def payload(self) -> dict[str, Any]:
        event = as_mapping(self.raw.get("event"))
        return as_mapping(event.get(as_str(event.get("eventtype"))))


class RobotGenericEvent(RobotEvent):
    __slots__ = ()


class EnterChatEvent(RobotEvent):
    """First entry into the single chat of the day; a welcome (text or card) may answer it."""

    __slots__ = ()


class RobotTemplateCardEvent(RobotEvent):
    """A template card click; answer within 5 s with UpdateTemplateCardReply (same task_id)."""

    __slots__ = ()

    @property
    def card_type(self) -> str:
        return as_str(self.payload.get("card_type"))

    @property
    def event_key(self) -> str:
        return as_str(self.payload.get("event_key"))

    @property
    def task_id(self) -> str:
        return as_str(self.payload.get("task_id"))

    @property
    def selected_items(self) -> list[dict[str, Any]]:
        return selected_items(self.payload.get("selected_items"), "selected_item", "question_key",
                              "option_ids", "option_id")


class FeedbackEvent(RobotEvent):
    """A user rated an answer (type 1 accurate, 2 inaccurate, 3 cancelled); answer empty only."""

    __slots__ = ()

    @property
    def feedback_id(self) -> str:
        return as_str(self.payload.get("id"))

    @property
    def feedback_type(self) -> int | None:
        value = self.payload.get("type")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def content(self) -> str:
        return as_str(self.payload.get("content"))

    @property
    def inaccurate_reasons(self) -> list[int]:
        return [r for r in as_items(self.payload.get("inaccurate_reason_list"))
                if isinstance(r, int) and not isinstance(r, bool)]


ROBOT_MESSAGE_CLASSES: dict[str, type[RobotMessage]] = {
    "text": RobotTextMessage,
    "image": RobotImageMessage,
    "mixed": RobotMixedMessage,
    "voice": RobotVoiceMessage,
    "file": RobotFileMessage,
    "video": RobotVideoMessage,
    "stream": StreamRefresh,
}

ROBOT_EVENT_CLASSES: dict[str, type[RobotEvent]] = {
    "enter_chat": EnterChatEvent,
    "template_card_event": RobotTemplateCardEvent,
    "feedback_event": FeedbackEvent,
}

