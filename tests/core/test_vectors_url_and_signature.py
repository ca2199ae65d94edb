"""verify_url and signature vectors, through both APIs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.vectors import load
from wxcallback import MessageCrypto, SignatureError, WXCallbackError, check_signature, sign
from wxcallback.compat import WXBizJsonMsgCrypt, WXBizMsgCrypt

VERIFY = load("verify_url.json")
SIGNATURES = load("signature.json")


@pytest.mark.parametrize("case", VERIFY, ids=[c["case_id"] for c in VERIFY])
def test_verify_url(case: dict[str, Any]) -> None:
    crypto = MessageCrypto(case["token"], case["encoding_aes_key"], case["receive_id"])
    args = (case["msg_signature"], case["timestamp"], case["nonce"], case["echostr"])
    if "reply" in case["expected"]:
        assert crypto.verify_url(*args) == case["expected"]["reply"]
    else:
        with pytest.raises(WXCallbackError) as info:
            crypto.verify_url(*args)
        assert info.value.code == case["expected"]["error"]


@pytest.mark.parametrize("case", VERIFY, ids=[c["case_id"] for c in VERIFY])
def test_verify_url_compat_types(case: dict[str, Any]) -> None:
    args = (case["msg_signature"], case["timestamp"], case["nonce"], case["echostr"])
    xml = WXBizMsgCrypt(case["token"], case["encoding_aes_key"], case["receive_id"]).VerifyURL(*args)
    js = WXBizJsonMsgCrypt(case["token"], case["encoding_aes_key"], case["receive_id"]).VerifyURL(*args)
    if "reply" in case["expected"]:
        assert xml == (0, case["expected"]["reply"].encode())
        assert js == (0, case["expected"]["reply"])
    else:
        assert xml == js == (case["expected"]["error"], None)


def test_form_decoded_plus_fails_the_signature_with_a_hint() -> None:
    case = VERIFY[0]
    crypto = MessageCrypto(case["token"], case["encoding_aes_key"], case["receive_id"])
    with pytest.raises(SignatureError, match="form-decoded"):
        crypto.verify_url(case["msg_signature"], case["timestamp"], case["nonce"], case["echostr"].replace("+", " "))


def _values(case: dict[str, Any]) -> tuple[str, ...]:
    base = (case["token"], case["timestamp"], case["nonce"])
    return base if case["encrypt"] is None else (*base, case["encrypt"])


@pytest.mark.parametrize("case", SIGNATURES, ids=[c["case_id"] for c in SIGNATURES])
def test_signature_sha1(case: dict[str, Any]) -> None:
    values = _values(case)
    assert sign(*values) == case["expected_sha1_hex"]
    assert check_signature(case["expected_sha1_hex"], *values)
    assert not check_signature(case["expected_sha1_hex"].upper(), *values)
    assert sorted(values) == [v for v in case["sorted_inputs"]] or "" in values
    if case.get("published_signature"):
        assert sign(*values) == case["published_signature"]


@pytest.mark.parametrize("case", [c for c in SIGNATURES if c.get("sha256_variant")],
                         ids=[c["case_id"] for c in SIGNATURES if c.get("sha256_variant")])
def test_signature_sha256_variant(case: dict[str, Any]) -> None:
    expected = case["sha256_variant"]["value_hex"]
    assert sign(*_values(case), digest="sha256") == expected
    assert check_signature(expected, *_values(case), digest="SHA-256")


@pytest.mark.parametrize("case", [c for c in SIGNATURES if c["kind"] == "plain_signature"],
                         ids=[c["case_id"] for c in SIGNATURES if c["kind"] == "plain_signature"])
def test_official_account_plain_url_check(case: dict[str, Any]) -> None:
    crypto = MessageCrypto(case["token"], "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
    echostr = "4375120948345356249"
    assert crypto.verify_plain_url(case["expected_sha1_hex"], case["timestamp"], case["nonce"], echostr) == echostr
    with pytest.raises(SignatureError):
        crypto.verify_plain_url(_flip(case["expected_sha1_hex"]), case["timestamp"], case["nonce"], echostr)


def _flip(signature: str) -> str:
    return signature[:-1] + ("1" if signature[-1] != "1" else "2")
