"""Bad input of every kind ends as the library's error with the official code."""

from __future__ import annotations

import base64
import itertools
import os

import pytest

from wxcallback import (
    DecryptError,
    ErrorCode,
    IllegalBufferError,
    MessageCrypto,
    ParseError,
    RenderError,
    WXCallbackError,
    decrypt_media,
    sign,
)
from wxcallback.core.cipher import FrameCipher
from wxcallback.core.encoding import strict_b64decode
from wxcallback.core.errors import Base64DecodeError, ComputeSignatureError, error_for_code
from wxcallback.core.padding import pad

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"


@pytest.fixture
def crypto() -> MessageCrypto:
    return MessageCrypto(TOKEN, KEY, CORP)


def _signed_body(crypto: MessageCrypto, inner: str, ts: str = "1", nonce: str = "2") -> tuple[str, str]:
    return inner, sign(TOKEN, ts, nonce, _encrypt_of(inner))


def _encrypt_of(body: str) -> str:
    return body.split("<Encrypt>")[1].split("</Encrypt>")[0] if "<Encrypt>" in body else ""


def test_every_code_has_its_class_and_names() -> None:
    for code in range(-40011, -40000):
        cls = error_for_code(code)
        assert cls.code == code
        assert issubclass(cls, WXCallbackError)
    assert ErrorCode.PARSE_JSON_ERROR is ErrorCode.PARSE_XML_ERROR
    assert ErrorCode(-40005).name == "VALIDATE_RECEIVE_ID_ERROR"
    assert error_for_code(12345) is WXCallbackError


@pytest.mark.parametrize(
    "payload",
    [
        '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
        '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>',
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd"><xml><Encrypt>QUJD</Encrypt></xml>',
        "<xml><Encrypt>&undefined;</Encrypt></xml>",
    ],
)
def test_dtds_and_entities_are_refused(crypto: MessageCrypto, payload: str) -> None:
    with pytest.raises(ParseError) as info:
        crypto.decrypt(payload, "sig", "1", "2")
    assert info.value.code == -40002


@pytest.mark.parametrize(
    "body, reason",
    [
        ("<xml><Encrypt>QUJD</Encrypt><Encrypt>QUJD</Encrypt></xml>", "more than one"),
        ("<xml><Encrypt><b>QUJD</b></Encrypt></xml>", "text, not elements"),
        ("<root><Encrypt>QUJD</Encrypt></root>", "root element"),
        ("<xml><a><Encrypt>QUJD</Encrypt></a></xml>", "direct child"),
        ("<xml><ToUserName>x</ToUserName></xml>", "no Encrypt"),
        ("", "well-formed"),
        ("<xml>", "well-formed"),
        ("<?xml version='1.0' encoding='GBK'?><xml><Encrypt>QUJD</Encrypt></xml>", "XML"),
    ],
)
def test_envelope_shape_is_strict(crypto: MessageCrypto, body: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        crypto.decrypt(body, "sig", "1", "2")


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", "[1]", '{"encrypt": "a", "encrypt": "b"}', '{"encrypt": "a", "Encrypt": "b"}',
     '{"encrypt": null}', "[" * 100_000, '{"data": {"encrypt": "QUJD"}}', "not json"],
)
def test_json_envelope_is_strict(body: str | bytes) -> None:
    with pytest.raises(ParseError):
        MessageCrypto(TOKEN, KEY, "", envelope="json").decrypt(body, "sig", "1", "2")


def test_uppercase_json_key_is_read_for_the_oa_format() -> None:
    sender = MessageCrypto(TOKEN, KEY, CORP, envelope="oa-json")
    reply = sender.encrypt_reply("hi", "n", timestamp="5")
    assert sender.decrypt(reply.render(), reply.msg_signature, "5", "n").text == "hi"


@pytest.mark.parametrize(
    "value",
    ["QUJD\n", "QUI", "QU I=", "QUJ=", "QUI==", "QUI=QUI=", "=QUI", "QUJD-_==", "ＡＢＣＤ",
     # padding after a whole quad, which 3.11's strict mode lets through (found by the fuzzer)
     "AAAA===", "QUJD=", "QUJD==", "QUJDQUI====", b"AAAA==="],
)
def test_strict_base64(value: str | bytes) -> None:
    with pytest.raises(Base64DecodeError) as info:
        strict_b64decode(value)
    assert info.value.code == -40010


