"""Passive replies of Official Accounts and WeCom apps, and the "no reply" answers.

A reply is a plain value: build it, return it from a handler, and ``render_reply`` turns
it into the XML (or, for robots, JSON) that is then encrypted. The same ``TextReply``
answers an Official Account, a WeCom app and a robot's enter_chat (its welcome text);
which reply fits which callback is checked when rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import InvalidReplyError

__all__ = [
    "MAX_NEWS_ARTICLES",
    "Article",
    "EmptyReply",
    "ImageReply",
    "MarkdownReply",
    "MusicReply",
    "NewsReply",
    "NoReply",
    "Reply",
    "SuccessReply",
    "TextReply",
    "TransferCustomerServiceReply",
    "UpdateButtonReply",
    "UpdateTemplateCardReply",
    "VideoReply",
    "VoiceReply",
    "require_text",
]

# Hard ceiling for a news reply; the per-callback limit (1 or 8) is applied when rendering.
MAX_NEWS_ARTICLES = 8


def require_text(value: Any, what: str, *, optional: bool = False) -> None:
    """Refuse a non-str where the protocol carries text (a bad dict from a backend, a bug)."""
    if optional and value is None:
        return
    if not isinstance(value, str):
        raise InvalidReplyError(f"{what} must be a string, not {type(value).__name__}")


class Reply:
    """Base of every reply; ``type`` is the name used in ``to_dict()`` / ``reply_from_dict``."""

    __slots__ = ()
    type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``reply_from_dict`` turns it back into an equal reply."""
        raise NotImplementedError


class NoReply(Reply):
    """An answer that tells the platform "nothing to say"; sent as-is, never encrypted."""

    __slots__ = ()
    body: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EmptyReply(NoReply):
    """A zero-length body: Official Account, WeCom app and robot "no reply"."""

    __slots__ = ()
    type = "empty"
    body = ""


class SuccessReply(NoReply):
    """The literal body ``success``: Official Account "no reply" and the answer WeCom suite
    instruction callbacks (suite_ticket, create_auth, …) require."""

    __slots__ = ()
    type = "success"
    body = "success"


@dataclass(frozen=True, slots=True)
class TextReply(Reply):
    """Text; for a WeCom app at most 2048 bytes (UTF-8); for a robot, the enter_chat welcome."""

    content: str
    type: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        require_text(self.content, "TextReply.content")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "content": self.content}


@dataclass(frozen=True, slots=True)
class MarkdownReply(Reply):
    """Markdown, sent through a message API only: a WeCom app message (``msgtype = "markdown"``,
    at most 2048 bytes of UTF-8) or a robot's ``response_url``.

    No platform takes markdown as a passive reply. A handler (or a forwarding backend) that
    returns one in time on a channel that can send has it sent through the API at once, the
    callback answered "no reply"; on a channel that cannot, rendering it refuses it.
    """

    content: str
    type: ClassVar[str] = "markdown"

    def __post_init__(self) -> None:
        require_text(self.content, "MarkdownReply.content")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "content": self.content}


@dataclass(frozen=True, slots=True)
class ImageReply(Reply):
    """An image already uploaded as (temporary or permanent) material."""

    media_id: str
    type: ClassVar[str] = "image"

    def __post_init__(self) -> None:
        require_text(self.media_id, "ImageReply.media_id")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "media_id": self.media_id}


@dataclass(frozen=True, slots=True)
class VoiceReply(Reply):
    media_id: str
    type: ClassVar[str] = "voice"

    def __post_init__(self) -> None:
        require_text(self.media_id, "VoiceReply.media_id")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "media_id": self.media_id}


@dataclass(frozen=True, slots=True)
class VideoReply(Reply):
    media_id: str
    title: str = ""
    description: str = ""
    type: ClassVar[str] = "video"

    def __post_init__(self) -> None:
        require_text(self.media_id, "VideoReply.media_id")
        require_text(self.title, "VideoReply.title")
        require_text(self.description, "VideoReply.description")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "media_id": self.media_id, "title": self.title,
                "description": self.description}


@dataclass(frozen=True, slots=True)
class MusicReply(Reply):
    """Official Account only."""

    title: str = ""
    description: str = ""
    music_url: str = ""
    hq_music_url: str = ""
    thumb_media_id: str = ""
    type: ClassVar[str] = "music"

    def __post_init__(self) -> None:
        for name in ("title", "description", "music_url", "hq_music_url", "thumb_media_id"):
            require_text(getattr(self, name), f"MusicReply.{name}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "title": self.title, "description": self.description,
                "music_url": self.music_url, "hq_music_url": self.hq_music_url,
                "thumb_media_id": self.thumb_media_id}


