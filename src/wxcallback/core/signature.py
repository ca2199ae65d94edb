"""Signatures: hex digest of the string-sorted concatenation of the values.

- ``msg_signature`` (4 values): token, timestamp, nonce and the Encrypt value (or the
  URL-decoded echostr). Always SHA-1 on WeChat and WeCom.
- ``signature`` (3 values, Official Account plaintext mode and URL check): token,
  timestamp, nonce. Third-party gateways such as Huawei Cloud AICC's WeChat channel use
  the same construction with a configurable digest, hence ``digest``.

The sort is an ordinary string sort ("1714…" < "4864…", vectors S10–S12); Python's
code-point order equals UTF-8 byte order, which is what the SHA-1 covers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from .encoding import text_value
from .errors import ComputeSignatureError

__all__ = ["DEFAULT_DIGEST", "check_signature", "resolve_digest", "sign"]

DEFAULT_DIGEST = "sha1"

_Hasher = Callable[[bytes], Any]
_SUPPORTED = frozenset(
    {"sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384",
     "sha3_512", "blake2b", "blake2s", "md5"}
)
_HASHERS: dict[str, _Hasher] = {}


def resolve_digest(digest: str) -> _Hasher:
    """The hashlib constructor for ``digest`` (e.g. "sha1", "sha256", "SHA-256")."""
    if not isinstance(digest, str):
        raise ComputeSignatureError(f"digest must be a name such as 'sha1', not {type(digest).__name__}")
    name = digest.lower().replace("-", "")
    name = {"sha3224": "sha3_224", "sha3256": "sha3_256", "sha3384": "sha3_384", "sha3512": "sha3_512"}.get(
        name, name
    )
    hasher = _HASHERS.get(name)
    if hasher is None:
        if name not in _SUPPORTED:
            raise ComputeSignatureError(
                f"digest {digest!r} is not supported; use one of {', '.join(sorted(_SUPPORTED))}"
            )
        hasher = getattr(hashlib, name)
        _HASHERS[name] = hasher
    return hasher


def _joined(values: tuple[object, ...]) -> bytes:
    texts = [text_value(v, "a signature input", ComputeSignatureError) for v in values]
    texts.sort()
    try:
        return "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        raise ComputeSignatureError("a signature input is not encodable as UTF-8") from None


def sign(*values: str | bytes | int, digest: str = DEFAULT_DIGEST) -> str:
    """Lowercase hex digest of the sorted concatenation of ``values``.

    ``sign(token, timestamp, nonce)`` is the Official Account ``signature``;
    ``sign(token, timestamp, nonce, encrypt)`` is ``msg_signature``.
    """
    return str(resolve_digest(digest)(_joined(values)).hexdigest())


def check_signature(signature: str | bytes, *values: str | bytes | int, digest: str = DEFAULT_DIGEST) -> bool:
    """Whether ``signature`` equals ``sign(*values)``: constant-time and case-sensitive.

    Upper-case hex is refused, as in every official SDK (vector D02).
    """
    expected = sign(*values, digest=digest).encode("ascii")
    if isinstance(signature, str):
        if not signature.isascii():
            return False
        given = signature.encode("ascii")
    elif isinstance(signature, (bytes, bytearray)):
        given = bytes(signature)
    else:
        return False
    return hmac.compare_digest(given, expected)
