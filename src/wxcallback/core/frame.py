"""The plaintext frame inside the ciphertext.

    random(16) || uint32_be(len(msg)) || msg || receive_id || PKCS#7/32 padding

(WeCom doc 90968 "加解密方案说明"). The 16 random bytes are discarded on decryption;
the receive_id is the CorpID / AppID / SuiteID the message is meant for ("" for a
smart robot).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import IllegalBufferError
from .padding import PADS, pad, unpad

__all__ = ["Frame", "RANDOM_SIZE", "pack_frame", "unpack_frame"]

RANDOM_SIZE = 16
_HEADER = RANDOM_SIZE + 4


class Frame(NamedTuple):
    """A decrypted frame: the random prefix, the message bytes and the receive_id bytes."""

    random: bytes
    message: bytes
    receive_id: bytes


def pack_frame(message: bytes, receive_id: bytes, random: bytes) -> bytes:
    """The padded plaintext block for ``message`` (its length must fit in 32 bits)."""
    return pad(random + len(message).to_bytes(4, "big") + message + receive_id)


def unpack_frame(block: bytes) -> Frame:
    """Split a decrypted, padded block; raise IllegalBufferError (-40008) if malformed."""
    size = len(block)
    n = block[-1] if size else 0
    # The common case in one expression; any doubt goes through unpad() for its message.
    if size and not size % 32 and 1 <= n <= 32 and block.endswith(PADS[n]) and size - n >= _HEADER:
        end = _HEADER + int.from_bytes(block[RANDOM_SIZE:_HEADER], "big")
        if end <= size - n:
            return Frame(block[:RANDOM_SIZE], block[_HEADER:end], block[end : size - n])
    body = unpad(block)
    if len(body) < _HEADER:
        raise IllegalBufferError(
            f"decrypted frame is {len(body)} bytes, shorter than the 20-byte header: "
            "the EncodingAESKey is probably wrong"
        )
    msg_len = int.from_bytes(body[RANDOM_SIZE:_HEADER], "big")
    # Python ints do not wrap, so the bound check cannot overflow (the Go SDK's does: D26).
    if _HEADER + msg_len > len(body):
        raise IllegalBufferError(
            f"length field {msg_len} exceeds the {len(body) - _HEADER} bytes that follow it: "
            "the EncodingAESKey is probably wrong"
        )
    end = _HEADER + msg_len
    return Frame(body[:RANDOM_SIZE], body[_HEADER:end], body[end:])
