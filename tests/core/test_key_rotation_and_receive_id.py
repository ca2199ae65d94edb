"""Key ring rotation and the receive_id policy."""

from __future__ import annotations

import pytest

from wxcallback import (
    EncryptError,
    InvalidKeyError,
    KeyRing,
    MessageCrypto,
    ReceiveIdError,
    ReceiveIdPolicy,
    generate_encoding_aes_key,
)

TOKEN = "QDG6eK"
OLD = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
NEW = generate_encoding_aes_key()
CORP = "wx5823bf96d3bd56c7"


def _request(key: str, receive_id: str = CORP, text: str = "<xml>hi</xml>") -> tuple[str, str]:
    sender = MessageCrypto(TOKEN, key, receive_id)
    reply = sender.encrypt_reply(text, "nonce1", timestamp="1409659813")
    return reply.render(), reply.msg_signature


def test_generated_keys_are_valid_and_distinct() -> None:
    keys = {generate_encoding_aes_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(key) == 43
        MessageCrypto(TOKEN, key, CORP)


def test_previous_key_opens_old_messages_and_the_reply_uses_it() -> None:
    body, signature = _request(OLD)
    receiver = MessageCrypto(TOKEN, NEW, CORP, previous_keys=[OLD])
    message = receiver.decrypt(body, signature, "1409659813", "nonce1")
    assert message.key_index == 1
    reply = receiver.encrypt_reply("answer", "n2", reply_to=message)
    # Only the old key can read the answer: the sender has not switched yet.
    assert MessageCrypto(TOKEN, OLD, CORP).decrypt(reply.render(), reply.msg_signature, reply.timestamp,
                                                    "n2").text == "answer"
    with pytest.raises(Exception):
        MessageCrypto(TOKEN, NEW, CORP).decrypt(reply.render(), reply.msg_signature, reply.timestamp, "n2")


def test_current_key_is_tried_first() -> None:
    body, signature = _request(NEW)
    message = MessageCrypto(TOKEN, NEW, CORP, previous_keys=[OLD]).decrypt(body, signature, "1409659813", "nonce1")
    assert message.key_index == 0


def test_without_the_previous_key_the_error_says_what_to_check() -> None:
    body, signature = _request(OLD)
    with pytest.raises(Exception) as info:
        MessageCrypto(TOKEN, NEW, CORP).decrypt(body, signature, "1409659813", "nonce1")
    assert info.value.code in (-40007, -40008)  # type: ignore[attr-defined]
    assert "EncodingAESKey" in str(info.value)


def test_key_ring_object_and_previous_keys_compose() -> None:
    ring = KeyRing(NEW, [OLD])
    assert len(MessageCrypto(TOKEN, ring, CORP).keys) == 2
    assert len(MessageCrypto(TOKEN, ring, CORP, previous_keys=[generate_encoding_aes_key()]).keys) == 3
    assert "hidden" in repr(ring) and OLD not in repr(ring)
    with pytest.raises(InvalidKeyError):
        MessageCrypto(TOKEN, NEW, CORP).encrypt("x", "n", key_index=5)


def test_a_lone_previous_key_string_is_one_key() -> None:
    assert len(MessageCrypto(TOKEN, NEW, CORP, previous_keys=OLD).keys) == 2  # type: ignore[arg-type]


def test_robot_empty_receive_id_is_matched_exactly() -> None:
    body, signature = _request(OLD, receive_id=CORP)
    robot = MessageCrypto(TOKEN, OLD, "")
    with pytest.raises(ReceiveIdError) as info:
        robot.decrypt(body, signature, "1409659813", "nonce1")
    assert info.value.code == -40005
    assert str(info.value).startswith(f"receive_id mismatch: the message is for {CORP}, this key is configured for ''")
    assert info.value.received == CORP


def test_set_of_receive_ids_accepts_each_and_replies_with_the_requests_id() -> None:
    suite = MessageCrypto(TOKEN, OLD, {"ww_corp_a", "suite_b"})
    for receive_id in ("ww_corp_a", "suite_b"):
        body, signature = _request(OLD, receive_id=receive_id)
        message = suite.decrypt(body, signature, "1409659813", "nonce1")
        assert message.receive_id == receive_id
        reply = suite.encrypt_reply("ok", "n", reply_to=message)
        assert MessageCrypto(TOKEN, OLD, receive_id).decrypt(reply.render(), reply.msg_signature,
                                                              reply.timestamp, "n").text == "ok"
    body, signature = _request(OLD, receive_id="other")
    with pytest.raises(ReceiveIdError, match="one of"):
        suite.decrypt(body, signature, "1409659813", "nonce1")
    with pytest.raises(EncryptError, match="reply_to"):
        suite.encrypt("ok", "n")


def test_skipping_the_check_must_be_explicit() -> None:
    body, signature = _request(OLD, receive_id="anything")
    message = MessageCrypto(TOKEN, OLD, ReceiveIdPolicy.any()).decrypt(body, signature, "1409659813", "nonce1")
    assert message.receive_id == "anything"
