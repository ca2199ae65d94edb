"""``render_reply``: a Reply, answering a Message, as the plaintext body to encrypt.

Official Account / WeCom app replies are XML with ToUserName and FromUserName swapped
from the inbound message; robot replies are compact JSON. Output is byte-stable: the
same reply, message and ``create_time`` give the same string. Which reply may answer
which callback is checked first (``check_reply``), so nothing invalid is ever sent.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from .base import Message
from .errors import InvalidReplyError, ReplyNotAllowedError
from .platform import Platform
from .replies import (
    MAX_NEWS_ARTICLES,
    EmptyReply,
    ImageReply,
    MarkdownReply,
    MusicReply,
    NewsReply,
    NoReply,
    Reply,
    SuccessReply,
    TextReply,
    TransferCustomerServiceReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from .robot import EnterChatEvent, FeedbackEvent, RobotTemplateCardEvent, StreamRefresh
from .robot_replies import (
    TEMPLATE_CARD_TYPES,
    StreamReply,
    StreamWithTemplateCardReply,
    TemplateCardReply,
    check_template_card,
    utf8_length,
)
from .instruction import Instruction

__all__ = ["MAX_WECOM_TEXT_BYTES", "check_reply", "news_article_limit", "render_reply",
           "render_stream_refresh"]

# WeCom truncates passive text beyond 2048 bytes (doc 90241); we refuse instead of losing text
MAX_WECOM_TEXT_BYTES = 2048
_MAX_CARD_DEPTH = 16
# XML 1.0 Char production: anything else cannot be carried, not even in CDATA
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

_OA_REPLIES = (TextReply, ImageReply, VoiceReply, VideoReply, MusicReply, NewsReply,
               TransferCustomerServiceReply, EmptyReply, SuccessReply)
_WECOM_REPLIES = (TextReply, ImageReply, VoiceReply, VideoReply, NewsReply, EmptyReply)
_WECOM_CARD_REPLIES = (UpdateButtonReply, UpdateTemplateCardReply)
_WECOM_CARD_EVENTS = ("template_card_event", "template_card_menu_event")
_ROBOT_USER_REPLIES = (StreamReply, TemplateCardReply, StreamWithTemplateCardReply, EmptyReply)
_ROBOT_REPLIES = (TextReply, StreamReply, TemplateCardReply, StreamWithTemplateCardReply,
                  UpdateTemplateCardReply, EmptyReply)


def _describe(to: Message) -> str:
    kind = f"{to.event!r} event" if to.event is not None else f"{to.msg_type!r} message"
    return f"a {to.platform.value} {kind}"


def _refuse(reply: Reply, to: Message, accepted: str) -> None:
    raise ReplyNotAllowedError(f"{type(reply).__name__} cannot answer {_describe(to)}: {accepted}")


def check_reply(reply: Reply, to: Message) -> None:
    """Raise ReplyNotAllowedError unless ``reply`` is a valid answer to ``to``.

    Official Account: text, image, voice, video, music, news, transfer_customer_service,
    success, empty. Markdown answers nothing passively (it is sent through an API).
    WeCom app: text, image, voice, video, news, empty; update_button and
    update_template_card only for template card events.
    Instructions (suite and open-platform InfoType callbacks): success only.
    Robot: feedback_event → empty only; stream refresh → a stream (same id) or
    stream_with_template_card; enter_chat → text or template_card welcome; template_card_event
    → update_template_card; user messages → stream, template_card, stream_with_template_card.
    An empty reply may answer any robot callback.
    """
    if not isinstance(reply, Reply):
        raise InvalidReplyError(f"expected a Reply, got {type(reply).__name__}")
    if not isinstance(to, Message):
        raise InvalidReplyError(f"a reply answers a Message, got {type(to).__name__}")
    if isinstance(reply, MarkdownReply):
        # No platform has a markdown passive reply; the server sends one through the message API.
        raise ReplyNotAllowedError(
            f"a MarkdownReply cannot answer {_describe(to)} passively: it is sent through the message API "
            "(a WeCom app with corp_secret and agent_id, a robot's response_url: late_reply = \"send\"), "
            "or return a TextReply")
    platform = to.platform
    if isinstance(to, Instruction):
        if not isinstance(reply, SuccessReply):
            _refuse(reply, to, "instruction callbacks (InfoType) must be answered with the literal success")
        return
    if platform is Platform.OFFICIAL_ACCOUNT:
        if not isinstance(reply, _OA_REPLIES):
            _refuse(reply, to, "Official Accounts accept text, image, voice, video, music, news, "
                               "transfer_customer_service, success or an empty body")
        return
    if platform is Platform.MINIPROGRAM:
        # message push has no passive content reply: customer-service messages go by API
        if not isinstance(reply, (TransferCustomerServiceReply, SuccessReply, EmptyReply)):
            _refuse(reply, to, "mini programs accept only transfer_customer_service, success or an empty body "
                               "(send content with the customer-service message API)")
        return
    if isinstance(reply, TransferCustomerServiceReply):
        _refuse(reply, to, "only Official Accounts and mini programs can transfer a conversation to customer "
                           "service (WeCom 微信客服 is driven by its own API)")
    if platform is Platform.WECOM_APP:
        if isinstance(reply, _WECOM_CARD_REPLIES):
            if to.event not in _WECOM_CARD_EVENTS:
                _refuse(reply, to, "update_button / update_template_card only answer template card events")
        elif not isinstance(reply, _WECOM_REPLIES):
            _refuse(reply, to, "WeCom apps accept text, image, voice, video, news or an empty body")
        return
    _check_robot_reply(reply, to)


def _check_robot_reply(reply: Reply, to: Message) -> None:
    if isinstance(to, FeedbackEvent):
        if not isinstance(reply, EmptyReply):
            _refuse(reply, to, "feedback_event accepts only an empty reply")
    elif isinstance(to, StreamRefresh):
        if not isinstance(reply, (StreamReply, StreamWithTemplateCardReply, EmptyReply)):
            _refuse(reply, to, "a stream refresh accepts only a stream reply")
        stream = reply.stream if isinstance(reply, StreamWithTemplateCardReply) else reply
        if isinstance(stream, StreamReply) and stream.id != to.stream_id:
            raise ReplyNotAllowedError(
                f"stream refresh asks for stream {to.stream_id!r}, the reply is for {stream.id!r}")
    elif isinstance(to, EnterChatEvent):
        if not isinstance(reply, (TextReply, TemplateCardReply, EmptyReply)):
            _refuse(reply, to, "enter_chat accepts a text or template_card welcome")
    elif isinstance(to, RobotTemplateCardEvent):
        if not isinstance(reply, (UpdateTemplateCardReply, EmptyReply)):
            _refuse(reply, to, "template_card_event accepts update_template_card")
    elif to.is_user_message:
        if not isinstance(reply, _ROBOT_USER_REPLIES):
            _refuse(reply, to, "user messages accept stream, template_card or stream_with_template_card")
    elif not isinstance(reply, _ROBOT_REPLIES):
        _refuse(reply, to, "robots accept text, stream, template_card, stream_with_template_card, "
                           "update_template_card or an empty body")


def news_article_limit(reply: NewsReply, to: Message) -> int:
    """How many articles ``reply`` may carry when answering ``to`` (see NewsReply)."""
    if reply.max_articles is not None:
        return reply.max_articles
    if to.platform is Platform.OFFICIAL_ACCOUNT and to.is_user_message:
        return 1
    return MAX_NEWS_ARTICLES


def render_reply(reply: Reply, to: Message, *, create_time: int | None = None) -> str:
    """The plaintext body answering ``to``: reply XML/JSON, ``success`` or "".

    ``create_time`` (Unix seconds) defaults to now; pass it for reproducible output.
    A NoReply renders as its literal body, which is sent without encryption.
    """
    check_reply(reply, to)
    if isinstance(reply, NoReply):
        return reply.body
    if to.platform is Platform.WECOM_ROBOT:
        return _render_robot(reply, to)
    if create_time is None:
        create_time = int(time.time())
    elif not isinstance(create_time, int) or isinstance(create_time, bool) or create_time < 0:
        raise InvalidReplyError("create_time must be a non-negative int (Unix seconds)")
    if to.data_format == "json":  # a JSON push (mini programs) is answered in JSON
        return _render_oa_json(reply, to, create_time)
    return _render_xml(reply, to, create_time)


def render_stream_refresh(state: StreamReply, refresh: Message) -> str:
    """The answer to a stream refresh callback: the stream's current state as reply JSON."""
    if not isinstance(refresh, StreamRefresh):
        raise ReplyNotAllowedError(f"render_stream_refresh answers a stream refresh, not {_describe(refresh)}")
    return render_reply(state, refresh)


