"""Smart-robot media: files and images downloaded from a callback's URL.

WeCom encrypts them with AES-256-CBC under the callback's EncodingAESKey, IV = key[:16],
padded with PKCS#7 to 32 bytes (doc 100719; the same scheme as the message frame, but
without the frame). In long-connection mode each media URL comes with its own
``aeskey``: pass that instead (as base64 text, with or without its "=", or 32 raw bytes).
"""

from __future__ import annotations

from .cipher import FrameCipher
from .errors import DecryptError, InvalidKeyError
from .keys import EncodingAESKey, decode_encoding_aes_key
from .padding import unpad

__all__ = ["decrypt_media"]


def _aes_key(key: str | bytes | EncodingAESKey) -> bytes:
    if isinstance(key, EncodingAESKey):
        return key.aes_key
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return bytes(key)
    if isinstance(key, str) and len(key) == 44 and key.endswith("=") and not key.endswith("=="):
        key = key[:-1]
    if isinstance(key, (str, bytes, bytearray)):
        return decode_encoding_aes_key(bytes(key) if isinstance(key, bytearray) else key)
    raise InvalidKeyError(f"media key must be an EncodingAESKey or 32 bytes, not {type(key).__name__}")


def decrypt_media(data: bytes, key: str | bytes | EncodingAESKey) -> bytes:
    """The plaintext of an encrypted robot media download.

    -40004 for a bad key, -40007 when ``data`` is not whole AES blocks, -40008 when the
    padding is wrong (almost always: the wrong key, or a truncated download).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecryptError(f"media data must be bytes, not {type(data).__name__}")
    cipher = FrameCipher(_aes_key(key))
    return unpad(cipher.decrypt_block(bytes(data)))
