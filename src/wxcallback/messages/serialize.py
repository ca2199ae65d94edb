"""Replies as plain dicts, for backends that answer in JSON (the server's forward mode).

Schema (every key but ``type`` optional unless noted; unknown keys are refused so a typo
is an error rather than a silently empty reply)::

    {"type": "empty"} | {"type": "success"}
    {"type": "text", "content": str}                                  required: content
    {"type": "markdown", "content": str}     (WeCom app, robot: sent through the message API)
    {"type": "image" | "voice", "media_id": str}                      required: media_id
    {"type": "video", "media_id": str, "title": str, "description": str}
    {"type": "music", "title", "description", "music_url", "hq_music_url", "thumb_media_id"}
    {"type": "news", "articles": [{"title", "description", "pic_url", "url"}], "max_articles": int}
    {"type": "transfer_customer_service", "kf_account": str}         (Official Account)
    {"type": "update_button", "replace_name": str}
    {"type": "update_template_card", "template_card": {...}, "user_ids": [str]}
    {"type": "template_card", "template_card": {...}, "feedback_id": str}
    {"type": "stream", "id": str, "content": str, "finish": bool,
     "images": [{"base64": str, "md5": str}], "feedback_id": str}    required: id
    {"type": "stream_with_template_card", "stream": {<stream keys without type>},
     "template_card": {...}}

``reply_from_dict(reply.to_dict(), platform) == reply`` for every reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidReplyError
from .platform import Platform
from .replies import (
    Article,
    EmptyReply,
    MarkdownReply,
    ImageReply,
    MusicReply,
    NewsReply,
    Reply,
    SuccessReply,
    TextReply,
    TransferCustomerServiceReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from .robot_replies import StreamImage, StreamReply, StreamWithTemplateCardReply, TemplateCardReply

__all__ = ["REPLY_TYPES", "reply_from_dict"]

_Builder = Callable[[Mapping[str, Any]], Reply]


def _keys(data: Mapping[str, Any], what: str, required: tuple[str, ...],
          optional: tuple[str, ...] = ()) -> None:
    missing = [key for key in required if key not in data]
    if missing:
        raise InvalidReplyError(f"{what} needs {', '.join(missing)}")
    unknown = sorted(str(key) for key in data if key not in required and key not in optional)
    if unknown:
        raise InvalidReplyError(f"{what} has unknown keys: {', '.join(unknown)}")


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidReplyError(f"{what} must be an object, not {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidReplyError(f"{what} must be a list, not {type(value).__name__}")
    return value


def _simple(cls: type[Reply], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> _Builder:
    def build(data: Mapping[str, Any]) -> Reply:
        _keys(data, f"a {cls.type!r} reply", ("type", *required), optional)
        return cls(**{key: data[key] for key in (*required, *optional) if key in data})
    return build


def _news(data: Mapping[str, Any]) -> Reply:
    _keys(data, "a 'news' reply", ("type", "articles"), ("max_articles",))
    articles = []
    for index, item in enumerate(_list(data["articles"], "news.articles")):
        article = _mapping(item, f"news.articles[{index}]")
        _keys(article, f"news.articles[{index}]", (), ("title", "description", "pic_url", "url"))
        articles.append(Article(**article))
    return NewsReply(articles, data.get("max_articles"))


def _update_card(data: Mapping[str, Any]) -> Reply:
    _keys(data, "an 'update_template_card' reply", ("type", "template_card"), ("user_ids",))
    return UpdateTemplateCardReply(_mapping(data["template_card"], "template_card"),
                                   _list(data.get("user_ids", []), "user_ids"))


def _stream_fields(data: Mapping[str, Any], what: str) -> StreamReply:
    _keys(data, what, ("id",), ("type", "content", "finish", "images", "feedback_id"))
    images = []
    for index, item in enumerate(_list(data.get("images", []), f"{what}.images")):
        image = _mapping(item, f"{what}.images[{index}]")
        _keys(image, f"{what}.images[{index}]", ("base64", "md5"))
        images.append(StreamImage(image["base64"], image["md5"]))
    return StreamReply(data["id"], data.get("content", ""), data.get("finish", False), images,
                       data.get("feedback_id"))


def _stream(data: Mapping[str, Any]) -> Reply:
    return _stream_fields(data, "a 'stream' reply")


def _template_card(data: Mapping[str, Any]) -> Reply:
    _keys(data, "a 'template_card' reply", ("type", "template_card"), ("feedback_id",))
    return TemplateCardReply(_mapping(data["template_card"], "template_card"), data.get("feedback_id"))


def _stream_with_card(data: Mapping[str, Any]) -> Reply:
    _keys(data, "a 'stream_with_template_card' reply", ("type", "stream", "template_card"))
    stream = _mapping(data["stream"], "stream")
    if "type" in stream:
        raise InvalidReplyError("stream_with_template_card.stream has no 'type' key")
    return StreamWithTemplateCardReply(_stream_fields(stream, "stream_with_template_card.stream"),
                                       _mapping(data["template_card"], "template_card"))


_BUILDERS: dict[str, _Builder] = {
    "empty": _simple(EmptyReply, ()),
    "success": _simple(SuccessReply, ()),
    "text": _simple(TextReply, ("content",)),
    "markdown": _simple(MarkdownReply, ("content",)),
    "image": _simple(ImageReply, ("media_id",)),
    "voice": _simple(VoiceReply, ("media_id",)),
    "video": _simple(VideoReply, ("media_id",), ("title", "description")),
    "music": _simple(MusicReply, (), ("title", "description", "music_url", "hq_music_url", "thumb_media_id")),
    "news": _news,
    "transfer_customer_service": _simple(TransferCustomerServiceReply, (), ("kf_account",)),
    "update_button": _simple(UpdateButtonReply, ("replace_name",)),
    "update_template_card": _update_card,
    "template_card": _template_card,
    "stream": _stream,
    "stream_with_template_card": _stream_with_card,
}

#: reply types each platform has; reply_from_dict refuses the others
REPLY_TYPES: dict[Platform, frozenset[str]] = {
    Platform.OFFICIAL_ACCOUNT: frozenset({"empty", "success", "text", "image", "voice", "video", "music",
                                          "news", "transfer_customer_service"}),
    Platform.MINIPROGRAM: frozenset({"empty", "success", "transfer_customer_service"}),
    Platform.WECOM_APP: frozenset({"empty", "success", "text", "markdown", "image", "voice", "video", "news",
                                   "update_button", "update_template_card"}),
    Platform.WECOM_ROBOT: frozenset({"empty", "text", "markdown", "template_card", "stream",
                                     "stream_with_template_card", "update_template_card"}),
}


def reply_from_dict(data: Mapping[str, Any], platform: Platform | str) -> Reply:
    """The Reply a dict describes (see the module doc); InvalidReplyError when it is not one."""
    where = Platform.of(platform)
    if not isinstance(data, Mapping):
        raise InvalidReplyError(f"a reply must be a JSON object, not {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _BUILDERS:
        raise InvalidReplyError(f"unknown reply type {kind!r}: use one of {', '.join(sorted(_BUILDERS))}")
    if kind not in REPLY_TYPES[where]:
        raise InvalidReplyError(f"{where.value} has no {kind!r} reply: use one of "
                                f"{', '.join(sorted(REPLY_TYPES[where]))}")
    try:
        return _BUILDERS[kind](data)
    except TypeError as exc:  # e.g. a keyword the constructor refuses
        raise InvalidReplyError(f"bad {kind!r} reply: {exc}") from None
