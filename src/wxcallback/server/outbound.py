"""Reply values as the platforms' message-sending APIs take them: the JSON of one active send.

A passive reply is XML (or robot JSON) answered on the callback; once the callback's
deadline has passed, the same reply can only go through an API, whose JSON differs:

- Official Account customer-service message (``POST /cgi-bin/message/custom/send``):
  ``{"touser": openid, "msgtype": "text", "text": {"content": …}}``; image, voice, video,
  music and news (one article) too. Mini programs take text and image only.
- WeCom app message (``POST /cgi-bin/message/send``): ``{"touser": userid, "msgtype": "text",
  "agentid": 1000002, "text": {…}}``; markdown (at most 2048 bytes), image, voice, video and
  news (up to 8 articles).
- Smart robot ``response_url``: ``{"msgtype": "markdown", "markdown": {"content": …}}`` or a
  template card (doc 101031: markdown is what an active robot reply carries, not text).

A reply an API cannot carry (a transfer to customer service, a card update, music to a
WeCom app …) is refused with :class:`UnsendableReplyError` naming the type and the API,
before anything is queued.
"""

from __future__ import annotations

from typing import Any

from ..messages import (
    ImageReply,
    MarkdownReply,
    MusicReply,
    NewsReply,
    Platform,
    Reply,
    StreamReply,
    TemplateCardReply,
    TextReply,
    VideoReply,
    VoiceReply,
)
from ..messages.errors import ReplyNotAllowedError
from ..messages.robot_replies import utf8_length

__all__ = ["MAX_APP_MARKDOWN_BYTES", "MAX_ROBOT_MARKDOWN_BYTES", "UnsendableReplyError", "custom_send_body", "message_send_body",
           "response_url_body", "send_body"]

# response_url markdown content: at most 20480 bytes of UTF-8 (protocol.md §4.4, doc 101031).
MAX_ROBOT_MARKDOWN_BYTES = 20480
# WeCom app markdown content: at most 2048 bytes of UTF-8 (the app message API doc).
MAX_APP_MARKDOWN_BYTES = 2048
# The customer-service API sends one news article (the OA doc: 图文消息条数限制在1条以内).
_OA_NEWS_ARTICLES = 1


class UnsendableReplyError(ReplyNotAllowedError):
    """The reply's type has no equivalent in the channel's message-sending API."""


def _refuse(reply: Reply, api: str, accepted: str) -> UnsendableReplyError:
    return UnsendableReplyError(f"a {type(reply).__name__} cannot be sent with {api} (it takes {accepted})")


def _articles(reply: NewsReply) -> list[dict[str, str]]:
    return [{"title": a.title, "description": a.description, "url": a.url, "picurl": a.pic_url}
            for a in reply.articles]


def custom_send_body(to_user: str, reply: Reply, *, miniprogram: bool = False) -> dict[str, Any]:
    """The JSON of an Official Account (or mini program) customer-service message."""
    api = "the mini program customer-service API" if miniprogram else "the customer-service API (custom/send)"
    if isinstance(reply, TextReply):
        return {"touser": to_user, "msgtype": "text", "text": {"content": reply.content}}
    if isinstance(reply, ImageReply):
        return {"touser": to_user, "msgtype": "image", "image": {"media_id": reply.media_id}}
    if miniprogram:
        raise _refuse(reply, api, "TextReply, ImageReply")
    if isinstance(reply, VoiceReply):
        return {"touser": to_user, "msgtype": "voice", "voice": {"media_id": reply.media_id}}
    if isinstance(reply, VideoReply):
        return {"touser": to_user, "msgtype": "video",
                "video": {"media_id": reply.media_id, "title": reply.title, "description": reply.description}}
    if isinstance(reply, MusicReply):
        return {"touser": to_user, "msgtype": "music",
                "music": {"title": reply.title, "description": reply.description, "musicurl": reply.music_url,
                          "hqmusicurl": reply.hq_music_url, "thumb_media_id": reply.thumb_media_id}}
    if isinstance(reply, NewsReply):
        if len(reply.articles) > _OA_NEWS_ARTICLES:
            raise UnsendableReplyError(f"a NewsReply of {len(reply.articles)} articles cannot be sent with {api}: "
                                       f"it takes {_OA_NEWS_ARTICLES}")
        return {"touser": to_user, "msgtype": "news", "news": {"articles": _articles(reply)}}
    raise _refuse(reply, api, "TextReply, ImageReply, VoiceReply, VideoReply, MusicReply, NewsReply")


def message_send_body(to_user: str, agent_id: int, reply: Reply) -> dict[str, Any]:
    """The JSON of a WeCom app message to one member."""
    head: dict[str, Any] = {"touser": to_user, "agentid": agent_id}
    if isinstance(reply, TextReply):
        return {**head, "msgtype": "text", "text": {"content": reply.content}}
    if isinstance(reply, MarkdownReply):
        if utf8_length(reply.content, "MarkdownReply.content") > MAX_APP_MARKDOWN_BYTES:
            raise UnsendableReplyError(f"a WeCom app markdown message carries at most {MAX_APP_MARKDOWN_BYTES} "
                                       "bytes of UTF-8")
        return {**head, "msgtype": "markdown", "markdown": {"content": reply.content}}
    if isinstance(reply, ImageReply):
        return {**head, "msgtype": "image", "image": {"media_id": reply.media_id}}
    if isinstance(reply, VoiceReply):
        return {**head, "msgtype": "voice", "voice": {"media_id": reply.media_id}}
    if isinstance(reply, VideoReply):
        return {**head, "msgtype": "video",
                "video": {"media_id": reply.media_id, "title": reply.title, "description": reply.description}}
    if isinstance(reply, NewsReply):
        return {**head, "msgtype": "news", "news": {"articles": _articles(reply)}}
    raise _refuse(reply, "the WeCom app message API (message/send)",
                  "TextReply, MarkdownReply, ImageReply, VoiceReply, VideoReply, NewsReply")


def response_url_body(reply: Reply) -> dict[str, Any]:
    """The JSON POSTed to a robot callback's response_url: text becomes markdown."""
    if isinstance(reply, (TextReply, MarkdownReply, StreamReply)):
        # A stream's text is markdown already; a late stream is sent whole, as one message.
        if utf8_length(reply.content, f"{type(reply).__name__}.content") > MAX_ROBOT_MARKDOWN_BYTES:
            raise UnsendableReplyError(f"a robot markdown reply carries at most {MAX_ROBOT_MARKDOWN_BYTES} bytes "
                                       "of UTF-8")
        return {"msgtype": "markdown", "markdown": {"content": reply.content}}
    if isinstance(reply, TemplateCardReply):
        return {"msgtype": "template_card", "template_card": reply.card_object()}
    raise _refuse(reply, "a robot's response_url", "TextReply, MarkdownReply or StreamReply (sent as markdown), "
                  "TemplateCardReply")


def send_body(platform: Platform, to_user: str, reply: Reply, *, agent_id: int | None = None) -> dict[str, Any]:
    """The API JSON of ``reply`` for a channel of ``platform`` (robots: the response_url body)."""
    if platform is Platform.WECOM_ROBOT:
        return response_url_body(reply)
    if platform is Platform.WECOM_APP:
        if agent_id is None:
            raise UnsendableReplyError("a WeCom app message needs the app's agent_id")
        return message_send_body(to_user, agent_id, reply)
    return custom_send_body(to_user, reply, miniprogram=platform is Platform.MINIPROGRAM)
