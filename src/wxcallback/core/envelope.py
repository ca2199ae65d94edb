"""Envelopes: the XML or JSON wrapper that carries the ciphertext in and out.

Inbound, only the Encrypt value matters for crypto (the other fields vary by
platform and are not authenticated). It must occur exactly once, as a direct child
of the root / a top-level key, and be a string; it is taken verbatim, never trimmed:
the signature covers the exact text, so whitespace around it fails the signature
(-40001), as in every official SDK (vector D36).

Outbound, three shapes:

- XML, byte-identical to the official Python SDKs and wechatpy::

      <xml>\\n<Encrypt><![CDATA[…]]></Encrypt>\\n<MsgSignature><![CDATA[…]]></MsgSignature>\\n
      <TimeStamp>…</TimeStamp>\\n<Nonce><![CDATA[…]]></Nonce>\\n</xml>

- JSON (WeCom smart robot and the official JSON SDKs):
  ``{"encrypt","msgsignature","timestamp","nonce"}``
- OA JSON (Official Account / mini program JSON data format):
  ``{"Encrypt","MsgSignature","TimeStamp","Nonce"}``
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any

from .errors import ParseError, RenderError
from .safexml import FLAT_CHILD, new_parser, run_parser

__all__ = ["EnvelopeFormat", "check_reply_values", "extract_encrypt", "render_envelope"]


class EnvelopeFormat(str, Enum):
    """The envelope a channel receives and answers with."""

    XML = "xml"
    JSON = "json"
    OA_JSON = "oa-json"

    @classmethod
    def parse(cls, value: EnvelopeFormat | str) -> EnvelopeFormat:
        try:
            return cls(value)
        except ValueError:
            raise ParseError(f"unknown envelope format {value!r}; use 'xml', 'json' or 'oa-json'") from None


class _Bad(Exception):
    pass


class _EncryptScan:
    """expat handlers that pick the one Encrypt child of the root <xml>."""

    __slots__ = ("depth", "inside", "parts", "found")

    def __init__(self) -> None:
        self.depth = 0
        self.inside = False
        self.found = False
        self.parts: list[str] = []

    def start(self, name: str, _attributes: object) -> None:
        self.depth += 1
        if name == "Encrypt":
            if self.depth != 2:
                raise _Bad("Encrypt must be a direct child of the root element")
            if self.found:
                raise _Bad("the body has more than one Encrypt element")
            self.found = True
            self.inside = True
        elif self.inside:
            raise _Bad("Encrypt must hold text, not elements")
        elif self.depth == 1 and name != "xml":
            raise _Bad(f"the root element must be <xml>, not <{name}>")

    def end(self, name: str) -> None:
        self.depth -= 1
        if self.inside and self.depth == 1:
            self.inside = False

    def data(self, text: str) -> None:
        if self.inside:
            self.parts.append(text)


# Fast path for the flat shape WeChat sends: <xml> holding only <Name>text</Name> or
# <Name><![CDATA[text]]></Name> children. The Encrypt element is cut out of the raw
# bytes with bytes.find and its value must be base64 characters only (bytes.translate);
# just the short remainder is decoded and matched by a regex, which must find a flat
# envelope with a child boundary exactly where Encrypt stood. Anything outside this
# subset (declaration, BOM, attributes, entities, comments, nesting, control characters,
# a non-base64 Encrypt) goes to expat, so both paths
# accept the same documents and read the same value (a property test checks this).
# The siblings of Encrypt follow the flat-document rule of safexml (one definition of
# which characters the fast paths take).
_CHILDREN = rf"(?:{FLAT_CHILD})*[ \t\r\n]*"
_BEFORE_ENCRYPT = re.compile(rf"[ \t\r\n]*<xml>{_CHILDREN}")
_AFTER_ENCRYPT = re.compile(rf"{_CHILDREN}</xml>[ \t\r\n]*")
_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# What stood before and after Encrypt in envelopes already found flat. A channel's
# envelopes differ only in Encrypt (the same ToUserName, the same AgentID), so the regexes
# run once per shape, not per request; a set lookup compares the bytes whole. Bounded: at
# most 256 shapes of at most 512 bytes (a platform's are ~50-100), cleared when full, so odd
# shapes cost only the regexes again and a body cannot make the set grow past ~200 KB.
_FLAT_AROUND: set[tuple[bytes, bytes]] = set()
_FLAT_AROUND_KEPT = 256
_FLAT_AROUND_BYTES = 512


def _extract_xml_fast(body: bytes) -> str | None:
    """The Encrypt value of a flat envelope, or None to let expat decide."""
    start = body.find(b"<Encrypt>")
    if start < 0:
        return None
    inner = start + 9
    if body.startswith(b"<![CDATA[", inner):
        stop = body.find(b"]]></Encrypt>", inner + 9)
        if stop < 0:
            return None
        value = body[inner + 9 : stop]
        end = stop + 13
    else:
        stop = body.find(b"</Encrypt>", inner)
        if stop < 0:
            return None
        value = body[inner:stop]
        end = stop + 10
    if value.translate(None, _BASE64_CHARS):
        return None
    after = body[end:]
    if b"<Encrypt>" in after:
        return None
    around = (body[:start], after)
    if around not in _FLAT_AROUND:
        try:
            head, tail = around[0].decode(), after.decode()
        except UnicodeDecodeError:
            return None
        if _BEFORE_ENCRYPT.fullmatch(head) is None or _AFTER_ENCRYPT.fullmatch(tail) is None:
            return None
        if len(start_and_end := around[0] + after) <= _FLAT_AROUND_BYTES and start_and_end:
            if len(_FLAT_AROUND) >= _FLAT_AROUND_KEPT:
                _FLAT_AROUND.clear()
            _FLAT_AROUND.add(around)
    return value.decode("ascii")


def _extract_xml(body: str | bytes) -> str:
    if isinstance(body, str):
        try:
            data = body.encode()
        except UnicodeEncodeError:
            data = b""  # lone surrogates: expat words the error
    else:
        data = bytes(body)
    value = _extract_xml_fast(data) if data else None
    return value if value is not None else _extract_xml_expat(body)


def _extract_xml_expat(body: str | bytes) -> str:
    scan = _EncryptScan()
    parser = new_parser()
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.CharacterDataHandler = scan.data
    try:
        run_parser(parser, body)
    except _Bad as exc:
        raise ParseError(f"body: {exc}") from None
    if not scan.found:
        raise ParseError("body has no Encrypt element: is this channel in plaintext mode?")
    return "".join(scan.parts)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen and key in ("encrypt", "Encrypt"):
                raise _Bad(f"the body has more than one {key!r} key")
            seen.add(key)
    return result


def _extract_json(body: str | bytes) -> str:
    if isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"body is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = body
    # A UTF-8 BOM is tolerated (RFC 8259 allows ignoring it; vector D43 keeps it).
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        document = json.loads(text, object_pairs_hook=_unique_pairs)
    except _Bad as exc:
        raise ParseError(f"body: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ParseError(f"body must be a JSON object, not {type(document).__name__}")
    has_lower, has_upper = "encrypt" in document, "Encrypt" in document
    if has_lower and has_upper:
        raise ParseError("body has both 'encrypt' and 'Encrypt' keys")
    if not (has_lower or has_upper):
        raise ParseError("body has no top-level 'encrypt' key")
    value = document["encrypt" if has_lower else "Encrypt"]
    if not isinstance(value, str):
        raise ParseError(f"'encrypt' must be a JSON string, not {type(value).__name__}")
    return value


def extract_encrypt(body: str | bytes, envelope: EnvelopeFormat) -> str:
    """The Encrypt value of a callback body; ParseError (-40002) when there is not exactly one."""
    if not isinstance(body, (str, bytes, bytearray)):
        raise ParseError(f"body must be str or bytes, not {type(body).__name__}")
    if envelope is EnvelopeFormat.XML:
        return _extract_xml(body)
    return _extract_json(body)


def _cdata(value: str) -> str:
    # "]]>" would end the section early; split it across two sections.
    return value.replace("]]>", "]]]]><![CDATA[>")


def _is_xml_text(value: str) -> bool:
    if value.isascii() and value.isprintable():
        return True  # the usual nonce: digits or letters
    return all(ch in "\t\n\r" or 0x20 <= ord(ch) <= 0xD7FF or 0xE000 <= ord(ch) <= 0xFFFD
               or 0x10000 <= ord(ch) <= 0x10FFFF for ch in value)


def check_reply_values(envelope: EnvelopeFormat, timestamp: str, nonce: str) -> None:
    """RenderError (-40011) now, rather than at render time, for values the envelope cannot carry."""
    if not timestamp.isdigit() or not timestamp.isascii():
        raise RenderError(f"timestamp must be decimal digits, not {timestamp!r}")
    if envelope is EnvelopeFormat.XML and not _is_xml_text(nonce):
        raise RenderError("nonce holds characters that XML cannot carry")


def render_envelope(
    envelope: EnvelopeFormat,
    encrypt: str,
    signature: str,
    timestamp: str,
    nonce: str,
    *,
    json_timestamp: type[int] | type[str] = str,
) -> str:
    """The reply envelope text; RenderError (-40011) when a value cannot be represented."""
    check_reply_values(envelope, timestamp, nonce)
    return render_checked(envelope, encrypt, signature, timestamp, nonce, json_timestamp)


def render_checked(
    envelope: EnvelopeFormat, encrypt: str, signature: str, timestamp: str, nonce: str,
    json_timestamp: type[int] | type[str],
) -> str:
    """``render_envelope`` for values ``check_reply_values`` has already passed."""
    if envelope is EnvelopeFormat.XML:
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n"
            f"<Nonce><![CDATA[{_cdata(nonce)}]]></Nonce>\n</xml>"
        )
    stamp: int | str = int(timestamp) if json_timestamp is int else timestamp
    if envelope is EnvelopeFormat.JSON:
        document = {"encrypt": encrypt, "msgsignature": signature, "timestamp": stamp, "nonce": nonce}
    else:
        document = {"Encrypt": encrypt, "MsgSignature": signature, "TimeStamp": stamp, "Nonce": nonce}
    try:
        return json.dumps(document, separators=(",", ":"))
    except (ValueError, UnicodeError) as exc:  # pragma: no cover - str values always serialise
        raise RenderError(f"reply envelope cannot be rendered as JSON: {exc}") from None
