"""The frame codec: req_ids, reading platform frames, building the bot's frames, the limits."""

from __future__ import annotations

import json

import pytest

from wxcallback.longconn import Ack, Callback, Cmd, FrameBuildError, FrameError, parse_frame, reply_frame
from wxcallback.longconn.frames import (
    MAX_CHUNK_BYTES,
    MAX_CONTENT_BYTES,
    check_body,
    check_stream,
    chunk_media,
    encode_ack,
    encode_callback,
    markdown_body,
    new_req_id,
    parse_request,
    ping_frame,
    send_msg_frame,
    subscribe_frame,
    upload_chunk_frame,
    upload_init_frame,
)
from wxcallback.messages import (
    EmptyReply,
    ReplyNotAllowedError,
    StreamReply,
    TemplateCardReply,
    TextReply,
    UpdateTemplateCardReply,
)
from wxcallback.simulator.longconn import sample_event, sample_message

CARD = {"card_type": "text_notice", "main_title": {"title": "hi"}, "task_id": "task_1"}


def callback(body: dict, cmd: str = Cmd.MSG_CALLBACK, req_id: str = "REQ1") -> Callback:
    parsed = parse_frame(encode_callback(cmd, req_id, body))
    assert isinstance(parsed, Callback)
    return parsed


def test_req_id_has_the_command_the_time_and_csprng_hex():
    assert new_req_id("ping", now_ms=1712000000000, token=lambda n: "ab" * n) == "ping_1712000000000_abababab"
    ids = {new_req_id(Cmd.SEND_MSG) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("aibot_send_msg_") for i in ids)


def test_a_message_callback_reads_with_its_typed_message():
    frame = encode_callback(Cmd.MSG_CALLBACK, "R", sample_message("bot", "text", text="hi there"))
    parsed = parse_frame(frame)
    assert isinstance(parsed, Callback) and not parsed.is_event
    assert parsed.req_id == "R" and parsed.msgtype == "text" and parsed.eventtype == ""
    assert parsed.message().content == "hi there"


def test_an_event_callback_reads_with_its_eventtype():
    parsed = parse_frame(encode_callback(Cmd.EVENT_CALLBACK, "E", sample_event("bot", "template_card_event",
                                                                               task_id="t1")))
    assert isinstance(parsed, Callback) and parsed.is_event and parsed.eventtype == "template_card_event"
    assert parsed.message().task_id == "t1"


def test_an_ack_reads_with_errcode_and_body():
    ack = parse_frame(encode_ack("U1", body={"upload_id": "u"}))
    assert ack == Ack("U1", 0, "ok", {"upload_id": "u"}) and ack.ok
    refused = parse_frame(b'{"headers":{"req_id":"S"},"errcode":853000,"errmsg":"invalid bot_id or secret"}')
    assert isinstance(refused, Ack) and not refused.ok and refused.errcode == 853000


@pytest.mark.parametrize("data, reason", [
    ("not json", "not-json"),
    (b"\xff\xfe", "not-json"),
    ("[1, 2]", "not-object"),
    ('{"cmd": "aibot_msg_callback", "body": {"msgtype": "text"}}', "no-req-id"),
    ('{"headers": {"req_id": ""}, "errcode": 0}', "no-req-id"),
    ('{"cmd": 5, "headers": {"req_id": "x"}}', "bad-cmd"),
    ('{"cmd": "aibot_whatever", "headers": {"req_id": "x"}}', "unknown-cmd"),
    ('{"cmd": "aibot_msg_callback", "headers": {"req_id": "x"}, "body": []}', "bad-body"),
    ('{"cmd": "aibot_msg_callback", "headers": {"req_id": "x"}, "body": {"text": {}}}', "bad-body"),
    ('{"cmd": "aibot_event_callback", "headers": {"req_id": "x"}, "body": {"msgtype": "event"}}', "bad-body"),
    ('{"headers": {"req_id": "x"}, "errcode": "0"}', "bad-errcode"),
    ('{"headers": {"req_id": "x"}, "errcode": true}', "bad-errcode"),
    ('{"headers": {"req_id": "x"}, "errcode": 0, "body": "s"}', "bad-body"),
    ("[" * 100000 + "]" * 100000, "not-json"),
])
def test_malformed_frames_are_one_coded_error(data, reason):
    with pytest.raises(FrameError) as caught:
        parse_frame(data)
    assert caught.value.reason == reason
    assert int(caught.value.code) == -40002


def test_subscribe_frame_hides_the_secret_from_its_repr():
    frame = subscribe_frame("BOT", "s3cr3t-value", extra={"scene": 1})
    assert json.loads(frame.to_json()) == {"cmd": "aibot_subscribe", "headers": {"req_id": frame.req_id},
                                           "body": {"bot_id": "BOT", "secret": "s3cr3t-value", "scene": 1}}
    assert "s3cr3t-value" not in repr(frame)


def test_ping_has_no_body():
    frame = ping_frame("P")
    assert json.loads(frame.to_json()) == {"cmd": "ping", "headers": {"req_id": "P"}}


