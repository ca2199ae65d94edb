"""dedup_key identifies a platform retry, and only a retry."""

from __future__ import annotations

import json

from wxcallback.messages import Platform, parse_message

OA = Platform.OFFICIAL_ACCOUNT


def oa_event(name: str, key: str = "", sender: str = "u1", second: int = 100) -> str:
    return (f"<xml><ToUserName>gh</ToUserName><FromUserName>{sender}</FromUserName><CreateTime>{second}"
            f"</CreateTime><MsgType>event</MsgType><Event>{name}</Event><EventKey>{key}</EventKey></xml>")


def test_messages_dedup_on_msgid_whatever_the_spelling() -> None:
    first = parse_message("<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
                          "<MsgId>42</MsgId></xml>", OA)
    retry = parse_message('{"FromUserName": "u", "CreateTime": 1, "MsgType": "text", "MsgID": 42}', OA)
    assert first.dedup_key == retry.dedup_key == "msgid:42"


def test_events_dedup_on_sender_time_event_and_key() -> None:
    key = parse_message(oa_event("CLICK", "A"), OA).dedup_key
    assert key == "event:u1:100:click:A"
    assert parse_message(oa_event("click", "A"), OA).dedup_key == key  # a retry
    # two clicks in the same second on different buttons are different callbacks
    assert parse_message(oa_event("CLICK", "B"), OA).dedup_key != key
    assert parse_message(oa_event("VIEW", "A"), OA).dedup_key != key
    assert parse_message(oa_event("CLICK", "A", sender="u2"), OA).dedup_key != key
    assert parse_message(oa_event("CLICK", "A", second=101), OA).dedup_key != key


def test_job_finish_events_use_the_event_rule() -> None:
    message = parse_message("<xml><FromUserName>u</FromUserName><CreateTime>7</CreateTime><MsgType>event</MsgType>"
                            "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>9</MsgID></xml>", OA)
    assert message.dedup_key == "event:u:7:templatesendjobfinish:"


def test_robot_callbacks_dedup_on_msgid_and_refreshes_on_stream_and_msgid() -> None:
    base = {"aibotid": "B", "from": {"userid": "U"}}
    text = parse_message(json.dumps({**base, "msgid": "m1", "msgtype": "text", "text": {"content": "x"}}),
                         Platform.WECOM_ROBOT)
    assert text.dedup_key == "msgid:m1"
    refresh = parse_message(json.dumps({**base, "msgid": "m2", "msgtype": "stream", "stream": {"id": "s"}}),
                            Platform.WECOM_ROBOT)
    assert refresh.dedup_key == "stream:s:m2"


def test_suite_tickets_dedup_on_suite_time_and_ticket() -> None:
    body = ("<xml><SuiteId>s</SuiteId><InfoType>suite_ticket</InfoType><TimeStamp>5</TimeStamp>"
            "<SuiteTicket>{}</SuiteTicket></xml>")
    first = parse_message(body.format("T1"), Platform.WECOM_APP)
    assert first.dedup_key == "instruction:s:suite_ticket:5::T1"
    assert parse_message(body.format("T2"), Platform.WECOM_APP).dedup_key != first.dedup_key


def test_callbacks_without_ids_get_a_stable_digest() -> None:
    body = '{"msgtype": "text", "text": {"content": "x"}}'
    key = parse_message(body, Platform.WECOM_ROBOT).dedup_key
    assert key.startswith("sha1:")
    assert parse_message(body, Platform.WECOM_ROBOT).dedup_key == key
    assert parse_message(body.replace('"x"', '"y"'), Platform.WECOM_ROBOT).dedup_key != key
