"""Every decrypt_errors case gets the outcome the strictness table (docs/strictness.md) promises.

The official implementations disagree on most of these inputs (vectors README, D12–D45);
this table is the one rule per case that wxcallback follows. Keep it in step with
docs/strictness.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.vectors import load
from wxcallback import ErrorCode, InvalidKeyError, MessageCrypto, WXCallbackError
from wxcallback.compat import WXBizJsonMsgCrypt, WXBizMsgCrypt

ACCEPT = "accept"

# case id prefix -> (outcome for the XML body, outcome for the JSON body)
EXPECTED: dict[str, tuple[Any, Any]] = {
    "D00": (ACCEPT, ACCEPT),
    "D01": (-40001, -40001),  # wrong signature
    "D02": (-40001, -40001),  # upper-case hex: comparison is case-sensitive
    "D03": (-40001, -40001),  # empty signature
    "D04": (-40001, -40001),  # signature over another timestamp
    "D06": (-40008, -40008),  # tampered last block: padding no longer valid
    "D07": (ACCEPT, ACCEPT),  # no MAC in the protocol: a flipped bit with a re-made signature passes
    "D08": (-40005, -40005),  # frame for another receive_id
    "D10": (-40005, -40005),  # frame carries "" but a corp id is configured
    "D11": (-40005, -40005),  # robot configured with "" refuses a frame for a corp
    "D12": (-40010, -40010),  # '!' in base64
    "D13": (-40010, -40010),  # '=' padding stripped
    "D14": (-40010, -40010),  # MIME line breaks
    "D15": (-40010, -40010),  # URL-safe alphabet
    "D16": (-40007, -40007),  # 40 bytes: not whole AES blocks
    "D17": (-40007, -40007),  # empty ciphertext
    "D18": (-40008, -40008),  # one 16-byte block: not padded to 32
    "D19": (-40008, -40008),  # 48 bytes: a 16-aligned block, never produced by a 32-byte padder
    "D20": (-40008, -40008),  # pad byte 0
    "D21": (-40008, -40008),  # pad byte 33
    "D22": (-40008, -40008),  # pad byte 255
    "D24": (-40008, -40008),  # padding would remove the whole block
    "D25": (-40008, -40008),  # msg_len past the buffer
    "D26": (-40008, -40008),  # msg_len 0xFFFFFFFF
    "D28": (-40005, -40005),  # msg_len short: the message tail lands in receive_id
    "D30": (-40008, -40008),  # shorter than the 20-byte header
    "D31": (-40008, -40008),  # message not UTF-8
    "D32": (-40005, -40005),  # receive_id not UTF-8
    "D33": (-40002, -40002),  # malformed body
    "D34": (-40002, -40002),  # no Encrypt
    "D35": (-40002, -40002),  # no Encrypt, signature over ""
    "D36": (-40001, -40001),  # whitespace around Encrypt is not trimmed
    "D37": (ACCEPT, ACCEPT),  # no CDATA / keys reordered
    "D39": (-40002, -40002),  # Encrypt nested one level deeper
    "D40": (ACCEPT, ACCEPT),  # numeric agentid
    "D41": (ACCEPT, ACCEPT),  # {"encrypt"} only (smart robot)
    "D42": (-40010, -40002),  # XML text "12345" is not base64 / a JSON number is not a string
    "D43": (ACCEPT, ACCEPT),  # XML declaration and UTF-8 BOM are well-formed
}

DECRYPT = [c for c in load("decrypt_errors.json") if c["category"] == "decrypt"]
KEYS = [c for c in load("decrypt_errors.json") if c["category"] == "encoding_aes_key"]


def _expected(case: dict[str, Any], body: str) -> Any:
    return EXPECTED[case["case_id"][:3]][0 if body == "xml_body" else 1]


def _reference_plaintext(case: dict[str, Any]) -> str:
    # Outcome "ok" of the official Python SDK, which every accepting impl agrees with.
    for impl in ("wework-python3-json", "wework-python3-xml", "wechatpy-1.8.18-work"):
        result = case["results"].get(impl, {})
        if result.get("outcome") == "ok" and "plaintext" in result:
            return str(result["plaintext"])
    raise AssertionError(f"no reference plaintext for {case['case_id']}")


def test_every_decrypt_case_has_a_rule() -> None:
    assert {c["case_id"][:3] for c in DECRYPT} <= set(EXPECTED)


@pytest.mark.parametrize("body", ["xml_body", "json_body"])
@pytest.mark.parametrize("case", DECRYPT, ids=[c["case_id"] for c in DECRYPT])
def test_message_crypto_outcome(case: dict[str, Any], body: str) -> None:
    crypto = MessageCrypto(case["token"], case["encoding_aes_key"], case["receive_id"],
                           envelope="xml" if body == "xml_body" else "json")
    expected = _expected(case, body)
    if expected == ACCEPT:
        message = crypto.decrypt(case[body], case["msg_signature"], case["timestamp"], case["nonce"])
        assert message.text == _reference_plaintext(case)
    else:
        with pytest.raises(WXCallbackError) as info:
            crypto.decrypt(case[body], case["msg_signature"], case["timestamp"], case["nonce"])
        assert info.value.code == expected
        assert str(info.value)  # a sentence a person can act on


@pytest.mark.parametrize("body", ["xml_body", "json_body"])
@pytest.mark.parametrize("case", DECRYPT, ids=[c["case_id"] for c in DECRYPT])
def test_compat_outcome(case: dict[str, Any], body: str) -> None:
    cls = WXBizMsgCrypt if body == "xml_body" else WXBizJsonMsgCrypt
    sdk = cls(case["token"], case["encoding_aes_key"], case["receive_id"])
    ret, value = sdk.DecryptMsg(case[body], case["msg_signature"], case["timestamp"], case["nonce"])
    expected = _expected(case, body)
    if expected == ACCEPT:
        assert ret == 0
        plaintext = _reference_plaintext(case)
        assert value == (plaintext.encode() if cls is WXBizMsgCrypt else plaintext)
    else:
        assert (ret, value) == (expected, None)


def test_d07_shows_there_is_no_mac() -> None:
    case = next(c for c in DECRYPT if c["case_id"].startswith("D07"))
    crypto = MessageCrypto(case["token"], case["encoding_aes_key"], case["receive_id"])
    text = crypto.decrypt(case["xml_body"], case["msg_signature"], case["timestamp"], case["nonce"]).text
    assert text == "=xml>hello</xml>"


@pytest.mark.parametrize("case", KEYS, ids=[c["case_id"] for c in KEYS])
def test_encoding_aes_key_cases(case: dict[str, Any]) -> None:
    key = case["encoding_aes_key"]
    if case["case_id"].startswith("K01"):
        crypto = MessageCrypto(case["token"], key, case["receive_id"])
        probe = case["probe_encrypt"]
        ciphertext = crypto.encrypt_reply(probe["plaintext"], probe["nonce"], timestamp=probe["timestamp"],
                                          random=bytes.fromhex(probe["random_hex"])).encrypt
        assert ciphertext == case["results"]["wework-python3-xml"]["encrypt"]["ciphertext"]
        d = case["probe_decrypt"]
        assert crypto.decrypt_ciphertext(d["encrypt"], d["msg_signature"], d["timestamp"], d["nonce"]).text == (
            "<xml>hello</xml>"
        )
        return
    with pytest.raises(InvalidKeyError) as info:
        MessageCrypto(case["token"], key, case["receive_id"])
    assert info.value.code == ErrorCode.ILLEGAL_AES_KEY
    assert key not in str(info.value) or key == ""  # the key itself is never echoed
    # The compat layer answers -40004 from every call instead of raising.
    sdk = WXBizMsgCrypt(case["token"], key, case["receive_id"])
    d = case["probe_decrypt"]
    assert sdk.VerifyURL(d["msg_signature"], d["timestamp"], d["nonce"], d["encrypt"]) == (-40004, None)
    assert sdk.EncryptMsg("hello", "1") == (-40004, None)