@dataclass(frozen=True, slots=True)
class Article:
    """One item of a news reply."""

    title: str = ""
    description: str = ""
    pic_url: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        for name in ("title", "description", "pic_url", "url"):
            require_text(getattr(self, name), f"Article.{name}")

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "description": self.description, "pic_url": self.pic_url,
                "url": self.url}


@dataclass(frozen=True, slots=True)
class NewsReply(Reply):
    """News (图文) articles.

    How many articles a callback accepts depends on what it answers: an Official Account
    reply to a user message (text, image, voice, video, shortvideo, location, link) takes
    **1** article, a reply to an event up to **8** (the current passive-reply doc; older
    docs said 10). WeCom apps take up to 8. ``max_articles`` overrides that rule
    (1..8) when you know better; the count is checked when rendering.
    """

    articles: tuple[Article, ...]
    max_articles: int | None = None
    type: ClassVar[str] = "news"

    def __init__(self, articles: Sequence[Article], max_articles: int | None = None) -> None:
        if isinstance(articles, (str, bytes)) or not isinstance(articles, Sequence):
            raise InvalidReplyError("NewsReply.articles must be a sequence of Article")
        chosen = tuple(articles)
        if not chosen:
            raise InvalidReplyError("a news reply needs at least one article")
        if not all(isinstance(article, Article) for article in chosen):
            raise InvalidReplyError("NewsReply.articles must hold Article values")
        if max_articles is not None:
            if (not isinstance(max_articles, int) or isinstance(max_articles, bool)
                    or not 1 <= max_articles <= MAX_NEWS_ARTICLES):
                raise InvalidReplyError(f"max_articles must be an int from 1 to {MAX_NEWS_ARTICLES}")
            if len(chosen) > max_articles:
                raise InvalidReplyError(f"news reply has {len(chosen)} articles, max_articles is {max_articles}")
        if len(chosen) > MAX_NEWS_ARTICLES:
            raise InvalidReplyError(f"a news reply carries at most {MAX_NEWS_ARTICLES} articles, got {len(chosen)}")
        object.__setattr__(self, "articles", chosen)
        object.__setattr__(self, "max_articles", max_articles)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "articles": [a.to_dict() for a in self.articles]}
        if self.max_articles is not None:
            data["max_articles"] = self.max_articles
        return data


@dataclass(frozen=True, slots=True)
class TransferCustomerServiceReply(Reply):
    """Official Account only: hand the conversation to customer service (多客服).

    The message goes to the customer-service staff instead of being answered; with
    ``kf_account`` (``name@account``) to that one account, which must be online, else
    to whoever is free.
    """

    kf_account: str | None = None
    type: ClassVar[str] = "transfer_customer_service"

    def __post_init__(self) -> None:
        require_text(self.kf_account, "TransferCustomerServiceReply.kf_account", optional=True)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        if self.kf_account is not None:
            data["kf_account"] = self.kf_account
        return data


@dataclass(frozen=True, slots=True)
class UpdateButtonReply(Reply):
    """WeCom app, answering a template_card_event: rename the clicked card's button."""

    replace_name: str
    type: ClassVar[str] = "update_button"

    def __post_init__(self) -> None:
        require_text(self.replace_name, "UpdateButtonReply.replace_name")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "replace_name": self.replace_name}


@dataclass(frozen=True, slots=True)
class UpdateTemplateCardReply(Reply):
    """Replace the template card a user clicked (WeCom app or robot template_card_event).

    ``template_card`` is the card as the platform documents it: for a WeCom app the XML
    element names (``{"CardType": "text_notice", "MainTitle": {...}}``, lists become
    repeated elements), for a robot the JSON keys (``{"card_type": ..., "task_id": ...}``;
    a missing task_id is taken from the callback, a different one is refused).
    ``user_ids`` (robot only) limits the update to those users.
    """

    template_card: Mapping[str, Any]
    user_ids: tuple[str, ...] = ()
    type: ClassVar[str] = "update_template_card"

    def __init__(self, template_card: Mapping[str, Any], user_ids: Sequence[str] = ()) -> None:
        if not isinstance(template_card, Mapping):
            raise InvalidReplyError("UpdateTemplateCardReply.template_card must be a mapping")
        if isinstance(user_ids, (str, bytes)) or not isinstance(user_ids, Sequence):
            raise InvalidReplyError("UpdateTemplateCardReply.user_ids must be a list of strings")
        for user_id in user_ids:
            require_text(user_id, "UpdateTemplateCardReply.user_ids[]")
        object.__setattr__(self, "template_card", dict(template_card))
        object.__setattr__(self, "user_ids", tuple(user_ids))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "template_card": dict(self.template_card)}
        if self.user_ids:
            data["user_ids"] = list(self.user_ids)
        return data

