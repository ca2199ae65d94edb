"""PKCS#7 padding to 32-byte blocks, checked strictly.

The protocol pads to 32 bytes, not the AES block size of 16 (WeCom doc 90968:
"K = 32"), so pad values 17..32 are normal (the doc sample has 30). Generic 16-byte
unpadders reject them; the official SDKs check nothing and accept garbage (vectors
D20–D24). Here every pad byte is checked and the total must be a multiple of 32.
"""

from __future__ import annotations

from .errors import IllegalBufferError

__all__ = ["BLOCK_SIZE", "PADS", "pad", "unpad"]

BLOCK_SIZE = 32
PADS = tuple(bytes((n,)) * n for n in range(BLOCK_SIZE + 1))


def pad(data: bytes) -> bytes:
    """Append 1..32 bytes of value n so the length is a multiple of 32 (32 when aligned)."""
    return data + PADS[BLOCK_SIZE - len(data) % BLOCK_SIZE]


def unpad(block: bytes) -> bytes:
    """Remove strict PKCS#7/32 padding, or raise IllegalBufferError (-40008)."""
    size = len(block)
    if size == 0 or size % BLOCK_SIZE:
        raise IllegalBufferError(
            f"decrypted length {size} is not a multiple of 32: the sender did not pad to 32 bytes "
            "(or the EncodingAESKey is wrong)"
        )
    n = block[-1]
    if not 1 <= n <= BLOCK_SIZE:
        raise IllegalBufferError(
            f"padding byte {n:#04x} is not in 1..32: the EncodingAESKey is probably wrong"
        )
    if not block.endswith(PADS[n]):
        raise IllegalBufferError("padding bytes are not all equal: the EncodingAESKey is probably wrong")
    return block[:-n]
