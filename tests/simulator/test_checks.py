"""Judging single answers, without a server: each wrong shape gets a reason that names it."""

from __future__ import annotations

import json

from wxcallback.core import MessageCrypto
from wxcallback.simulator import Scenarios, Target
from wxcallback.simulator.checks import judge_reply, judge_url_answer

from .reference_endpoint import ACCOUNT_ID, APP_ID, CORP_ID, KEY, TOKEN

URL = "http://127.0.0.1:1/cb"


def _oa(mode: str = "safe") -> Target:
    return Target.create(URL, platform="official-account", token=TOKEN, encoding_aes_key=KEY, receive_id=APP_ID,
                         mode=mode, account_id=ACCOUNT_ID)


def _text_reply(to_user: str, from_user: str, msg_type: str = "text") -> str:
    return (f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><FromUserName><![CDATA[{from_user}]]>"
            f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
            "<Content><![CDATA[hi]]></Content></xml>")


def test_url_answer_with_a_bom_or_still_encrypted_is_named() -> None:
    target = _oa()
    assert "BOM" in judge_url_answer(target, "123", "\ufeff123".encode()).detail
    assert "still-encrypted" in judge_url_answer(target, "123", b"QUJD", encrypted_echostr="QUJD").detail
    assert "wrapped in other text" in judge_url_answer(target, "123", b'{"data":"123"}').detail
    assert judge_url_answer(target, "123", b"123").passed


def test_empty_body_and_success_mean_no_reply() -> None:
    target = _oa()
    callback = Scenarios(target).text()
    for body in (b"", b"success"):
        reading = judge_reply(target, callback, "1", body)
        assert reading.passed and reading.plaintext is None


def test_stream_refresh_needs_an_answer() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    reading = judge_reply(target, Scenarios(target).stream_refresh("s"), "1", b"")
    assert not reading.passed and "must be answered" in reading.checks[-1].detail


def test_envelope_tags_are_case_sensitive() -> None:
    target = _oa()
    sealed = MessageCrypto(TOKEN, KEY, APP_ID).encrypt_reply("x", "42")
    body = (f"<xml><Encrypt>{sealed.encrypt}</Encrypt><MsgSignature>{sealed.msg_signature}</MsgSignature>"
            f"<Timestamp>{sealed.timestamp}</Timestamp><Nonce>42</Nonce></xml>").encode()
    reading = judge_reply(target, Scenarios(target).text(), "42", body)
    assert not reading.passed
    assert "<TimeStamp>" in reading.checks[-1].detail and "case-sensitive" in reading.checks[-1].detail


def test_robot_envelope_key_is_msgsignature_without_underscore() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    sealed = MessageCrypto(TOKEN, KEY, "").encrypt_reply('{"msgtype":"stream"}', "42")
    body = json.dumps({"encrypt": sealed.encrypt, "msg_signature": sealed.msg_signature,
                       "timestamp": int(sealed.timestamp), "nonce": "42"}).encode()
    reading = judge_reply(target, Scenarios(target).text(), "42", body)
    assert "'msgsignature'" in reading.checks[-1].detail and "msg_signature" in reading.checks[-1].detail


def test_encrypted_reply_in_safe_mode_is_decrypted_and_judged() -> None:
    target = _oa("safe")
    callback = Scenarios(target).text()
    body = MessageCrypto(TOKEN, KEY, APP_ID).encrypt(_text_reply(callback.sender, ACCOUNT_ID), "77").encode()
    reading = judge_reply(target, callback, "77", body)
    assert reading.passed, reading.checks
    assert reading.plaintext == _text_reply(callback.sender, ACCOUNT_ID)


def test_plaintext_reply_is_accepted_in_compatible_mode_but_not_in_safe_mode() -> None:
    for mode, accepted in (("compatible", True), ("safe", False)):
        target = _oa(mode)
        callback = Scenarios(target).text()
        reading = judge_reply(target, callback, "1", _text_reply(callback.sender, ACCOUNT_ID).encode())
        assert reading.passed is accepted, (mode, reading.checks)


def test_reply_from_the_wrong_account_or_with_an_unknown_type_fails() -> None:
    target = Target.create(URL, platform="wecom-app", token=TOKEN, encoding_aes_key=KEY, receive_id=CORP_ID)
    callback = Scenarios(target).text()
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    wrong_account = crypto.encrypt(_text_reply(callback.sender, "gh_other"), "5").encode()
    assert "expected the account" in judge_reply(target, callback, "5", wrong_account).checks[-1].detail
    wrong_type = crypto.encrypt(_text_reply(callback.sender, CORP_ID, "markdown"), "5").encode()
    assert "not a passive reply type" in judge_reply(target, callback, "5", wrong_type).checks[-1].detail


def test_robot_user_message_cannot_be_answered_with_plain_text() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    body = MessageCrypto(TOKEN, KEY, "", envelope="json").encrypt(
        '{"msgtype":"text","text":{"content":"hi"}}', "9").encode()
    reading = judge_reply(target, Scenarios(target).text(), "9", body)
    assert not reading.passed and "msgtype 'text' is not allowed" in reading.checks[-1].detail


def test_robot_stream_content_over_the_limit_fails() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    reply = json.dumps({"msgtype": "stream", "stream": {"id": "s", "finish": True, "content": "字" * 7000}})
    body = MessageCrypto(TOKEN, KEY, "", envelope="json").encrypt(reply, "9").encode()
    reading = judge_reply(target, Scenarios(target).text(), "9", body)
    assert not reading.passed and "over 20480" in reading.checks[-1].detail


def test_robot_card_update_must_repeat_the_task_id() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    callback = Scenarios(target).event("template_card_event", task_id="task-1")
    reply = json.dumps({"response_type": "update_template_card", "template_card": {"task_id": "task-2"}})
    body = MessageCrypto(TOKEN, KEY, "", envelope="json").encrypt(reply, "9").encode()
    reading = judge_reply(target, callback, "9", body)
    assert not reading.passed and "'task-1'" in reading.checks[-1].detail


def test_reply_that_is_not_utf8_fails_without_raising() -> None:
    target = _oa("plaintext")
    reading = judge_reply(target, Scenarios(target).text(), "1", b"\xff\xfe<xml/>")
    assert not reading.passed and "not UTF-8" in reading.checks[-1].detail
