"""Every encrypt vector reproduced byte for byte, and decrypted back, by both APIs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vectors import ids, load
from wxcallback import MessageCrypto, decode_encoding_aes_key
from wxcallback.compat import WXBizJsonMsgCrypt, WXBizMsgCrypt
from wxcallback.core.frame import pack_frame

ENCRYPT = load("encrypt.json")


def _crypto(v: dict[str, Any]) -> MessageCrypto:
    envelope = "xml" if v["format"] == "xml" else "json"
    return MessageCrypto(v["token"], v["encoding_aes_key"], v["receive_id"], envelope=envelope)


def _seal(v: dict[str, Any]):
    return _crypto(v).encrypt_reply(
        v["plaintext"], v["nonce"], timestamp=v["timestamp"], random=bytes.fromhex(v["random_hex"])
    )


@pytest.mark.parametrize("v", ENCRYPT, ids=ids(ENCRYPT, "vector_id"))
def test_key_decodes_to_the_recorded_aes_key(v: dict[str, Any]) -> None:
    assert decode_encoding_aes_key(v["encoding_aes_key"]).hex() == v["aes_key_hex"]


@pytest.mark.parametrize("v", ENCRYPT, ids=ids(ENCRYPT, "vector_id"))
def test_ciphertext_and_signature_are_byte_identical(v: dict[str, Any]) -> None:
    reply = _seal(v)
    assert reply.encrypt == v["ciphertext"]
    assert reply.msg_signature == v["signature"]
    # Where the vector re-creates a published ciphertext (injected random = the sample's).
    if v["checks"].get("matches_official_expected_ciphertext"):
        assert reply.encrypt == v["official_expected_ciphertext"]
        if v.get("official_expected_signature"):
            assert reply.msg_signature == v["official_expected_signature"]


@pytest.mark.parametrize("v", [v for v in ENCRYPT if v.get("plaintext_block_hex")],
                         ids=ids([v for v in ENCRYPT if v.get("plaintext_block_hex")], "vector_id"))
def test_padded_frame_matches_the_recorded_block(v: dict[str, Any]) -> None:
    block = pack_frame(v["plaintext"].encode(), v["receive_id"].encode(), bytes.fromhex(v["random_hex"]))
    assert block.hex() == v["plaintext_block_hex"]
    assert block[-1] == v["padding_len"]
    assert len(v["plaintext"].encode()) == v["plaintext_utf8_len"]


@pytest.mark.parametrize("v", ENCRYPT, ids=ids(ENCRYPT, "vector_id"))
def test_envelope_matches_the_official_output(v: dict[str, Any]) -> None:
    envelope = _seal(v).render()
    if v["format"] == "xml":
        assert envelope == v["envelope"]
    else:
        assert json.loads(envelope) == json.loads(v["envelope"])


@pytest.mark.parametrize("v", ENCRYPT, ids=ids(ENCRYPT, "vector_id"))
def test_official_envelope_decrypts_to_the_plaintext(v: dict[str, Any]) -> None:
    # The reply envelope is itself a valid callback body of its format.
    message = _crypto(v).decrypt(v["envelope"], v["signature"], v["timestamp"], v["nonce"])
    assert message.text == v["plaintext"]
    assert message.receive_id == v["receive_id"]
    assert message.random.hex() == v["random_hex"]
    assert message.key_index == 0


@pytest.mark.parametrize("v", ENCRYPT, ids=ids(ENCRYPT, "vector_id"))
def test_compat_layer_reproduces_and_decrypts_the_vector(v: dict[str, Any]) -> None:
    cls = WXBizMsgCrypt if v["format"] == "xml" else WXBizJsonMsgCrypt
    sdk = cls(v["token"], v["encoding_aes_key"], v["receive_id"])
    ret, plaintext = sdk.DecryptMsg(v["envelope"], v["signature"], v["timestamp"], v["nonce"])
    assert ret == 0
    expected = v["plaintext"].encode() if cls is WXBizMsgCrypt else v["plaintext"]
    assert plaintext == expected
    ret, envelope = sdk.EncryptMsg(v["plaintext"], v["nonce"], v["timestamp"])
    assert ret == 0 and envelope is not None
    # Fresh random each time: same shape and signature over what was produced.
    again = _crypto(v).decrypt(envelope, _signature_of(envelope, v["format"]), v["timestamp"], v["nonce"])
    assert again.text == v["plaintext"]


def test_compat_json_envelope_has_the_official_layout() -> None:
    v = next(v for v in ENCRYPT if v["impl"] == "wework-python3-json")
    sdk = WXBizJsonMsgCrypt(v["token"], v["encoding_aes_key"], v["receive_id"])
    _, envelope = sdk.EncryptMsg(v["plaintext"], v["nonce"], v["timestamp"])
    assert envelope is not None
    # Same layout as the official JSON SDK: only the ciphertext and signature differ.
    official = v["envelope"].replace(v["ciphertext"], "C").replace(v["signature"], "S")
    ours = json.loads(envelope)
    assert envelope.replace(ours["encrypt"], "C").replace(ours["msgsignature"], "S") == official


def _signature_of(envelope: str, fmt: str) -> str:
    if fmt == "xml":
        return envelope.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    return str(json.loads(envelope)["msgsignature"])
