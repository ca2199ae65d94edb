"""An XML declaration naming an unknown or non-text encoding is bad input: ParseError, nothing else.

Found by the fuzz target ``decrypt``: expat hands encodings it does not know to Python's
codec registry, whose LookupError escaped the parser.
"""

from __future__ import annotations

import pytest

from tests.vectors import load
from wxcallback.core import EnvelopeFormat, MessageCrypto, ParseError, extract_encrypt
from wxcallback.core.safexml import parse_xml


def _declared(encoding: str, body: str = "<xml><Encrypt>QUJD</Encrypt></xml>") -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?>{body}'.encode()


@pytest.mark.parametrize("encoding", ["UTF-6", "ansi", "base64", "rot13", "zlib", "hex", "no-such-codec"])
def test_parse_xml_refuses_an_unusable_declared_encoding(encoding: str) -> None:
    with pytest.raises(ParseError, match="encoding"):
        parse_xml(_declared(encoding))


@pytest.mark.parametrize("encoding", ["UTF-6", "base64"])
def test_extract_encrypt_refuses_an_unusable_declared_encoding(encoding: str) -> None:
    with pytest.raises(ParseError) as caught:
        extract_encrypt(_declared(encoding), EnvelopeFormat.XML)
    assert caught.value.code == -40002


def test_decrypt_of_a_signed_body_with_an_unknown_encoding_is_a_parse_error() -> None:
    vector = next(v for v in load("encrypt.json") if v["format"] == "xml" and v["key_set"] == "doc-sample")
    crypto = MessageCrypto(vector["token"], vector["encoding_aes_key"], vector["receive_id"])
    body = _declared("UTF-6", f"<xml><Encrypt><![CDATA[{vector['ciphertext']}]]></Encrypt></xml>")
    with pytest.raises(ParseError):
        crypto.decrypt(body, vector["signature"], vector["timestamp"], vector["nonce"])


def test_a_known_declared_encoding_still_parses() -> None:
    assert parse_xml(_declared("ISO-8859-1")).find("Encrypt").text == "QUJD"  # type: ignore[union-attr]