# --- XML (Official Account, WeCom app) ---------------------------------------------------

def _cdata(value: str, what: str) -> str:
    match = _XML_ILLEGAL.search(value)
    if match is not None:
        raise InvalidReplyError(f"{what} contains U+{ord(match.group()):04X}, which XML cannot carry")
    if "]]>" in value:  # end the section and reopen it so "]]>" survives as text
        value = value.replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{value}]]>"


def _element(tag: str, value: str, what: str) -> str:
    return f"<{tag}>{_cdata(value, what)}</{tag}>"


def _render_xml(reply: Reply, to: Message, create_time: int) -> str:
    parts = [
        f"<xml><ToUserName>{_cdata(to.source, 'ToUserName')}</ToUserName>"
        f"<FromUserName>{_cdata(to.target, 'FromUserName')}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{reply.type}]]></MsgType>"
    ]
    if isinstance(reply, TextReply):
        if to.platform is Platform.WECOM_APP:
            size = utf8_length(reply.content, "TextReply.content")
            if size > MAX_WECOM_TEXT_BYTES:
                raise InvalidReplyError(
                    f"WeCom text replies are at most {MAX_WECOM_TEXT_BYTES} bytes of UTF-8, got {size}")
        parts.append(_element("Content", reply.content, "TextReply.content"))
    elif isinstance(reply, ImageReply):
        parts.append(f"<Image>{_element('MediaId', reply.media_id, 'ImageReply.media_id')}</Image>")
    elif isinstance(reply, VoiceReply):
        parts.append(f"<Voice>{_element('MediaId', reply.media_id, 'VoiceReply.media_id')}</Voice>")
    elif isinstance(reply, VideoReply):
        parts += ["<Video>", _element("MediaId", reply.media_id, "VideoReply.media_id"),
                  _element("Title", reply.title, "VideoReply.title"),
                  _element("Description", reply.description, "VideoReply.description"), "</Video>"]
    elif isinstance(reply, MusicReply):
        parts += ["<Music>", _element("Title", reply.title, "MusicReply.title"),
                  _element("Description", reply.description, "MusicReply.description"),
                  _element("MusicUrl", reply.music_url, "MusicReply.music_url"),
                  _element("HQMusicUrl", reply.hq_music_url, "MusicReply.hq_music_url"),
                  _element("ThumbMediaId", reply.thumb_media_id, "MusicReply.thumb_media_id"),
                  "</Music>"]
    elif isinstance(reply, NewsReply):
        limit = news_article_limit(reply, to)
        if len(reply.articles) > limit:
            raise InvalidReplyError(
                f"news reply has {len(reply.articles)} articles; {_describe(to)} accepts at most {limit}")
        parts.append(f"<ArticleCount>{len(reply.articles)}</ArticleCount><Articles>")
        for article in reply.articles:
            parts += ["<item>", _element("Title", article.title, "Article.title"),
                      _element("Description", article.description, "Article.description"),
                      _element("PicUrl", article.pic_url, "Article.pic_url"),
                      _element("Url", article.url, "Article.url"), "</item>"]
        parts.append("</Articles>")
    elif isinstance(reply, TransferCustomerServiceReply):
        if reply.kf_account is not None:
            parts.append(f"<TransInfo>{_element('KfAccount', reply.kf_account, 'kf_account')}</TransInfo>")
    elif isinstance(reply, UpdateButtonReply):
        parts.append(f"<Button>{_element('ReplaceName', reply.replace_name, 'replace_name')}</Button>")
    elif isinstance(reply, UpdateTemplateCardReply):
        if reply.user_ids:
            raise InvalidReplyError("user_ids is a robot option; WeCom app card updates have none")
        card_type = reply.template_card.get("CardType")
        if card_type not in TEMPLATE_CARD_TYPES:
            raise InvalidReplyError(f"template_card needs a CardType of {sorted(TEMPLATE_CARD_TYPES)}, "
                                    f"got {card_type!r}")
        parts.append("<TemplateCard>")
        _mapping_to_xml(reply.template_card, "template_card", parts, 1)
        parts.append("</TemplateCard>")
    else:  # pragma: no cover - check_reply admits only the types above
        raise InvalidReplyError(f"{type(reply).__name__} has no XML form")
    parts.append("</xml>")
    return "".join(parts)