def test_a_stream_reply_answers_a_message_on_its_req_id():
    frame = reply_frame(StreamReply("s1", "partial"), callback(sample_message("bot", "text")))
    assert frame is not None and frame.cmd == Cmd.RESPOND_MSG and frame.req_id == "REQ1"
    assert frame.body == {"msgtype": "stream", "stream": {"id": "s1", "finish": False, "content": "partial"}}


def test_a_template_card_answers_a_message():
    frame = reply_frame(TemplateCardReply(CARD), callback(sample_message("bot", "text")))
    assert frame is not None and frame.body == {"msgtype": "template_card", "template_card": CARD}


def test_a_welcome_goes_as_respond_welcome():
    event = callback(sample_event("bot", "enter_chat"), Cmd.EVENT_CALLBACK)
    frame = reply_frame(TextReply("welcome"), event)
    assert frame is not None and frame.cmd == Cmd.RESPOND_WELCOME
    assert frame.body == {"msgtype": "text", "text": {"content": "welcome"}}


def test_a_card_update_goes_as_respond_update_with_the_events_task_id():
    event = callback(sample_event("bot", "template_card_event", task_id="task_9"), Cmd.EVENT_CALLBACK)
    frame = reply_frame(UpdateTemplateCardReply({"card_type": "button_interaction"}, ["u1"]), event)
    assert frame is not None and frame.cmd == Cmd.RESPOND_UPDATE
    assert frame.body == {"response_type": "update_template_card", "userids": ["u1"],
                          "template_card": {"card_type": "button_interaction", "task_id": "task_9"}}


def test_an_empty_reply_sends_nothing():
    assert reply_frame(EmptyReply(), callback(sample_event("bot", "feedback_event"), Cmd.EVENT_CALLBACK)) is None


@pytest.mark.parametrize("reply, body, cmd", [
    (TextReply("x"), sample_message("bot", "text"), Cmd.MSG_CALLBACK),
    (StreamReply("s", "x"), sample_event("bot", "enter_chat"), Cmd.EVENT_CALLBACK),
    (TextReply("x"), sample_event("bot", "feedback_event"), Cmd.EVENT_CALLBACK),
])
def test_replies_the_callback_does_not_take_are_refused(reply, body, cmd):
    with pytest.raises(ReplyNotAllowedError):
        reply_frame(reply, callback(body, cmd))


def test_stream_content_is_at_most_20480_bytes_of_utf8():
    check_stream({"id": "s", "finish": False, "content": "\u4e2d" * (MAX_CONTENT_BYTES // 3)})
    with pytest.raises(FrameBuildError, match="20481 bytes"):
        check_stream({"id": "s", "finish": False, "content": "a" * (MAX_CONTENT_BYTES + 1)})


def test_msg_item_only_on_the_finishing_frame():
    item = [{"msgtype": "image", "image": {"base64": "AA==", "md5": "0" * 32}}]
    check_stream({"id": "s", "finish": True, "content": "", "msg_item": item})
    with pytest.raises(FrameBuildError, match="finishing frame"):
        check_stream({"id": "s", "finish": False, "content": "", "msg_item": item})


def test_reply_bodies_are_checked_per_command():
    check_body(Cmd.RESPOND_WELCOME, {"msgtype": "text", "text": {"content": "hi"}})
    with pytest.raises(FrameBuildError):
        check_body(Cmd.RESPOND_WELCOME, {"msgtype": "stream", "stream": {"id": "s"}})
    with pytest.raises(FrameBuildError):
        check_body(Cmd.RESPOND_UPDATE, {"template_card": CARD})
    with pytest.raises(FrameBuildError):
        check_body(Cmd.SEND_MSG, {"msgtype": "markdown", "markdown": {"content": "x"}})  # no chatid


def test_send_msg_carries_the_chatid_and_the_body():
    frame = send_msg_frame("zhangsan", markdown_body("**hi**"), req_id="M")
    assert json.loads(frame.to_json())["body"] == {"chatid": "zhangsan", "msgtype": "markdown",
                                                   "markdown": {"content": "**hi**"}}
    with pytest.raises(FrameBuildError):
        markdown_body("a" * (MAX_CONTENT_BYTES + 1))


def test_media_is_cut_into_chunks_of_at_most_512_kb():
    data = bytes(range(256)) * (MAX_CHUNK_BYTES * 2 // 256 + 10)
    chunks = chunk_media(data)
    assert len(chunks) == 3 and b"".join(chunks) == data
    assert all(len(c) <= MAX_CHUNK_BYTES for c in chunks)
    init = upload_init_frame("file", "a.bin", data, chunks)
    assert init.body is not None and init.body["total_chunks"] == 3 and init.body["total_size"] == len(data)
    with pytest.raises(FrameBuildError):
        upload_chunk_frame("u", 0, b"x" * (MAX_CHUNK_BYTES + 1))
    with pytest.raises(FrameBuildError, match="limit is 100"):
        chunk_media(b"x" * (MAX_CHUNK_BYTES * 100 + 1))
    with pytest.raises(FrameBuildError):
        chunk_media(b"")


def test_the_platform_side_reads_the_bots_frames():
    frame = parse_request(ping_frame("P").to_json())
    assert frame.cmd == "ping" and frame.body is None
    with pytest.raises(FrameError) as caught:
        parse_request('{"headers": {"req_id": "x"}, "errcode": 0}')
    assert caught.value.reason == "bad-cmd"
