"""Property tests: round trips for any text, and no foreign exception for any input."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wxcallback import MessageCrypto, WXCallbackError, decrypt_media, generate_encoding_aes_key, sign
from wxcallback.compat import WXBizJsonMsgCrypt, WXBizMsgCrypt

TOKEN, KEY = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text()  # any code points, surrogates included
ids = st.text(max_size=40)
envelopes = st.sampled_from(["xml", "json", "oa-json"])
inputs = st.one_of(st.text(max_size=200), st.binary(max_size=200))


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@SETTINGS
@given(message=texts, receive_id=ids, envelope=envelopes, nonce=st.text(min_size=1, max_size=20))
def test_round_trip_any_unicode(message: str, receive_id: str, envelope: str, nonce: str) -> None:
    crypto = MessageCrypto(TOKEN, KEY, receive_id, envelope=envelope)
    try:
        reply = crypto.encrypt_reply(message, nonce, timestamp="1700000000")
    except WXCallbackError:
        # Only what UTF-8 or XML cannot carry may be refused.
        assert not (_encodable(message) and _encodable(receive_id) and _encodable(nonce)) or envelope == "xml"
        return
    opened = crypto.decrypt(reply.render(), reply.msg_signature, reply.timestamp, reply.nonce)
    assert opened.text == message
    assert opened.receive_id == receive_id


@SETTINGS
@given(message=st.text(), receive_id=ids)
def test_compat_round_trip(message: str, receive_id: str) -> None:
    for cls in (WXBizMsgCrypt, WXBizJsonMsgCrypt):
        sdk = cls(TOKEN, KEY, receive_id)
        ret, envelope = sdk.EncryptMsg(message, "12345", "1700000000")
        if ret != 0:
            assert not (_encodable(message) and _encodable(receive_id))
            continue
        assert envelope is not None
        crypto = MessageCrypto(TOKEN, KEY, receive_id, envelope="xml" if cls is WXBizMsgCrypt else "json")
        signature = crypto.sign("1700000000", "12345", _encrypt_from(envelope))
        ret, plaintext = sdk.DecryptMsg(envelope, signature, "1700000000", "12345")
        assert ret == 0
        assert plaintext == (message.encode() if cls is WXBizMsgCrypt else message)


def _encrypt_from(envelope: str) -> str:
    if envelope.startswith("<xml>"):
        return envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    import json

    return str(json.loads(envelope)["encrypt"])


@SETTINGS
@given(body=inputs, sig=inputs, ts=inputs, nonce=inputs, envelope=envelopes, key=st.sampled_from([KEY, "x", ""]))
def test_random_inputs_raise_only_library_errors(body: object, sig: object, ts: object, nonce: object,
                                                 envelope: str, key: str) -> None:
    try:
        crypto = MessageCrypto(TOKEN, key, "wx5823bf96d3bd56c7", envelope=envelope)
        crypto.decrypt(body, sig, ts, nonce)  # type: ignore[arg-type]
    except WXCallbackError:
        pass
    for call in (
        lambda c: c.verify_url(sig, ts, nonce, body),
        lambda c: c.verify_plain_url(sig, ts, nonce, body),
        lambda c: c.decrypt_ciphertext(body, sig, ts, nonce),
        lambda c: c.encrypt(body, nonce, timestamp=ts),
    ):
        try:
            call(MessageCrypto(TOKEN, KEY, "", envelope=envelope))
        except WXCallbackError:
            pass
    for cls in (WXBizMsgCrypt, WXBizJsonMsgCrypt):
        sdk = cls(TOKEN, key, "")
        ret, _ = sdk.DecryptMsg(body, sig, ts, nonce)  # type: ignore[arg-type]
        assert ret <= 0
        ret, _ = sdk.VerifyURL(sig, ts, nonce, body)  # type: ignore[arg-type]
        assert ret <= 0


@SETTINGS
@given(message=st.text(max_size=300), data=st.data())
def test_mutated_ciphertext_with_a_valid_signature_never_escapes(message: str, data: st.DataObject) -> None:
    """Tampering that passes the signature (as a Token holder could) reaches every frame check."""
    crypto = MessageCrypto(TOKEN, KEY, "wx5823bf96d3bd56c7")
    raw = bytearray(base64.b64decode(crypto.encrypt_reply(message.encode("utf-8", "replace"), "n").encrypt))
    mutation = data.draw(st.sampled_from(["flip", "truncate", "extend", "replace_tail"]))
    if mutation == "flip":
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] ^= 1 << data.draw(st.integers(0, 7))
    elif mutation == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)):]
    elif mutation == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=64))
    else:
        raw[-16:] = data.draw(st.binary(min_size=16, max_size=16))
    encrypt = base64.b64encode(bytes(raw)).decode()
    try:
        crypto.decrypt_ciphertext(encrypt, sign(TOKEN, "1", "2", encrypt), "1", "2")
    except WXCallbackError as exc:
        assert -40011 <= exc.code <= -40001


@SETTINGS
@given(data=st.binary(max_size=200), key=st.one_of(st.just(KEY), st.binary(max_size=40), st.text(max_size=50)))
def test_media_decrypt_raises_only_library_errors(data: bytes, key: object) -> None:
    try:
        decrypt_media(data, key)  # type: ignore[arg-type]
    except WXCallbackError:
        pass


@SETTINGS
@given(key=st.text(max_size=60))
def test_any_key_string_is_accepted_or_refused_with_40004(key: str) -> None:
    try:
        MessageCrypto(TOKEN, key, "")
    except WXCallbackError as exc:
        assert exc.code == -40004
    else:
        assert len(key) == 43


def test_generated_key_round_trip() -> None:
    crypto = MessageCrypto(TOKEN, generate_encoding_aes_key(), "")
    reply = crypto.encrypt_reply("ok", "n")
    assert crypto.decrypt(reply.render(), reply.msg_signature, reply.timestamp, "n").text == "ok"