def _mapping_to_xml(data: Mapping[str, Any], what: str, out: list[str], depth: int) -> None:
    if depth > _MAX_CARD_DEPTH:
        raise InvalidReplyError(f"{what} is nested deeper than {_MAX_CARD_DEPTH} levels")
    for key, value in data.items():
        if not isinstance(key, str) or not _XML_NAME.fullmatch(key):
            raise InvalidReplyError(f"{what} key {key!r} is not an XML element name")
        values = value if isinstance(value, (list, tuple)) else (value,)
        for item in values:  # a list is written as repeated elements, as WeCom's XML does
            path = f"{what}.{key}"
            if item is None:
                continue
            if isinstance(item, Mapping):
                out.append(f"<{key}>")
                _mapping_to_xml(item, path, out, depth + 1)
                out.append(f"</{key}>")
            elif isinstance(item, bool):
                out.append(f"<{key}>{'true' if item else 'false'}</{key}>")
            elif isinstance(item, int):
                out.append(f"<{key}>{item}</{key}>")
            elif isinstance(item, str):
                out.append(_element(key, item, path))
            else:
                raise InvalidReplyError(f"{path} holds a {type(item).__name__}; use text, int, bool, "
                                        "a mapping or a list")


def _render_oa_json(reply: Reply, to: Message, create_time: int) -> str:
    """The JSON form of an Official Account-style reply: the XML's element names as keys,
    nested objects for nested elements, an array for the articles."""
    body: dict[str, Any] = {"ToUserName": to.source, "FromUserName": to.target, "CreateTime": create_time,
                            "MsgType": reply.type}
    if isinstance(reply, TextReply):
        body["Content"] = reply.content
    elif isinstance(reply, (ImageReply, VoiceReply)):
        body[type(reply).type.capitalize()] = {"MediaId": reply.media_id}
    elif isinstance(reply, VideoReply):
        body["Video"] = {"MediaId": reply.media_id, "Title": reply.title, "Description": reply.description}
    elif isinstance(reply, MusicReply):
        body["Music"] = {"Title": reply.title, "Description": reply.description, "MusicUrl": reply.music_url,
                         "HQMusicUrl": reply.hq_music_url, "ThumbMediaId": reply.thumb_media_id}
    elif isinstance(reply, NewsReply):
        limit = news_article_limit(reply, to)
        if len(reply.articles) > limit:
            raise InvalidReplyError(
                f"news reply has {len(reply.articles)} articles; {_describe(to)} accepts at most {limit}")
        body["ArticleCount"] = len(reply.articles)
        body["Articles"] = [{"Title": a.title, "Description": a.description, "PicUrl": a.pic_url, "Url": a.url}
                            for a in reply.articles]
    elif isinstance(reply, TransferCustomerServiceReply):
        if reply.kf_account is not None:
            body["TransInfo"] = {"KfAccount": reply.kf_account}
    else:  # pragma: no cover - check_reply admits only the types above for these platforms
        raise InvalidReplyError(f"{type(reply).__name__} has no JSON form")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


