"""Every reply type as the message APIs take it, and the ones an API cannot carry."""

from __future__ import annotations

from typing import Any

import pytest

from wxcallback.messages import (
    Article,
    EmptyReply,
    ImageReply,
    MusicReply,
    NewsReply,
    Platform,
    Reply,
    StreamReply,
    SuccessReply,
    TemplateCardReply,
    TextReply,
    TransferCustomerServiceReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
)
from wxcallback.server.outbound import (
    UnsendableReplyError,
    custom_send_body,
    message_send_body,
    response_url_body,
    send_body,
)

ARTICLE = Article("Title", "About", "https://p.example/a.png", "https://example.com/a")
ARTICLE_JSON = {"title": "Title", "description": "About", "url": "https://example.com/a",
                "picurl": "https://p.example/a.png"}
CARD = {"card_type": "text_notice", "main_title": {"title": "Done"}, "task_id": "t1"}

OA_BODIES: list[tuple[Reply, dict[str, Any]]] = [
    (TextReply("hi"), {"msgtype": "text", "text": {"content": "hi"}}),
    (ImageReply("MEDIA"), {"msgtype": "image", "image": {"media_id": "MEDIA"}}),
    (VoiceReply("MEDIA"), {"msgtype": "voice", "voice": {"media_id": "MEDIA"}}),
    (VideoReply("MEDIA", "T", "D"), {"msgtype": "video", "video": {"media_id": "MEDIA", "title": "T",
                                                                   "description": "D"}}),
    (MusicReply("T", "D", "http://m/1.mp3", "http://m/1hq.mp3", "THUMB"),
     {"msgtype": "music", "music": {"title": "T", "description": "D", "musicurl": "http://m/1.mp3",
                                    "hqmusicurl": "http://m/1hq.mp3", "thumb_media_id": "THUMB"}}),
    (NewsReply([ARTICLE]), {"msgtype": "news", "news": {"articles": [ARTICLE_JSON]}}),
]

WECOM_BODIES: list[tuple[Reply, dict[str, Any]]] = [
    (TextReply("hi"), {"msgtype": "text", "text": {"content": "hi"}}),
    (ImageReply("MEDIA"), {"msgtype": "image", "image": {"media_id": "MEDIA"}}),
    (VoiceReply("MEDIA"), {"msgtype": "voice", "voice": {"media_id": "MEDIA"}}),
    (VideoReply("MEDIA", "T", "D"), {"msgtype": "video", "video": {"media_id": "MEDIA", "title": "T",
                                                                   "description": "D"}}),
    (NewsReply([ARTICLE, ARTICLE]), {"msgtype": "news", "news": {"articles": [ARTICLE_JSON, ARTICLE_JSON]}}),
]


@pytest.mark.parametrize("reply, expected", OA_BODIES, ids=lambda v: type(v).__name__)
def test_official_account_customer_service_bodies(reply: Reply, expected: dict[str, Any]) -> None:
    assert custom_send_body("oOPENID", reply) == {"touser": "oOPENID", **expected}
    assert send_body(Platform.OFFICIAL_ACCOUNT, "oOPENID", reply) == {"touser": "oOPENID", **expected}


@pytest.mark.parametrize("reply, expected", WECOM_BODIES, ids=lambda v: type(v).__name__)
def test_wecom_app_message_bodies(reply: Reply, expected: dict[str, Any]) -> None:
    assert message_send_body("zhangsan", 1000002, reply) == {"touser": "zhangsan", "agentid": 1000002, **expected}
    assert send_body(Platform.WECOM_APP, "zhangsan", reply, agent_id=1000002) == message_send_body(
        "zhangsan", 1000002, reply)


def test_robot_text_and_finished_stream_go_as_markdown_and_cards_as_cards() -> None:
    assert response_url_body(TextReply("**done**")) == {"msgtype": "markdown", "markdown": {"content": "**done**"}}
    stream = StreamReply("s1", "thought it over", True)
    assert response_url_body(stream) == {"msgtype": "markdown", "markdown": {"content": "thought it over"}}
    assert response_url_body(TemplateCardReply(CARD)) == {"msgtype": "template_card", "template_card": CARD}
    assert send_body(Platform.WECOM_ROBOT, "ignored", TextReply("x"))["msgtype"] == "markdown"


def test_mini_programs_take_text_and_image_only() -> None:
    assert send_body(Platform.MINIPROGRAM, "o1", ImageReply("M")) == {"touser": "o1", "msgtype": "image",
                                                                       "image": {"media_id": "M"}}
    with pytest.raises(UnsendableReplyError, match="VoiceReply cannot be sent with the mini program"):
        send_body(Platform.MINIPROGRAM, "o1", VoiceReply("M"))


@pytest.mark.parametrize("platform, reply, words", [
    (Platform.OFFICIAL_ACCOUNT, TransferCustomerServiceReply(), "TransferCustomerServiceReply cannot be sent"),
    (Platform.OFFICIAL_ACCOUNT, SuccessReply(), "SuccessReply cannot be sent"),
    (Platform.OFFICIAL_ACCOUNT, NewsReply([ARTICLE, ARTICLE]), "2 articles cannot be sent"),
    (Platform.OFFICIAL_ACCOUNT, UpdateButtonReply("ok"), "UpdateButtonReply cannot be sent"),
    (Platform.WECOM_APP, MusicReply("T"), "MusicReply cannot be sent with the WeCom app message API"),
    (Platform.WECOM_APP, UpdateTemplateCardReply(CARD), "UpdateTemplateCardReply cannot be sent"),
    (Platform.WECOM_APP, EmptyReply(), "EmptyReply cannot be sent"),
    (Platform.WECOM_ROBOT, ImageReply("M"), "ImageReply cannot be sent with a robot's response_url"),
    (Platform.WECOM_ROBOT, TextReply("x" * 20481), "at most 20480 bytes"),
], ids=lambda v: type(v).__name__ if isinstance(v, Reply) else str(v))
def test_a_reply_an_api_cannot_carry_is_refused_with_its_name(platform: Platform, reply: Reply, words: str) -> None:
    with pytest.raises(UnsendableReplyError, match=words):
        send_body(platform, "u", reply, agent_id=1)


def test_a_wecom_app_without_agent_id_is_refused() -> None:
    with pytest.raises(UnsendableReplyError, match="agent_id"):
        send_body(Platform.WECOM_APP, "u", TextReply("x"))
