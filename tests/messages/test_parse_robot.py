"""Smart robot callbacks (WeCom doc 100719): vector E10 and the documented shapes."""

from __future__ import annotations

import json
from typing import Any

from wxcallback.messages import (
    EmptyReply,
    EnterChatEvent,
    FeedbackEvent,
    Platform,
    RobotFileMessage,
    RobotGenericEvent,
    RobotGenericMessage,
    RobotImageMessage,
    RobotMixedMessage,
    RobotTemplateCardEvent,
    RobotTextMessage,
    RobotVideoMessage,
    RobotVoiceMessage,
    StreamRefresh,
    parse_message,
)

ROBOT = Platform.WECOM_ROBOT


def callback(msgtype: str, **payload: Any) -> str:
    data = {"msgid": "CAIQ16HMjQYY", "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "single",
            "from": {"userid": "USERID", "corpid": "wpxxxx"}, "response_url": "https://qyapi.weixin.qq.com/x",
            "msgtype": msgtype, **payload}
    return json.dumps(data, ensure_ascii=False)


def robot_event(eventtype: str, body: dict[str, Any]) -> str:
    return callback("event", create_time=1700000000, event={"eventtype": eventtype, eventtype: body})


def test_vector_e10_group_text(plaintexts: dict[str, str]) -> None:
    message = parse_message(plaintexts["E10"], ROBOT)
    assert isinstance(message, RobotTextMessage)
    assert message.content == "@机器人 你好，请总结一下今天的会议"
    assert (message.source, message.target, message.chat_id, message.chat_type) == (
        "USERID", "AIBOTID", "CHATID", "group")
    assert message.msg_id == "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="
    assert message.dedup_key.startswith("msgid:CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=:")
    assert message.no_reply == EmptyReply()
    assert message.create_time is None and message.response_url is None


def test_media_messages() -> None:
    image = parse_message(callback("image", image={"url": "https://u/img"}), ROBOT)
    assert isinstance(image, RobotImageMessage) and image.url == "https://u/img"
    voice = parse_message(callback("voice", voice={"content": "语音转文字"}), ROBOT)
    assert isinstance(voice, RobotVoiceMessage) and voice.content == "语音转文字"
    file = parse_message(callback("file", file={"url": "https://u/f"}), ROBOT)
    assert isinstance(file, RobotFileMessage) and file.url == "https://u/f"
    video = parse_message(callback("video", video={"url": "https://u/v"}), ROBOT)
    assert isinstance(video, RobotVideoMessage) and video.url == "https://u/v"
    assert image.corp_id == "wpxxxx" and image.response_url == "https://qyapi.weixin.qq.com/x"


def test_mixed_message_joins_text_and_lists_images() -> None:
    message = parse_message(callback("mixed", mixed={"msg_item": [
        {"msgtype": "text", "text": {"content": "看这张图"}},
        {"msgtype": "image", "image": {"url": "https://u/1"}},
        {"msgtype": "text", "text": {"content": "怎么样"}},
    ]}), ROBOT)
    assert isinstance(message, RobotMixedMessage)
    assert message.content == "看这张图\n怎么样"
    assert message.image_urls == ["https://u/1"]
    assert len(message.items) == 3


def test_quote_is_typed_and_exported_raw() -> None:
    message = parse_message(callback("text", text={"content": "这个呢"},
                                     quote={"msgtype": "text", "text": {"content": "原文"}}), ROBOT)
    assert message.quote is not None  # type: ignore[attr-defined]
    assert (message.quote.msg_type, message.quote.content) == ("text", "原文")  # type: ignore[attr-defined]
    assert message.to_dict()["quote"] == {"msgtype": "text", "text": {"content": "原文"}}
    plain = parse_message(callback("text", text={"content": "x"}), ROBOT)
    assert isinstance(plain, RobotTextMessage) and plain.quote is None


def test_stream_refresh_dedups_on_stream_id_and_msgid() -> None:
    message = parse_message(callback("stream", stream={"id": "STREAMID"}), ROBOT)
    assert isinstance(message, StreamRefresh)
    assert message.stream_id == "STREAMID"
    assert message.dedup_key.startswith("stream:STREAMID:")
    assert not message.is_user_message


def test_events() -> None:
    enter = parse_message(robot_event("enter_chat", {}), ROBOT)
    assert isinstance(enter, EnterChatEvent)
    assert (enter.msg_type, enter.event, enter.create_time) == ("event", "enter_chat", 1700000000)

    card = parse_message(robot_event("template_card_event", {
        "card_type": "vote_interaction", "event_key": "button_key", "task_id": "task_1",
        "selected_items": {"selected_item": [{"question_key": "q1", "option_ids": {"option_id": ["a", "b"]}}]},
    }), ROBOT)
    assert isinstance(card, RobotTemplateCardEvent)
    assert (card.card_type, card.event_key, card.task_id) == ("vote_interaction", "button_key", "task_1")
    assert card.selected_items == [{"question_key": "q1", "option_ids": ["a", "b"]}]

    feedback = parse_message(robot_event("feedback_event", {
        "id": "FEEDBACKID", "type": 2, "content": "不准确", "inaccurate_reason_list": [1, 3]}), ROBOT)
    assert isinstance(feedback, FeedbackEvent)
    assert (feedback.feedback_id, feedback.feedback_type, feedback.content, feedback.inaccurate_reasons) == (
        "FEEDBACKID", 2, "不准确", [1, 3])
    assert feedback.to_dict()["payload"]["id"] == "FEEDBACKID"


def test_unknown_robot_types_are_generic() -> None:
    unknown = parse_message(callback("location", location={"latitude": 1}), ROBOT)
    assert type(unknown) is RobotGenericMessage and unknown.raw["location"] == {"latitude": 1}
    disconnected = parse_message(robot_event("disconnected_event", {}), ROBOT)
    assert type(disconnected) is RobotGenericEvent and disconnected.event == "disconnected_event"


def test_to_dict_is_json_with_the_robot_common_fields() -> None:
    data = parse_message(callback("text", text={"content": "hi"}), ROBOT).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert (data["platform"], data["source"], data["target"], data["chat_type"], data["content"]) == (
        "wecom-robot", "USERID", "AIBOTID", "single", "hi")