# --- JSON (robot) ---------------------------------------------------------------------

def _robot_card_update(reply: UpdateTemplateCardReply, to: Message) -> dict[str, Any]:
    card = check_template_card(reply.template_card, "UpdateTemplateCardReply.template_card")
    if isinstance(to, RobotTemplateCardEvent) and to.task_id:
        task_id = card.get("task_id")
        if task_id is None:
            card["task_id"] = to.task_id  # the update must name the clicked card's task
        elif task_id != to.task_id:
            raise InvalidReplyError(f"the update names task_id {task_id!r}, the event is for {to.task_id!r}")
    data: dict[str, Any] = {"response_type": "update_template_card"}
    if reply.user_ids:
        data["userids"] = list(reply.user_ids)
    data["template_card"] = card
    return data


def _render_robot(reply: Reply, to: Message) -> str:
    body: dict[str, Any]
    if isinstance(reply, StreamReply):
        body = {"msgtype": "stream", "stream": reply.stream_object()}
    elif isinstance(reply, TextReply):
        body = {"msgtype": "text", "text": {"content": reply.content}}
    elif isinstance(reply, TemplateCardReply):
        body = {"msgtype": "template_card", "template_card": reply.card_object()}
    elif isinstance(reply, StreamWithTemplateCardReply):
        body = {"msgtype": "stream_with_template_card", "stream": reply.stream.stream_object(),
                "template_card": dict(reply.template_card)}
    elif isinstance(reply, UpdateTemplateCardReply):
        body = _robot_card_update(reply, to)
    else:  # pragma: no cover - check_reply admits only the types above
        raise InvalidReplyError(f"{type(reply).__name__} has no robot JSON form")
    try:
        rendered = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidReplyError(f"{type(reply).__name__} cannot be written as JSON: {exc}") from None
    utf8_length(rendered, f"{type(reply).__name__} JSON")
    return rendered
