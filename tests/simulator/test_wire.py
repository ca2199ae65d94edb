"""The requests are what the platform sends, byte for byte."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote

import pytest

from wxcallback.core import MessageCrypto, check_signature
from wxcallback.core.safexml import parse_xml
from wxcallback.simulator import Scenarios, SimulatorError, Target
from wxcallback.simulator.checks import open_reply
from wxcallback.simulator.wire import callback_request, url_verification

from .reference_endpoint import ACCOUNT_ID, APP_ID, CORP_ID, KEY, TOKEN

URL = "http://127.0.0.1:1/cb"


def _query(raw: str) -> dict[str, str]:
    return dict(parse_qsl(raw, keep_blank_values=True))


def test_official_account_url_check_reproduces_the_published_signature() -> None:
    # The OA / mini-game doc example (protocol notes §1.5, V4): Token AAAAA.
    target = Target.create(URL, platform="official-account", token="AAAAA", mode="plaintext")
    request = url_verification(target, echostr="4375120948345356249", timestamp="1714036504", nonce="1514711492")
    assert _query(request.query) == {
        "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696", "timestamp": "1714036504",
        "nonce": "1514711492", "echostr": "4375120948345356249",
    }
    assert request.method == "GET" and request.body == b""


def test_wecom_url_check_sends_a_percent_encoded_encrypted_echostr() -> None:
    target = Target.create(URL, platform="wecom-app", token=TOKEN, encoding_aes_key=KEY, receive_id=CORP_ID)
    for _ in range(20):  # enough ciphertexts to meet '+' and '/'; every one ends in '='
        request = url_verification(target)
        raw_echostr = request.query.split("echostr=", 1)[1]
        assert not set(raw_echostr) & set("+/= ")
        echostr = unquote(raw_echostr)
        assert echostr.endswith("=") and "%3D" in raw_echostr
        values = _query(request.query)
        assert request.plaintext.isdigit() and len(request.plaintext) == 19
        assert MessageCrypto(TOKEN, KEY, CORP_ID).verify_url(values["msg_signature"], values["timestamp"],
                                                             values["nonce"], echostr) == request.plaintext


def test_robot_url_check_decrypts_with_an_empty_receive_id() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    request = url_verification(target)
    values = _query(request.query)
    assert set(values) == {"msg_signature", "timestamp", "nonce", "echostr"}
    assert MessageCrypto(TOKEN, KEY, "").verify_url(values["msg_signature"], values["timestamp"], values["nonce"],
                                                    values["echostr"]) == request.plaintext


def test_official_account_plaintext_mode_sends_clear_xml_with_the_signature_only() -> None:
    target = Target.create(URL, platform="official-account", token=TOKEN, mode="plaintext", account_id=ACCOUNT_ID)
    callback = Scenarios(target).text("hi")
    request = callback_request(target, callback.payload, sender=callback.sender)
    values = _query(request.query)
    assert set(values) == {"signature", "timestamp", "nonce", "openid"}
    assert values["openid"] == callback.sender
    assert check_signature(values["signature"], TOKEN, values["timestamp"], values["nonce"])
    root = parse_xml(request.body)
    fields = {child.tag: child.text for child in root}
    assert fields["ToUserName"] == ACCOUNT_ID and fields["MsgType"] == "text" and fields["Content"] == "hi"
    assert fields["FromUserName"] == callback.sender and fields["MsgId"].isdigit()


def test_official_account_compatible_mode_carries_plaintext_fields_and_encrypt() -> None:
    target = Target.create(URL, platform="official-account", token=TOKEN, encoding_aes_key=KEY,
                           receive_id=APP_ID, mode="compatible")
    callback = Scenarios(target).event("CLICK", EventKey="K")
    request = callback_request(target, callback.payload, sender=callback.sender)
    values = _query(request.query)
    assert values["encrypt_type"] == "aes"
    assert check_signature(values["signature"], TOKEN, values["timestamp"], values["nonce"])
    root = parse_xml(request.body)
    tags = [child.tag for child in root]
    assert tags[-1] == "Encrypt" and {"ToUserName", "FromUserName", "Event", "EventKey"} <= set(tags)
    opened = MessageCrypto(TOKEN, KEY, APP_ID).decrypt(request.body, values["msg_signature"], values["timestamp"],
                                                       values["nonce"])
    assert opened.text == request.plaintext
    assert {child.tag: child.text for child in parse_xml(opened.text)}["Event"] == "CLICK"


def test_official_account_safe_mode_body_has_only_to_user_and_encrypt() -> None:
    target = Target.create(URL, platform="official-account", token=TOKEN, encoding_aes_key=KEY,
                           receive_id=APP_ID, mode="safe", account_id=ACCOUNT_ID)
    callback = Scenarios(target).text("hi")
    request = callback_request(target, callback.payload, sender=callback.sender)
    root = parse_xml(request.body)
    assert [child.tag for child in root] == ["ToUserName", "Encrypt"]
    assert root.children[0].text == ACCOUNT_ID


def test_wecom_app_body_carries_agent_id_and_decrypts_for_the_corp() -> None:
    target = Target.create(URL, platform="wecom-app", token=TOKEN, encoding_aes_key=KEY, receive_id=CORP_ID,
                           agent_id=218)
    callback = Scenarios(target).event("enter_agent")
    request = callback_request(target, callback.payload)
    root = parse_xml(request.body)
    assert [(child.tag, child.text) for child in root][:2] == [("ToUserName", CORP_ID), ("AgentID", "218")]
    values = _query(request.query)
    assert set(values) == {"msg_signature", "timestamp", "nonce"}
    opened = MessageCrypto(TOKEN, KEY, CORP_ID).decrypt(request.body, values["msg_signature"], values["timestamp"],
                                                        values["nonce"])
    fields = {child.tag: child.text for child in parse_xml(opened.text)}
    assert fields["Event"] == "enter_agent" and fields["AgentID"] == "218" and fields["ToUserName"] == CORP_ID


def test_robot_body_is_json_with_only_encrypt_and_the_documented_fields_inside() -> None:
    target = Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY)
    scenarios = Scenarios(target)
    for callback in scenarios.default():
        request = callback_request(target, callback.payload)
        body = json.loads(request.body)
        assert list(body) == ["encrypt"]
        values = _query(request.query)
        opened = MessageCrypto(TOKEN, KEY, "", envelope="json").decrypt(
            request.body, values["msg_signature"], values["timestamp"], values["nonce"])
        message = json.loads(opened.text)
        assert message["aibotid"] and message["msgid"] and message["chattype"] in ("single", "group")
        assert message["from"]["userid"] == scenarios.user_id
        if message["chattype"] == "group":
            assert message["chatid"]
        if message["msgtype"] != "event" or message["event"]["eventtype"] == "template_card_event":
            assert message["response_url"].startswith("https://qyapi.weixin.qq.com/cgi-bin/aibot/response?")
    refresh = scenarios.stream_refresh("s1").payload
    assert refresh["msgtype"] == "stream" and refresh["stream"] == {"id": "s1"}


def test_every_request_has_a_fresh_nonce_and_every_message_a_unique_id() -> None:
    target = Target.create(URL, platform="wecom-app", token=TOKEN, encoding_aes_key=KEY, receive_id=CORP_ID)
    scenarios = Scenarios(target)
    callbacks = [scenarios.text(str(i)) for i in range(200)]
    assert len({callback.payload["MsgId"] for callback in callbacks}) == 200
    nonces = {callback_request(target, callback.payload).nonce for callback in callbacks}
    assert len(nonces) > 195  # 9-10 random digits: a collision among 200 is possible but rare
    robot = Scenarios(Target.create(URL, platform="wecom-robot", token=TOKEN, encoding_aes_key=KEY))
    assert len({robot.text("x").payload["msgid"] for _ in range(200)}) == 200


def test_a_document_given_as_text_is_sent_byte_for_byte_and_its_reply_opened() -> None:
    target = Target.create(URL, platform="wecom-app", token=TOKEN, encoding_aes_key=KEY, receive_id=CORP_ID)
    document = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[as  written]]></Content></xml>"
    request = callback_request(target, document, nonce="1514711492")
    body = parse_xml(request.body.decode(), what="body")
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    query = _query(request.query)
    opened = crypto.decrypt(request.body.decode(), query["msg_signature"], query["timestamp"], query["nonce"])
    assert opened.text == request.plaintext == document and body.findall("Encrypt")
    # a reply sealed as the server seals it opens (the nonce checked when given); a plain one does not
    sealed = crypto.encrypt_reply("<xml>ok</xml>", "1514711492").render()
    assert open_reply(target, sealed.encode(), "1514711492") == "<xml>ok</xml>"
    assert open_reply(target, sealed.encode()) == "<xml>ok</xml>"
    with pytest.raises(SimulatorError, match="plain"):
        open_reply(target, b"<xml>ok</xml>")
    compatible = Target.create(URL, platform="official-account", token=TOKEN, encoding_aes_key=KEY,
                               receive_id=APP_ID, mode="compatible")
    with pytest.raises(SimulatorError, match="give the fields"):
        callback_request(compatible, document)
