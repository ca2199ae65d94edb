"""Signatures: hex digest of the string-sorted concatenation of the values.

- ``msg_signature`` (4 values): token, timestamp, nonce and the Encrypt value (or the
  URL-decoded echostr). Always SHA-1 on WeChat and WeCom.
- ``signature`` (3 values, Official Account plaintext mode and URL check): token,
  timestamp, nonce. Third-party gateways such as Huawei Cloud AICC's WeChat channel use
  the same construction with a configurable digest, hence ``digest``.

``Signer`` holds the Token (and the digest) and needs no EncodingAESKey: it is all an
Official Account in plaintext mode, or a signature-only gateway, ever checks.
MessageCrypto builds on it.

The sort is an ordinary string sort ("1714…" < "4864…", vectors S10–S12); Python's
code-point order equals UTF-8 byte order, which is what the SHA-1 covers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

from .encoding import text_value
from .errors import ComputeSignatureError, SignatureError

__all__ = [
    "DEFAULT_DIGEST",
    "Signer",
    "check_signature",
    "resolve_digest",
    "sign",
    "signature_hex",
    "signatures_match",
]

DEFAULT_DIGEST = "sha1"

_Hasher = Callable[[bytes], Any]
_SUPPORTED = frozenset(
    {"sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384",
     "sha3_512", "blake2b", "blake2s", "md5"}
)
_HASHERS: dict[str, _Hasher] = {}


def resolve_digest(digest: str) -> _Hasher:
    """The hashlib constructor for ``digest`` (e.g. "sha1", "sha256", "SHA-256")."""
    cached = _HASHERS.get(digest)
    if cached is not None:
        return cached
    if not isinstance(digest, str):
        raise ComputeSignatureError(f"digest must be a name such as 'sha1', not {type(digest).__name__}")
    name = digest.lower().replace("-", "")
    name = {"sha3224": "sha3_224", "sha3256": "sha3_256", "sha3384": "sha3_384", "sha3512": "sha3_512"}.get(
        name, name
    )
    if name not in _SUPPORTED:
        raise ComputeSignatureError(
            f"digest {digest!r} is not supported; use one of {', '.join(sorted(_SUPPORTED))}"
        )
    hasher: _Hasher = getattr(hashlib, name)
    _HASHERS[digest] = hasher
    return hasher


def signature_hex(hasher: _Hasher, values: Sequence[object]) -> str:
    """Hex digest of the sorted concatenation of ``values`` (str, UTF-8 bytes or int)."""
    try:
        joined = "".join(sorted(values)).encode()  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        texts = [text_value(v, "a signature input", ComputeSignatureError) for v in values]
        texts.sort()
        try:
            joined = "".join(texts).encode()
        except UnicodeEncodeError:
            raise ComputeSignatureError("a signature input is not encodable as UTF-8") from None
    return str(hasher(joined).hexdigest())


def signatures_match(given: object, expected: str) -> bool:
    """Constant-time, case-sensitive comparison of a received signature with ``expected``."""
    if isinstance(given, str):
        # compare_digest takes str only when it is ASCII; a non-ASCII signature is wrong anyway.
        return given.isascii() and hmac.compare_digest(given, expected)
    if isinstance(given, (bytes, bytearray)):
        return hmac.compare_digest(bytes(given), expected.encode("ascii"))
    return False


def sign(*values: str | bytes | int, digest: str = DEFAULT_DIGEST) -> str:
    """Lowercase hex digest of the sorted concatenation of ``values``.

    ``sign(token, timestamp, nonce)`` is the Official Account ``signature``;
    ``sign(token, timestamp, nonce, encrypt)`` is ``msg_signature``.
    """
    return signature_hex(resolve_digest(digest), values)


def check_signature(signature: str | bytes, *values: str | bytes | int, digest: str = DEFAULT_DIGEST) -> bool:
    """Whether ``signature`` equals ``sign(*values)``: constant-time and case-sensitive.

    Upper-case hex is refused, as in every official SDK (vector D02).
    """
    return signatures_match(signature, signature_hex(resolve_digest(digest), values))


class Signer:
    """The signatures of one Token: ``signature`` (3 values) and ``msg_signature`` (4 values).

    No EncodingAESKey is involved: this is all an Official Account in plaintext mode, or a
    signature-only gateway, checks. ``is_valid`` answers with a bool; ``verify_signature``
    and ``verify_msg_signature`` raise SignatureError (-40001) saying what to check.

    >>> signer = Signer("QDG6eK")
    >>> signer.is_valid(signer.sign("1409659589", "263014780"), "1409659589", "263014780")
    True
    """

    __slots__ = ("token", "digest", "_hasher")

    def __init__(self, token: str, *, digest: str = DEFAULT_DIGEST) -> None:
        self.token = text_value(token, "token", ComputeSignatureError)
        self._hasher = resolve_digest(digest)
        self.digest = digest

    def __repr__(self) -> str:
        return f"Signer(token=<hidden>, digest={self.digest!r})"

    def sign(self, timestamp: str | int, nonce: str, encrypt: str | None = None) -> str:
        """``signature`` (3 values) or, with ``encrypt``, ``msg_signature`` (4 values)."""
        values = (self.token, timestamp, nonce) if encrypt is None else (self.token, timestamp, nonce, encrypt)
        return signature_hex(self._hasher, values)

    def is_valid(self, signature: object, timestamp: str | bytes, nonce: str | bytes,
                 encrypt: str | None = None) -> bool:
        """Whether ``signature`` is this Token's signature of the values (constant-time)."""
        values = (self.token, timestamp, nonce) if encrypt is None else (self.token, timestamp, nonce, encrypt)
        return signatures_match(signature, signature_hex(self._hasher, values))

    def verify_signature(self, signature: str | bytes, timestamp: str | bytes, nonce: str | bytes) -> None:
        """Check the 3-value ``signature`` (Official Account plaintext mode and URL check)."""
        if not self.is_valid(signature, timestamp, nonce):
            raise SignatureError("signature does not match: check the Token")

    def verify_msg_signature(
        self, msg_signature: str | bytes, timestamp: str | bytes, nonce: str | bytes, encrypt: str
    ) -> None:
        """Check ``msg_signature`` over an Encrypt value (or echostr) without decrypting it."""
        if not self.is_valid(msg_signature, timestamp, nonce, encrypt):
            hint = ""
            if " " in encrypt:
                hint = " (the value contains spaces: a '+' was probably form-decoded into ' ')"
            elif "%" in encrypt:
                hint = " (the value contains '%': it was probably not URL-decoded)"
            raise SignatureError(f"msg_signature does not match: check the Token{hint}")
