"""Which reply may answer which callback: violations are ReplyNotAllowedError (a RenderError, -40011)."""

from __future__ import annotations

import json

import pytest

from wxcallback.core.errors import ErrorCode, RenderError
from wxcallback.messages import (
    Article,
    EmptyReply,
    ImageReply,
    MarkdownReply,
    Message,
    MusicReply,
    NewsReply,
    Platform,
    Reply,
    ReplyNotAllowedError,
    StreamReply,
    StreamWithTemplateCardReply,
    SuccessReply,
    TemplateCardReply,
    TextReply,
    UpdateButtonReply,
    UpdateTemplateCardReply,
    VideoReply,
    VoiceReply,
    check_reply,
    parse_message,
    render_reply,
)

CARD = {"card_type": "text_notice", "main_title": {"title": "t"}}
OA_TEXT = ("<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
           "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>")
WECOM_EVENT = ("<xml><ToUserName>ww</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
               "<MsgType>event</MsgType><Event>{}</Event></xml>")
SUITE_TICKET = "<xml><SuiteId>s</SuiteId><InfoType>suite_ticket</InfoType><TimeStamp>1</TimeStamp></xml>"


def robot(msgtype: str, eventtype: str | None = None, **payload: object) -> Message:
    data: dict[str, object] = {"msgid": "M", "aibotid": "B", "from": {"userid": "U"}, "msgtype": msgtype, **payload}
    if eventtype is not None:
        data["event"] = {"eventtype": eventtype, eventtype: {"task_id": "T"}}
    return parse_message(json.dumps(data), Platform.WECOM_ROBOT)


STREAM = StreamReply("S")
ALL_REPLIES: list[Reply] = [
    EmptyReply(), SuccessReply(), TextReply("t"), ImageReply("m"), VoiceReply("m"), VideoReply("m"),
    MusicReply("t"), NewsReply([Article("t")]), UpdateButtonReply("r"),
    UpdateTemplateCardReply({"CardType": "text_notice", "card_type": "text_notice"}),
    STREAM, TemplateCardReply(CARD), StreamWithTemplateCardReply(STREAM, CARD),
]


def allowed(to: Message) -> set[str]:
    names = set()
    for reply in ALL_REPLIES:
        try:
            check_reply(reply, to)
        except ReplyNotAllowedError:
            continue
        names.add(reply.type)
    return names


@pytest.mark.parametrize(("to", "expected"), [
    (parse_message(OA_TEXT, Platform.OFFICIAL_ACCOUNT),
     {"empty", "success", "text", "image", "voice", "video", "music", "news"}),
    (parse_message(OA_TEXT, Platform.WECOM_APP), {"empty", "text", "image", "voice", "video", "news"}),
    (parse_message(WECOM_EVENT.format("template_card_event"), Platform.WECOM_APP),
     {"empty", "text", "image", "voice", "video", "news", "update_button", "update_template_card"}),
    (parse_message(SUITE_TICKET, Platform.WECOM_APP), {"success"}),
    (robot("text", text={"content": "hi"}), {"empty", "stream", "template_card", "stream_with_template_card"}),
    (robot("stream", stream={"id": "S"}), {"empty", "stream", "stream_with_template_card"}),
    (robot("event", "enter_chat"), {"empty", "text", "template_card"}),
    (robot("event", "template_card_event"), {"empty", "update_template_card"}),
    (robot("event", "feedback_event"), {"empty"}),
], ids=["oa-message", "wecom-message", "wecom-card-event", "suite-instruction", "robot-message",
        "robot-stream-refresh", "robot-enter-chat", "robot-card-event", "robot-feedback"])
def test_allowed_replies_per_callback(to: Message, expected: set[str]) -> None:
    assert allowed(to) == expected


def test_a_violation_is_raised_before_rendering_with_a_clear_message() -> None:
    feedback = robot("event", "feedback_event")
    with pytest.raises(ReplyNotAllowedError, match="feedback_event accepts only an empty reply") as caught:
        render_reply(TextReply("thanks"), feedback)
    assert isinstance(caught.value, RenderError) and caught.value.code == ErrorCode.GEN_RETURN_XML_ERROR
    with pytest.raises(ReplyNotAllowedError, match="MusicReply cannot answer a wecom-app 'text' message"):
        render_reply(MusicReply("t"), parse_message(OA_TEXT, Platform.WECOM_APP), create_time=1)


def test_only_replies_and_messages_are_checked() -> None:
    with pytest.raises(RenderError, match="expected a Reply"):
        check_reply("hi", parse_message(OA_TEXT, Platform.OFFICIAL_ACCOUNT))  # type: ignore[arg-type]
    with pytest.raises(RenderError, match="answers a Message"):
        check_reply(TextReply("hi"), OA_TEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize("to", [
    parse_message(OA_TEXT, Platform.OFFICIAL_ACCOUNT),
    parse_message(OA_TEXT.replace("<MsgId>", "<AgentID>1</AgentID><MsgId>"), Platform.WECOM_APP),
    robot("text", text={"content": "hi"}),
], ids=["official-account", "wecom-app", "wecom-robot"])
def test_markdown_is_never_a_passive_reply_and_the_refusal_says_how_to_send_it(to: Message) -> None:
    with pytest.raises(ReplyNotAllowedError, match=r"cannot answer .* passively: it is sent through the message "
                                                   r"API \(a WeCom app with corp_secret and agent_id"):
        render_reply(MarkdownReply("**bold**"), to)
