"""User messages of Official Accounts and WeCom apps (the XML family; JSON bodies too).

Both platforms use the same field names, WeCom adds ``AgentID``; one class serves both
and ``platform`` tells them apart. MsgId is ``MsgID`` in some pushes and AgentID is
``AgentId`` in others: each field names both spellings.
"""

from __future__ import annotations

from typing import ClassVar

from .base import Message
from .fields import Path, floating, integer, optional_text, text

__all__ = [
    "GenericMessage",
    "ImageMessage",
    "LinkMessage",
    "LocationMessage",
    "ShortVideoMessage",
    "TextMessage",
    "VideoMessage",
    "VoiceMessage",
    "XmlMessage",
]


class XmlMessage(Message):
    """Base of Official Account and WeCom app callbacks (ToUserName/FromUserName/CreateTime)."""

    __slots__ = ()
    _source_paths: ClassVar[tuple[Path, ...]] = ("FromUserName",)
    _target_paths: ClassVar[tuple[Path, ...]] = ("ToUserName",)
    _create_time_paths: ClassVar[tuple[Path, ...]] = ("CreateTime",)

    msg_id = integer("MsgId", "MsgID")
    agent_id = integer("AgentID", "AgentId")

    def _identity_label(self) -> str:
        msg_id = self.msg_id
        if msg_id is not None and self.event is None:
            return f"msgid:{msg_id}"
        return super()._identity_label()


class _UserMessage(XmlMessage):
    __slots__ = ()
    is_user_message = True
    msg_data_id = integer("MsgDataId")  # set when the message comes from an article
    idx = integer("Idx")


class TextMessage(_UserMessage):
    __slots__ = ()
    content = text("Content")


class ImageMessage(_UserMessage):
    __slots__ = ()
    pic_url = text("PicUrl")
    media_id = text("MediaId")


class VoiceMessage(_UserMessage):
    __slots__ = ()
    media_id = text("MediaId")
    format = text("Format")
    #: speech-to-text, present when the account enabled voice recognition
    recognition = optional_text("Recognition")


class VideoMessage(_UserMessage):
    __slots__ = ()
    media_id = text("MediaId")
    thumb_media_id = text("ThumbMediaId")


class ShortVideoMessage(VideoMessage):
    __slots__ = ()


class LocationMessage(_UserMessage):
    __slots__ = ()
    latitude = floating("Location_X")
    longitude = floating("Location_Y")
    scale = integer("Scale")
    label = text("Label")
    app_type = optional_text("AppType")


class LinkMessage(_UserMessage):
    __slots__ = ()
    title = text("Title")
    description = text("Description")
    url = text("Url")
    pic_url = optional_text("PicUrl")


class GenericMessage(_UserMessage):
    """A message type this library has no class for; every field is still in ``raw``."""

    __slots__ = ()


MESSAGE_CLASSES: dict[str, type[XmlMessage]] = {
    "text": TextMessage,
    "image": ImageMessage,
    "voice": VoiceMessage,
    "video": VideoMessage,
    "shortvideo": ShortVideoMessage,
    "location": LocationMessage,
    "link": LinkMessage,
}