def test_strict_base64_takes_only_canonical_text_over_every_short_string() -> None:
    # Every string of up to 8 characters over a data letter with zero low bits (A), one with
    # bits set (Q), "/" and "=": either it is the canonical encoding of what it decodes to, or
    # it is refused with -40010; nothing else escapes (3.11's strict mode alone lets "AAAA==="
    # through).
    accepted = 0
    for length in range(1, 9):
        for letters in itertools.product("AQ/=", repeat=length):
            text = "".join(letters)
            for value in (text, text.encode()):
                try:
                    raw = strict_b64decode(value)
                except Base64DecodeError as exc:
                    assert exc.code == -40010
                    continue
                assert base64.b64encode(raw).decode() == text
                accepted += 1
    # the canonical ones, of 4 and 8 characters: any data letters; or one "=" after a letter
    # with its low 2 bits zero (A, Q); or two "=" after one with its low 4 bits zero (A, Q)
    canonical = sum(3 ** n + 2 * 3 ** (n - 2) + 2 * 3 ** (n - 3) for n in (4, 8))
    assert accepted == 2 * canonical  # as str and as bytes


def test_strict_base64_accepts_canonical_forms() -> None:
    for raw in (b"", b"a", b"ab", b"abc", os.urandom(100)):
        assert strict_b64decode(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize("tail", [bytes([0]), bytes([33]), bytes([2, 3]), bytes([5]) * 4 + bytes([4])])
def test_every_padding_byte_is_checked(tail: bytes) -> None:
    cipher = FrameCipher(os.urandom(32))
    block = os.urandom(32 - len(tail)) + tail
    with pytest.raises(IllegalBufferError) as info:
        cipher.open(cipher.encrypt_block(block))
    assert info.value.code == -40008


def test_ciphertext_that_is_not_whole_blocks(crypto: MessageCrypto) -> None:
    encrypt = base64.b64encode(os.urandom(40)).decode()
    with pytest.raises(DecryptError):
        crypto.decrypt_ciphertext(encrypt, sign(TOKEN, "1", "2", encrypt), "1", "2")


def test_reply_rendering_refuses_what_xml_cannot_carry(crypto: MessageCrypto) -> None:
    with pytest.raises(RenderError):
        crypto.encrypt("hi", "nonce\x00")
    with pytest.raises(RenderError):
        crypto.encrypt("hi", "n", timestamp="12a")
    reply = crypto.encrypt_reply("hi", "a]]>b", timestamp="1")
    envelope = reply.render()
    assert "]]]]><![CDATA[>" in envelope
    assert crypto.decrypt(envelope, reply.msg_signature, "1", "a]]>b").text == "hi"


def test_unencodable_inputs(crypto: MessageCrypto) -> None:
    with pytest.raises(WXCallbackError) as info:
        crypto.encrypt("\ud800", "n")
    assert info.value.code == ErrorCode.ENCRYPT_AES_ERROR
    with pytest.raises(ComputeSignatureError):
        sign("\ud800", "1", "2")
    with pytest.raises(ComputeSignatureError):
        sign("a", digest="shake_128")
    with pytest.raises(WXCallbackError):
        crypto.decrypt(b"<xml><Encrypt>QUJD</Encrypt></xml>", b"\xff", b"\xfe", b"1")


def test_random_prefix_must_be_16_bytes(crypto: MessageCrypto) -> None:
    with pytest.raises(WXCallbackError) as info:
        crypto.encrypt("hi", "n", random=b"short")
    assert info.value.code == ErrorCode.ENCRYPT_AES_ERROR


def test_repr_and_errors_never_show_secrets(crypto: MessageCrypto) -> None:
    assert TOKEN not in repr(crypto) and KEY not in repr(crypto)
    with pytest.raises(WXCallbackError) as info:
        crypto.decrypt("<xml><Encrypt>QUJD</Encrypt></xml>", "bad", "1", "2")
    assert TOKEN not in str(info.value) and KEY not in str(info.value)


def test_robot_media_decrypts_with_the_callback_key() -> None:
    # Fixed bytes, not random: under a wrong key the padding is noise, which about one time in
    # 256 happens to be valid PKCS#7; these bytes are known to decrypt to invalid padding.
    data = bytes(range(256)) * 3 + b"wxcallback media" * 14
    key_bytes = base64.b64decode(KEY + "=")
    encrypted = FrameCipher(key_bytes).encrypt_block(pad(data))
    assert decrypt_media(encrypted, KEY) == data
    assert decrypt_media(encrypted, key_bytes) == data
    assert decrypt_media(encrypted, base64.b64encode(key_bytes).decode()) == data  # per-URL aeskey form
    with pytest.raises(DecryptError):
        decrypt_media(encrypted[:-1], KEY)
    with pytest.raises(IllegalBufferError):
        decrypt_media(encrypted, "B" * 43)
    with pytest.raises(WXCallbackError) as info:
        decrypt_media(encrypted, "short")
    assert info.value.code == -40004
