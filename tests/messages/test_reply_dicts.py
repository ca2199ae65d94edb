"""Replies to and from plain dicts (the forward mode's JSON schema)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wxcallback.messages import (
    Article,
    EmptyReply,
    ImageReply,
    MarkdownReply,
    InvalidReplyError,
    MusicReply,
    NewsReply,
    Platform,
    Reply,
    StreamImage,
    StreamReply,
    StreamWithTemplateCardReply,
    SuccessReply,
    TemplateCardReply,
    TextReply,
    UnknownPlatformError,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
    reply_from_dict,
)

CARD = {"card_type": "vote_interaction", "task_id": "t1", "checkbox": {"question_key": "q"}}
IMAGE = StreamImage.from_bytes(b"\xff\xd8\xff\xe0jpeg")
REPLIES: list[tuple[Reply, Platform]] = [
    (EmptyReply(), Platform.WECOM_ROBOT),
    (SuccessReply(), Platform.OFFICIAL_ACCOUNT),
    (TextReply("hi ]]> 你好"), Platform.OFFICIAL_ACCOUNT),
    (ImageReply("m"), Platform.WECOM_APP),
    (MarkdownReply("**hi**"), Platform.WECOM_APP),
    (VoiceReply("m"), Platform.OFFICIAL_ACCOUNT),
    (VideoReply("m", "t", "d"), Platform.WECOM_APP),
    (MusicReply("t", "d", "u", "hq", "th"), Platform.OFFICIAL_ACCOUNT),
    (NewsReply([Article("a", "b", "c", "d"), Article("e")], max_articles=2), Platform.OFFICIAL_ACCOUNT),
    (UpdateButtonReply("done"), Platform.WECOM_APP),
    (UpdateTemplateCardReply({"card_type": "text_notice"}, ["u1", "u2"]), Platform.WECOM_ROBOT),
    (TemplateCardReply(CARD, feedback_id="fb"), Platform.WECOM_ROBOT),
    (StreamReply("s", "text", True, [IMAGE], "fb"), Platform.WECOM_ROBOT),
    (StreamWithTemplateCardReply(StreamReply("s", "x"), CARD), Platform.WECOM_ROBOT),
]


@pytest.mark.parametrize(("reply", "platform"), REPLIES, ids=[type(r).__name__ for r, _ in REPLIES])
def test_every_reply_round_trips_through_json(reply: Reply, platform: Platform) -> None:
    data = json.loads(json.dumps(reply.to_dict()))
    assert data["type"] == reply.type
    assert reply_from_dict(data, platform) == reply


def test_the_simplest_backend_answer_is_a_text_reply() -> None:
    assert reply_from_dict({"type": "text", "content": "hi"}, "official-account") == TextReply("hi")
    assert reply_from_dict({"type": "stream", "id": "s1", "content": "hi", "finish": True}, "wecom-robot") == \
        StreamReply("s1", "hi", True)


@pytest.mark.parametrize(("data", "platform", "message"), [
    ("text", Platform.OFFICIAL_ACCOUNT, "must be a JSON object"),
    ({"content": "hi"}, Platform.OFFICIAL_ACCOUNT, "unknown reply type None"),
    ({"type": "location"}, Platform.WECOM_ROBOT, "unknown reply type 'location'"),
    ({"type": "markdown"}, Platform.WECOM_APP, "needs content"),
    ({"type": "markdown", "content": "x"}, Platform.MINIPROGRAM, "miniprogram has no 'markdown' reply"),
    ({"type": "music"}, Platform.WECOM_APP, "wecom-app has no 'music' reply"),
    ({"type": "success"}, Platform.WECOM_ROBOT, "wecom-robot has no 'success' reply"),
    ({"type": "text"}, Platform.OFFICIAL_ACCOUNT, "needs content"),
    ({"type": "text", "content": "hi", "contnet": "x"}, Platform.OFFICIAL_ACCOUNT, "unknown keys: contnet"),
    ({"type": "text", "content": 5}, Platform.OFFICIAL_ACCOUNT, "must be a string"),
    ({"type": "news", "articles": "x"}, Platform.OFFICIAL_ACCOUNT, "must be a list"),
    ({"type": "news", "articles": [{"titel": "x"}]}, Platform.OFFICIAL_ACCOUNT, "unknown keys: titel"),
    ({"type": "news", "articles": [{}], "max_articles": "2"}, Platform.OFFICIAL_ACCOUNT, "max_articles"),
    ({"type": "stream", "content": "x"}, Platform.WECOM_ROBOT, "needs id"),
    ({"type": "stream", "id": "s", "images": [{"base64": "eA=="}]}, Platform.WECOM_ROBOT, "needs md5"),
    ({"type": "template_card", "template_card": []}, Platform.WECOM_ROBOT, "must be an object"),
    ({"type": "stream_with_template_card", "stream": {"type": "stream", "id": "s"}, "template_card": CARD},
     Platform.WECOM_ROBOT, "no 'type' key"),
    ({"type": "update_template_card", "template_card": {}, "user_ids": "u1"}, Platform.WECOM_ROBOT, "must be a list"),
])
def test_bad_dicts_raise_a_clear_library_error(data: Any, platform: Platform, message: str) -> None:
    with pytest.raises(InvalidReplyError, match=message):
        reply_from_dict(data, platform)


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(UnknownPlatformError):
        reply_from_dict({"type": "text", "content": "x"}, "wechat")

