"""Input coercion and the strict base64 used for the Encrypt value.

Every public entry point accepts ``str`` or ``bytes``; these helpers turn either into
the form the protocol needs and turn every decoding failure into the library's error
with the official code, so no ``UnicodeError`` or ``binascii.Error`` reaches a caller.
"""

from __future__ import annotations

import binascii
import re
import sys

from .errors import Base64DecodeError, WXCallbackError

__all__ = ["b64encode", "strict_b64decode", "text_value", "utf8_bytes"]

if sys.version_info >= (3, 11):

    def _a2b_strict(data: str | bytes) -> bytes:
        return binascii.a2b_base64(data, strict_mode=True)

else:  # pragma: no cover - 3.10 has no strict_mode: the same grammar, checked by regex
    _STRICT_B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")

    def _a2b_strict(data: str | bytes) -> bytes:
        if isinstance(data, str):
            data = data.encode("ascii")
        if _STRICT_B64.fullmatch(data) is None:
            raise binascii.Error("only the standard alphabet and final padding are allowed")
        return binascii.a2b_base64(data)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Value of each base64 character, keyed by str and by byte value (bytes index to ints).
_SIXTETS: dict[object, int] = {**{c: i for i, c in enumerate(_ALPHABET)}, **{ord(c): i for i, c in enumerate(_ALPHABET)}}
_PAD = ("=", b"=")


def text_value(value: object, what: str, error: type[WXCallbackError]) -> str:
    """``value`` as text: str as is, bytes as strict UTF-8, ints in decimal (timestamps)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise error(f"{what} must be str or bytes, not {type(value).__name__}")


def utf8_bytes(value: object, what: str, error: type[WXCallbackError]) -> bytes:
    """``value`` as UTF-8 bytes; a str holding lone surrogates cannot be encoded."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise error(f"{what} is not encodable as UTF-8 (character {exc.start})") from None
    raise error(f"{what} must be str or bytes, not {type(value).__name__}")


def b64encode(data: bytes) -> str:
    """Standard base64 with padding and no line breaks, as every SDK emits it."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def strict_b64decode(value: str | bytes) -> bytes:
    """Decode canonical standard base64: padded, no whitespace, no URL-safe alphabet.

    WeChat only ever sends this form; the official SDKs disagree on everything else
    (vectors D12–D15), so anything else is refused with -40010.
    """
    try:
        raw = _a2b_strict(value)
    except (binascii.Error, ValueError) as exc:
        raise Base64DecodeError(f"Encrypt is not strict standard base64: {exc}") from None
    # Python 3.11's strict mode lets "=" follow a whole quad ("AAAA===" is 3 bytes); the
    # canonical form of len(raw) bytes has exactly this length.
    if len(value) != (len(raw) + 2) // 3 * 4:
        raise Base64DecodeError("Encrypt is not canonical base64: padding beyond its last quad")
    # a2b_base64 ignores the unused low bits of the last character; a canonical
    # encoding has them at zero, so "QUJ=" and "QUI=" cannot both name one ciphertext.
    if value[-1:] in _PAD:
        two = value[-2:-1] in _PAD
        if _SIXTETS[value[-3 if two else -2]] & (0x0F if two else 0x03):
            raise Base64DecodeError("Encrypt is not canonical base64: non-zero bits before the padding")
    return raw
