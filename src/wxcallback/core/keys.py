"""EncodingAESKey: validation, generation, and the key ring used for rotation.

WeChat lets an admin change the EncodingAESKey; its docs say to keep the previous
key, try it when the current one fails, and encrypt the reply with the key that
decrypted the request (Open Platform "Technical Plan", OA FAQ). ``KeyRing`` holds the
current key first and the previous ones after it, like ``MultiFernet``.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterable, Iterator

from .cipher import FrameCipher
from .encoding import b64encode
from .errors import InvalidKeyError

__all__ = ["EncodingAESKey", "KeyRing", "decode_encoding_aes_key", "generate_encoding_aes_key"]

_KEY_CHARS = re.compile(r"[A-Za-z0-9+/]{43}")


def decode_encoding_aes_key(encoding_aes_key: str | bytes) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey, or InvalidKeyError (-40004).

    The key is ``base64(aes_key)`` without its ``=``. Its 43rd character carries two
    unused bits that the console does not zero (the doc key ends in ``…B2C``), so the
    last character is decoded leniently, exactly as every official SDK does (vector K02).
    """
    if isinstance(encoding_aes_key, (bytes, bytearray)):
        try:
            encoding_aes_key = bytes(encoding_aes_key).decode("ascii")
        except UnicodeDecodeError:
            raise InvalidKeyError("EncodingAESKey must be ASCII base64 characters") from None
    if not isinstance(encoding_aes_key, str):
        raise InvalidKeyError(f"EncodingAESKey must be a str, not {type(encoding_aes_key).__name__}")
    if _KEY_CHARS.fullmatch(encoding_aes_key) is None:
        raise InvalidKeyError(_explain_bad_key(encoding_aes_key))
    return binascii.a2b_base64(encoding_aes_key + "=")


def _explain_bad_key(key: str) -> str:
    base = "EncodingAESKey must be 43 characters of standard base64 (A-Z a-z 0-9 + /)"
    if not key:
        return f"{base}; it is empty"
    if "=" in key:
        return f"{base} without '=' padding; this one contains '='"
    if "-" in key or "_" in key:
        return f"{base}; this one uses the URL-safe alphabet ('-' or '_'), which is a different key"
    if len(key) != 43:
        return f"{base}; this one has {len(key)} characters (copy it again from the console)"
    return f"{base}; this one contains a character outside that alphabet"


def generate_encoding_aes_key() -> str:
    """A fresh EncodingAESKey from the OS CSPRNG (paste it into the console and your config)."""
    return b64encode(secrets.token_bytes(32))[:43]


class EncodingAESKey:
    """One validated EncodingAESKey with its AES cipher. ``str()`` never shows the key."""

    __slots__ = ("aes_key", "cipher", "_text")

    def __init__(self, encoding_aes_key: str | bytes) -> None:
        self.aes_key = decode_encoding_aes_key(encoding_aes_key)
        self._text = encoding_aes_key if isinstance(encoding_aes_key, str) else encoding_aes_key.decode()
        self.cipher = FrameCipher(self.aes_key)

    @property
    def text(self) -> str:
        """The 43-character EncodingAESKey as configured."""
        return self._text

    def __repr__(self) -> str:
        return "EncodingAESKey(<hidden>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncodingAESKey) and secrets.compare_digest(self.aes_key, other.aes_key)

    def __hash__(self) -> int:
        return hash(self.aes_key)


class KeyRing:
    """The current EncodingAESKey followed by previous ones; index 0 is the current key."""

    __slots__ = ("_keys",)

    def __init__(
        self,
        current: str | bytes | EncodingAESKey,
        previous: Iterable[str | bytes | EncodingAESKey] = (),
    ) -> None:
        if isinstance(previous, (str, bytes)):
            # A lone string would otherwise be iterated character by character.
            previous = (previous,)
        keys = [k if isinstance(k, EncodingAESKey) else EncodingAESKey(k) for k in (current, *previous)]
        self._keys: tuple[EncodingAESKey, ...] = tuple(keys)

    @property
    def current(self) -> EncodingAESKey:
        return self._keys[0]

    def __getitem__(self, index: int) -> EncodingAESKey:
        if not 0 <= index < len(self._keys):
            raise InvalidKeyError(f"key index {index} is not in this key ring of {len(self._keys)}")
        return self._keys[index]

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[EncodingAESKey]:
        return iter(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self._keys)} keys hidden>)"
