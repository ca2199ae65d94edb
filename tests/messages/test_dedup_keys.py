"""dedup_key identifies a platform retry, and only a retry.

A retry carries the same plaintext re-encrypted (new random bytes, new nonce and
signature); a distinct callback differs somewhere in its plaintext, often only in a
field no hand-picked key looks at (ExternalUserID, ChangeType, MsgID, Status).
"""

from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from wxcallback.core.crypto import MessageCrypto
from wxcallback.messages import Platform, parse_message

OA = Platform.OFFICIAL_ACCOUNT
WECOM = Platform.WECOM_APP
ROBOT = Platform.WECOM_ROBOT
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def oa_event(name: str, key: str = "", sender: str = "u1", second: int = 100) -> str:
    return (f"<xml><ToUserName>gh</ToUserName><FromUserName>{sender}</FromUserName><CreateTime>{second}"
            f"</CreateTime><MsgType>event</MsgType><Event>{name}</Event><EventKey>{key}</EventKey></xml>")


def external_contact(change_type: str, external_user: str, user: str = "zhangsan") -> str:
    return ("<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            "<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_contact]]></Event>"
            f"<ChangeType><![CDATA[{change_type}]]></ChangeType><UserID><![CDATA[{user}]]></UserID>"
            f"<ExternalUserID><![CDATA[{external_user}]]></ExternalUserID></xml>")


def test_messages_are_labelled_by_msgid_and_identified_by_their_plaintext() -> None:
    body = ("<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
            "<Content>{}</Content><MsgId>42</MsgId></xml>")
    first = parse_message(body.format("a"), OA)
    assert first.dedup_key.startswith("msgid:42:")
    assert parse_message(body.format("a"), OA).dedup_key == first.dedup_key
    # the same MsgId on another message (ids collide across apps) is another callback
    assert parse_message(body.format("b"), OA).dedup_key != first.dedup_key


def test_same_second_events_of_one_sender_are_distinct() -> None:
    keys = {parse_message(external_contact(change, user), WECOM).dedup_key
            for change in ("add_external_contact", "del_external_contact", "edit_external_contact")
            for user in ("wm1", "wm2", "wm3")}
    assert len(keys) == 9
    clicks = {parse_message(oa_event("CLICK", key), OA).dedup_key for key in ("A", "B")}
    assert len(clicks) == 2


def test_job_results_differing_only_in_msgid_or_status_are_distinct() -> None:
    body = ("<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>7</CreateTime>"
            "<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>{}</MsgID>"
            "<Status>{}</Status></xml>")
    keys = {parse_message(body.format(msg_id, status), OA).dedup_key
            for msg_id in (9, 10, 11) for status in ("success", "failed:user block")}
    assert len(keys) == 6
    assert all(key.startswith("event:templatesendjobfinish:") for key in keys)


