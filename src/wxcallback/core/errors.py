"""Every error wxcallback raises, drawn once: the protocol's, with their official codes, and the rest.

The official SDKs (WXBizMsgCrypt in every language) report failures as integer
return codes -40001 … -40011. Here every failure is one exception class, and a
protocol failure carries its official code, so a caller can catch the base to reject
a request and a leaf to explain it. The classes outside this module are named by the
module that defines them::

    WXCallbackError                     .code: ErrorCode, str(e): what to check
    ├── SignatureError           -40001  signature / msg_signature mismatch
    ├── ParseError               -40002  body is not the expected XML/JSON envelope
    │   ├── QueryError                   the query string is ambiguous (server.http)
    │   └── MessageParseError            plaintext is not a callback message (messages.errors)
    │       └── UnknownPlatformError     not one of Platform's values
    ├── ComputeSignatureError    -40003  signature inputs cannot be hashed, unknown digest
    ├── InvalidKeyError          -40004  EncodingAESKey is not 43 base64 chars
    ├── ReceiveIdError           -40005  frame is for another corp/app/suite
    ├── EncryptError             -40006  reply cannot be encrypted
    ├── DecryptError             -40007  ciphertext cannot be AES-decrypted
    ├── IllegalBufferError       -40008  decrypted frame is malformed
    ├── Base64EncodeError        -40009
    ├── Base64DecodeError        -40010  Encrypt is not strict standard base64
    ├── RenderError              -40011  reply envelope cannot be generated
    │   └── InvalidReplyError            a reply breaks a protocol limit (messages.errors)
    │       └── ReplyNotAllowedError     this reply type may not answer this callback
    │
    │   Outside the protocol (the server, the simulator), code 0: no official code applies
    ├── ConfigError                      the server configuration cannot be used; names the key
    │                                    (server.config; also a ValueError)
    ├── ReplayError                      stale timestamp or reused nonce, answered 403 (server.replay)
    ├── StoreError                       the shared store cannot serve the request (server.stores)
    │   ├── StoreURLError                open_store() was given a URL it cannot use
    │   ├── StoreUnavailableError        the backend failed (SQLite error, Redis unreachable)
    │   └── StreamStateError             a robot stream update breaks the platform's rules
    └── SimulatorError                   a simulator setting is unusable (simulator.errors)

The official codes are kept for the protocol's own failures, so a code in a log line
always means what the official table says.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "Base64DecodeError",
    "Base64EncodeError",
    "ComputeSignatureError",
    "DecryptError",
    "EncryptError",
    "ErrorCode",
    "IllegalBufferError",
    "InvalidKeyError",
    "ParseError",
    "ReceiveIdError",
    "RenderError",
    "SignatureError",
    "WXCallbackError",
    "error_for_code",
]


class ErrorCode(IntEnum):
    """The official return codes (ierror.py of the official SDKs), with their aliases."""

    OK = 0
    VALIDATE_SIGNATURE_ERROR = -40001
    PARSE_XML_ERROR = -40002
    PARSE_JSON_ERROR = -40002
    COMPUTE_SIGNATURE_ERROR = -40003
    ILLEGAL_AES_KEY = -40004
    VALIDATE_RECEIVE_ID_ERROR = -40005
    VALIDATE_CORPID_ERROR = -40005
    VALIDATE_APPID_ERROR = -40005
    ENCRYPT_AES_ERROR = -40006
    DECRYPT_AES_ERROR = -40007
    ILLEGAL_BUFFER = -40008
    ENCODE_BASE64_ERROR = -40009
    DECODE_BASE64_ERROR = -40010
    GEN_RETURN_XML_ERROR = -40011
    GEN_RETURN_JSON_ERROR = -40011


class WXCallbackError(Exception):
    """Base of every error this library raises; ``code`` is the official return code."""

    code: ErrorCode = ErrorCode.OK

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self.code)}, {self.message!r})"


class SignatureError(WXCallbackError):
    """The signature does not match: wrong Token, or query values decoded twice."""

    code = ErrorCode.VALIDATE_SIGNATURE_ERROR


class ParseError(WXCallbackError):
    """The body is not a well-formed envelope with exactly one string Encrypt field."""

    code = ErrorCode.PARSE_XML_ERROR


class ComputeSignatureError(WXCallbackError):
    """The signature cannot be computed (inputs not encodable, unknown digest)."""

    code = ErrorCode.COMPUTE_SIGNATURE_ERROR


class InvalidKeyError(WXCallbackError):
    """The EncodingAESKey is not 43 characters of standard base64."""

    code = ErrorCode.ILLEGAL_AES_KEY


class ReceiveIdError(WXCallbackError):
    """The decrypted frame names another receive_id (CorpID / AppID / SuiteID / "")."""

    code = ErrorCode.VALIDATE_RECEIVE_ID_ERROR

    def __init__(self, message: str, *, received: str | None = None, expected: object = None) -> None:
        super().__init__(message)
        self.received = received
        self.expected = expected


class EncryptError(WXCallbackError):
    """The reply cannot be encrypted (not encodable, bad random prefix, no usable key)."""

    code = ErrorCode.ENCRYPT_AES_ERROR


class DecryptError(WXCallbackError):
    """The ciphertext cannot be AES-decrypted (length not a non-zero multiple of 16)."""

    code = ErrorCode.DECRYPT_AES_ERROR


class IllegalBufferError(WXCallbackError):
    """The decrypted frame is malformed: padding, length field or UTF-8 (usually a wrong key)."""

    code = ErrorCode.ILLEGAL_BUFFER


class Base64EncodeError(WXCallbackError):
    """Base64 encoding failed (kept for the official code table; not raised in practice)."""

    code = ErrorCode.ENCODE_BASE64_ERROR


class Base64DecodeError(WXCallbackError):
    """The Encrypt value is not strict, padded, standard-alphabet base64."""

    code = ErrorCode.DECODE_BASE64_ERROR


class RenderError(WXCallbackError):
    """The reply envelope cannot be generated (timestamp not digits, nonce not XML text)."""

    code = ErrorCode.GEN_RETURN_XML_ERROR


_BY_CODE: dict[ErrorCode, type[WXCallbackError]] = {
    cls.code: cls
    for cls in (
        SignatureError,
        ParseError,
        ComputeSignatureError,
        InvalidKeyError,
        ReceiveIdError,
        EncryptError,
        DecryptError,
        IllegalBufferError,
        Base64EncodeError,
        Base64DecodeError,
        RenderError,
    )
}


def error_for_code(code: int) -> type[WXCallbackError]:
    """The exception class that carries ``code`` (WXCallbackError for unknown codes)."""
    try:
        return _BY_CODE[ErrorCode(code)]
    except ValueError:
        return WXCallbackError
