"""How a target reads structured values out of one flat fuzz input.

An input is a few single bytes (modes and choices), then length-prefixed chunks (one length byte, then that many
bytes), then the rest. Reading past the end yields zeros and empty chunks, so every
byte string is a valid input; ``pack`` writes the same layout for the seed corpus.
"""

from __future__ import annotations

__all__ = ["Reader", "pack", "text_of"]


class Reader:
    """Consume one fuzz input field by field."""

    __slots__ = ("_data", "_at")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def byte(self) -> int:
        if self._at >= len(self._data):
            return 0
        value = self._data[self._at]
        self._at += 1
        return value

    def chunk(self) -> bytes:
        size = self.byte()
        value = self._data[self._at : self._at + size]
        self._at += len(value)
        return value

    def rest(self) -> bytes:
        value = self._data[self._at :]
        self._at = len(self._data)
        return value


def pack(*fields: int | bytes, rest: bytes = b"") -> bytes:
    """The input a Reader reads back field by field: an int is one byte(), bytes one chunk()."""
    out = bytearray()
    for field in fields:
        if isinstance(field, int):
            out.append(field)
            continue
        if len(field) > 255:
            raise ValueError("a chunk holds at most 255 bytes")
        out.append(len(field))
        out += field
    return bytes(out + rest)


def text_of(raw: bytes, how: int) -> str | bytes:
    """``raw`` as the caller of a public API might hand it over.

    Bytes as they are, or text decoded four ways: UTF-8 with replacement (what a lenient
    web framework gives), with surrogateescape (lone surrogates, which cannot be encoded
    back), Latin-1 (any code point below 256) and UTF-16 (astral and BMP characters).
    """
    how %= 5
    if how == 0:
        return raw
    if how == 1:
        return raw.decode("utf-8", "replace")
    if how == 2:
        return raw.decode("utf-8", "surrogateescape")
    if how == 3:
        return raw.decode("latin-1")
    return raw[: len(raw) & ~1].decode("utf-16-le", "surrogatepass")