def test_callbacks_without_a_sender_are_distinct() -> None:
    body = ("<xml><ToUserName><![CDATA[ww1]]></ToUserName><CreateTime>1348831860</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            "<Token><![CDATA[{}]]></Token><OpenKfId><![CDATA[wkABC]]></OpenKfId></xml>")
    assert parse_message(body.format("T1"), WECOM).dedup_key != parse_message(body.format("T2"), WECOM).dedup_key


def test_suite_and_component_instructions_are_distinct() -> None:
    suite = ("<xml><SuiteId>s</SuiteId><InfoType>create_auth</InfoType><TimeStamp>5</TimeStamp>"
             "<AuthCode>{}</AuthCode></xml>")
    first = parse_message(suite.format("C1"), WECOM)
    assert first.dedup_key.startswith("instruction:create_auth:")
    assert parse_message(suite.format("C2"), WECOM).dedup_key != first.dedup_key
    component = ("<xml><AppId>wx1</AppId><CreateTime>5</CreateTime><InfoType>authorized</InfoType>"
                 "<AuthorizerAppid>{}</AuthorizerAppid></xml>")
    assert parse_message(component.format("a"), OA).dedup_key != parse_message(component.format("b"), OA).dedup_key


def test_robot_callbacks_are_labelled_by_msgid_and_identified_by_their_plaintext() -> None:
    base = {"aibotid": "B", "from": {"userid": "U"}, "msgtype": "text", "text": {"content": "x"}}
    first = parse_message(json.dumps({**base, "msgid": "m1"}), ROBOT)
    assert first.dedup_key.startswith("msgid:m1:")
    assert parse_message(json.dumps({**base, "msgid": "m1"}), ROBOT).dedup_key == first.dedup_key
    assert parse_message(json.dumps({**base, "msgid": "m2"}), ROBOT).dedup_key != first.dedup_key
    # the robot docs give one msgid to every sample: the rest of the callback still tells them apart
    assert parse_message(json.dumps({**base, "msgid": "m1", "aibotid": "C"}), ROBOT).dedup_key != first.dedup_key


def test_robot_callbacks_without_msgid_fall_back_to_the_plaintext() -> None:
    body = '{"msgtype": "text", "text": {"content": "x"}}'
    key = parse_message(body, ROBOT).dedup_key
    assert key.startswith("text:")
    assert parse_message(body, ROBOT).dedup_key == key
    assert parse_message(body.replace('"x"', '"y"'), ROBOT).dedup_key != key


def test_the_label_is_bounded_and_key_safe() -> None:
    body = json.dumps({"msgtype": "text", "msgid": "a b\n" * 100, "aibotid": "B"})
    label = parse_message(body, ROBOT).dedup_key.rsplit(":", 1)[0]
    assert len(label) <= 64 and " " not in label and "\n" not in label


def test_str_and_bytes_plaintext_give_one_key() -> None:
    body = external_contact("add_external_contact", "wm你好")
    assert parse_message(body, WECOM).dedup_key == parse_message(body.encode(), WECOM).dedup_key


def test_a_retry_re_encrypted_has_the_same_key() -> None:
    crypto = MessageCrypto("token", KEY, "ww1")
    plaintext = external_contact("add_external_contact", "wm1")
    keys = set()
    for attempt in range(3):  # the platform's three attempts: new random bytes, nonce, timestamp
        nonce, timestamp = f"n{attempt}", str(1700000000 + attempt)
        envelope = crypto.encrypt_reply(plaintext, nonce, timestamp=timestamp, random=os.urandom(16))
        decrypted = crypto.decrypt_ciphertext(envelope.encrypt, envelope.msg_signature, timestamp, nonce)
        keys.add(parse_message(decrypted.text, WECOM).dedup_key)
    assert len(keys) == 1


_names = st.sampled_from(["ChangeType", "UserID", "ExternalUserID", "State", "Status", "MsgID", "EventKey",
                          "JobId", "Id", "ChatId", "Token", "TagType"])
_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                  max_size=12).filter(lambda v: v.strip() == v and "]]>" not in v)
_fields = st.dictionaries(_names, _values, min_size=1, max_size=6)


def _document(event: str, fields: dict[str, str]) -> str:
    children = "".join(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items())
    return (f"<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event>{children}</xml>")


@settings(max_examples=300, deadline=None)
@given(event=st.sampled_from(["change_external_contact", "batch_job_result", "templatesendjobfinish",
                              "change_contact", "kf_msg_or_event", "subscribe_msg_sent_event"]),
       first=_fields, second=_fields)
def test_documents_that_differ_in_any_field_have_different_keys(event: str, first: dict[str, str],
                                                                second: dict[str, str]) -> None:
    a, b = parse_message(_document(event, first), WECOM), parse_message(_document(event, second), WECOM)
    assert (a.dedup_key == b.dedup_key) == (first == second and list(first) == list(second))


@settings(max_examples=50, deadline=None)
@given(fields=_fields)
def test_any_document_re_encrypted_keeps_its_key(fields: dict[str, str]) -> None:
    crypto = MessageCrypto("token", KEY, "ww1")
    plaintext = _document("change_external_contact", fields)
    envelope = crypto.encrypt_reply(plaintext, "nonce", timestamp="1700000000")
    decrypted = crypto.decrypt_ciphertext(envelope.encrypt, envelope.msg_signature, "1700000000", "nonce")
    assert parse_message(decrypted.text, WECOM).dedup_key == parse_message(plaintext, WECOM).dedup_key
