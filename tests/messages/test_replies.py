"""Reply values: limits, rendering, escaping, and build → render → parse round trips."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from wxcallback.core.errors import ErrorCode, RenderError
from wxcallback.messages import (
    Article,
    EmptyReply,
    ImageMessage,
    ImageReply,
    InvalidReplyError,
    Message,
    MusicReply,
    NewsReply,
    Platform,
    RobotTextMessage,
    StreamImage,
    StreamRefresh,
    StreamReply,
    StreamWithTemplateCardReply,
    SuccessReply,
    TemplateCardReply,
    TextMessage,
    TextReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoMessage,
    VideoReply,
    VoiceMessage,
    VoiceReply,
    parse_message,
    render_reply,
    render_stream_refresh,
)

OA_TEXT = ("<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[openid_user]]></FromUserName>"
           "<CreateTime>1714112445</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>")
OA_CLICK = OA_TEXT.replace("<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>",
                           "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>K</EventKey>")
WECOM_TEXT = OA_TEXT.replace("gh_account", "ww_corp").replace("openid_user", "zhangsan")
WECOM_CARD = WECOM_TEXT.replace("<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>",
                                "<MsgType>event</MsgType><Event>template_card_event</Event><TaskId>t1</TaskId>")
CARD = {"card_type": "text_notice", "main_title": {"title": "欢迎"}, "task_id": "task_1"}


def oa() -> Message:
    return parse_message(OA_TEXT, Platform.OFFICIAL_ACCOUNT)


def robot(msgtype: str = "text", **payload: object) -> Message:
    data = {"msgid": "M1", "aibotid": "BOT", "chattype": "single", "from": {"userid": "U"}, "msgtype": msgtype,
            **payload}
    return parse_message(json.dumps(data), Platform.WECOM_ROBOT)


def image_bytes(n: int = 0) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([n]) * 32


# --- XML replies ---------------------------------------------------------------------------

def test_text_reply_swaps_sender_and_receiver_and_is_byte_stable() -> None:
    body = render_reply(TextReply("你好"), oa(), create_time=1700000000)
    assert body == ("<xml><ToUserName><![CDATA[openid_user]]></ToUserName>"
                    "<FromUserName><![CDATA[gh_account]]></FromUserName><CreateTime>1700000000</CreateTime>"
                    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>")
    assert render_reply(TextReply("你好"), oa(), create_time=1700000000) == body


def test_cdata_terminator_in_content_survives_a_round_trip() -> None:
    tricky = "a]]>b]]]]>c<![CDATA[d</Content>"
    parsed = parse_message(render_reply(TextReply(tricky), oa(), create_time=1), Platform.OFFICIAL_ACCOUNT)
    assert isinstance(parsed, TextMessage) and parsed.content == tricky


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x0b", "\ufffe", "\ud800"])
def test_characters_xml_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(InvalidReplyError, match="XML cannot carry") as caught:
        render_reply(TextReply(f"x{bad}y"), oa(), create_time=1)
    assert isinstance(caught.value, RenderError) and caught.value.code == ErrorCode.GEN_RETURN_XML_ERROR


def test_tab_newline_and_astral_characters_are_kept() -> None:
    text = "line1\n\tline2 😀"
    parsed = parse_message(render_reply(TextReply(text), oa(), create_time=1), Platform.OFFICIAL_ACCOUNT)
    assert isinstance(parsed, TextMessage) and parsed.content == text


def test_create_time_defaults_to_now_and_must_be_an_int() -> None:
    parsed = parse_message(render_reply(TextReply("x"), oa()), Platform.OFFICIAL_ACCOUNT)
    assert parsed.create_time is not None and parsed.create_time > 1_700_000_000
    with pytest.raises(InvalidReplyError, match="create_time"):
        render_reply(TextReply("x"), oa(), create_time="1")  # type: ignore[arg-type]


@pytest.mark.parametrize(("reply", "cls", "check"), [
    (ImageReply("media-1"), ImageMessage, lambda m: m.media_id == "media-1"),
    (VoiceReply("media-2"), VoiceMessage, lambda m: m.media_id == "media-2"),
    (TextReply("hi"), TextMessage, lambda m: m.content == "hi"),
])
def test_media_replies_round_trip_on_both_xml_platforms(reply: object, cls: type, check: object) -> None:
    for platform, inbound in ((Platform.OFFICIAL_ACCOUNT, OA_TEXT), (Platform.WECOM_APP, WECOM_TEXT)):
        to = parse_message(inbound, platform)
        parsed = parse_message(render_reply(reply, to, create_time=5), platform)  # type: ignore[arg-type]
        if cls in (ImageMessage, VoiceMessage):
            # replies nest the MediaId one level down (<Image><MediaId/>)
            key = "Image" if cls is ImageMessage else "Voice"
            assert parsed.raw[key]["MediaId"] == reply.media_id  # type: ignore[attr-defined]
        else:
            assert isinstance(parsed, cls) and check(parsed)  # type: ignore[operator]
        assert (parsed.source, parsed.target, parsed.create_time) == (to.target, to.source, 5)


def test_video_and_music_replies_round_trip() -> None:
    parsed = parse_message(render_reply(VideoReply("m", "标题", "描述"), oa(), create_time=1), "official-account")
    assert isinstance(parsed, VideoMessage)
    assert parsed.raw["Video"] == {"MediaId": "m", "Title": "标题", "Description": "描述"}
    music = MusicReply("t", "d", "http://m", "http://hq", "thumb")
    parsed = parse_message(render_reply(music, oa(), create_time=1), "official-account")
    assert parsed.msg_type == "music"
    assert parsed.raw["Music"] == {"Title": "t", "Description": "d", "MusicUrl": "http://m",
                                   "HQMusicUrl": "http://hq", "ThumbMediaId": "thumb"}


def test_news_reply_limit_is_one_for_user_messages_and_eight_for_events() -> None:
    articles = [Article(f"t{i}", "d", "http://p", "http://u") for i in range(3)]
    with pytest.raises(InvalidReplyError, match="at most 1"):
        render_reply(NewsReply(articles), oa(), create_time=1)
    click = parse_message(OA_CLICK, Platform.OFFICIAL_ACCOUNT)
    parsed = parse_message(render_reply(NewsReply(articles), click, create_time=1), "official-account")
    assert parsed.raw["ArticleCount"] == "3"
    assert [item["Title"] for item in parsed.raw["Articles"]["item"]] == ["t0", "t1", "t2"]
    # an explicit max_articles overrides the rule
    assert "<ArticleCount>3</ArticleCount>" in render_reply(NewsReply(articles, max_articles=3), oa(), create_time=1)
    with pytest.raises(InvalidReplyError, match="at most 8"):
        NewsReply([Article()] * 9)
    with pytest.raises(InvalidReplyError, match="max_articles"):
        NewsReply(articles, max_articles=2)
    with pytest.raises(InvalidReplyError, match="at least one"):
        NewsReply([])


def test_wecom_text_reply_is_limited_to_2048_bytes() -> None:
    to = parse_message(WECOM_TEXT, Platform.WECOM_APP)
    assert render_reply(TextReply("好" * 682), to, create_time=1)  # 2046 bytes
    with pytest.raises(InvalidReplyError, match="2048"):
        render_reply(TextReply("好" * 683), to, create_time=1)  # 2049 bytes
    # Official Accounts have no such limit
    assert render_reply(TextReply("好" * 683), oa(), create_time=1)


def test_wecom_card_update_replies_round_trip() -> None:
    to = parse_message(WECOM_CARD, Platform.WECOM_APP)
    parsed = parse_message(render_reply(UpdateButtonReply("已处理"), to, create_time=1), Platform.WECOM_APP)
    assert parsed.msg_type == "update_button" and parsed.raw["Button"] == {"ReplaceName": "已处理"}

    card = {"CardType": "button_interaction", "MainTitle": {"Title": "标题", "Desc": "d"},
            "ButtonList": [{"Text": "a", "Key": "k1"}, {"Text": "b", "Key": "k2"}], "Style": 1, "Checked": True}
    parsed = parse_message(render_reply(UpdateTemplateCardReply(card), to, create_time=1), Platform.WECOM_APP)
    assert parsed.msg_type == "update_template_card"
    assert parsed.raw["TemplateCard"] == {
        "CardType": "button_interaction", "MainTitle": {"Title": "标题", "Desc": "d"},
        "ButtonList": [{"Text": "a", "Key": "k1"}, {"Text": "b", "Key": "k2"}], "Style": "1", "Checked": "true"}
    with pytest.raises(InvalidReplyError, match="CardType"):
        render_reply(UpdateTemplateCardReply({"MainTitle": {}}), to, create_time=1)
    with pytest.raises(InvalidReplyError, match="not an XML element name"):
        render_reply(UpdateTemplateCardReply({"CardType": "text_notice", "bad key": "x"}), to, create_time=1)


def test_no_reply_answers_render_as_their_literal_bodies() -> None:
    assert render_reply(SuccessReply(), oa()) == "success"
    assert render_reply(EmptyReply(), oa()) == ""
    assert render_reply(EmptyReply(), robot()) == ""


# --- robot replies ---------------------------------------------------------------------------

def test_stream_reply_renders_the_documented_json_and_round_trips() -> None:
    image = StreamImage.from_bytes(image_bytes())
    reply = StreamReply("stream-1", "答案", finish=True, images=[image], feedback_id="fb-1")
    body = render_reply(reply, robot())
    assert json.loads(body) == {"msgtype": "stream", "stream": {
        "id": "stream-1", "finish": True, "content": "答案",
        "msg_item": [{"msgtype": "image", "image": {"base64": image.base64, "md5": image.md5}}],
        "feedback": {"id": "fb-1"}}}
    assert body == render_reply(reply, robot())  # byte-stable
    parsed = parse_message(body, Platform.WECOM_ROBOT)
    assert isinstance(parsed, StreamRefresh) and parsed.stream_id == "stream-1"


def test_stream_content_is_limited_to_20480_utf8_bytes() -> None:
    assert StreamReply("s", "a" * 20480).content
    with pytest.raises(InvalidReplyError, match="20480"):
        StreamReply("s", "好" * 6827)  # 20481 bytes
    with pytest.raises(InvalidReplyError, match="UTF-8"):
        StreamReply("s", "\ud800")


def test_stream_images_only_on_the_final_reply_at_most_ten_with_matching_md5() -> None:
    image = StreamImage.from_bytes(image_bytes())
    with pytest.raises(InvalidReplyError, match="final"):
        StreamReply("s", "x", finish=False, images=[image])
    assert len(StreamReply("s", "x", True, [StreamImage.from_bytes(image_bytes(i)) for i in range(10)]).images) == 10
    with pytest.raises(InvalidReplyError, match="at most 10"):
        StreamReply("s", "x", True, [image] * 11)
    with pytest.raises(InvalidReplyError, match="md5"):
        StreamImage(base64.b64encode(b"abc").decode(), hashlib.md5(b"abd").hexdigest())
    with pytest.raises(InvalidReplyError, match="base64"):
        StreamImage("not base64!", hashlib.md5(b"").hexdigest())


def test_feedback_id_is_limited_to_256_bytes() -> None:
    assert StreamReply("s", feedback_id="f" * 256).feedback_id
    with pytest.raises(InvalidReplyError, match="256"):
        StreamReply("s", feedback_id="好" * 86)
    with pytest.raises(InvalidReplyError, match="256"):
        TemplateCardReply(CARD, feedback_id="f" * 257)


def test_stream_states_accumulate_content_and_close() -> None:
    first = StreamReply("s1")
    second = first.append("你").append("好")
    assert (second.content, second.finish) == ("你好", False)
    final = second.finished(images=[StreamImage.from_bytes(image_bytes())])
    assert (final.content, final.finish, len(final.images)) == ("你好", True, 1)
    assert first.with_content("abc").content == "abc"
    with pytest.raises(InvalidReplyError, match="already finished"):
        final.append("more")


def test_stream_refresh_is_answered_with_the_current_state() -> None:
    refresh = robot("stream", stream={"id": "s1"})
    state = StreamReply("s1", "部分", False)
    assert json.loads(render_stream_refresh(state, refresh))["stream"] == {"id": "s1", "finish": False,
                                                                           "content": "部分"}
    with pytest.raises(InvalidReplyError, match="asks for stream 's1'"):
        render_stream_refresh(StreamReply("other"), refresh)
    with pytest.raises(InvalidReplyError, match="stream refresh"):
        render_stream_refresh(state, robot())


def test_template_card_replies_render_and_round_trip() -> None:
    body = render_reply(TemplateCardReply(CARD, feedback_id="fb"), robot())
    assert json.loads(body) == {"msgtype": "template_card", "template_card": {**CARD, "feedback": {"id": "fb"}}}
    assert parse_message(body, Platform.WECOM_ROBOT).raw["template_card"]["task_id"] == "task_1"

    combo = render_reply(StreamWithTemplateCardReply(StreamReply("s", "x"), CARD), robot())
    assert json.loads(combo) == {"msgtype": "stream_with_template_card",
                                 "stream": {"id": "s", "finish": False, "content": "x"}, "template_card": CARD}
    with pytest.raises(InvalidReplyError, match="card_type"):
        TemplateCardReply({"card_type": "poster"})
    with pytest.raises(InvalidReplyError, match="task_id"):
        TemplateCardReply({"card_type": "text_notice", "task_id": "has space"})


def test_robot_card_update_takes_the_events_task_id() -> None:
    event = robot("event", event={"eventtype": "template_card_event",
                                  "template_card_event": {"card_type": "button_interaction", "task_id": "T9"}})
    body = json.loads(render_reply(UpdateTemplateCardReply({"card_type": "button_interaction"}, ["u1"]), event))
    assert body == {"response_type": "update_template_card", "userids": ["u1"],
                    "template_card": {"card_type": "button_interaction", "task_id": "T9"}}
    with pytest.raises(InvalidReplyError, match="task_id"):
        render_reply(UpdateTemplateCardReply({"card_type": "button_interaction", "task_id": "T8"}), event)


def test_enter_chat_text_welcome_round_trips() -> None:
    enter = robot("event", event={"eventtype": "enter_chat", "enter_chat": {}})
    parsed = parse_message(render_reply(TextReply("欢迎"), enter), Platform.WECOM_ROBOT)
    assert isinstance(parsed, RobotTextMessage) and parsed.content == "欢迎"


def test_reply_fields_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(InvalidReplyError, match="must be a string"):
        TextReply(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidReplyError, match="finish"):
        StreamReply("s", finish="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidReplyError, match="JSON"):
        render_reply(TemplateCardReply({**CARD, "x": {1, 2}}), robot())
