"""wxcallback: the WeChat / WeCom callback security protocol (WXBizMsgCrypt), done strictly.

The public API is stated here. ``wxcallback.compat`` holds the drop-in replacements for
the official ``WXBizMsgCrypt`` / ``WXBizJsonMsgCrypt`` classes.
"""

from .core import (
    ANY_RECEIVE_ID,
    Base64DecodeError,
    Base64EncodeError,
    ComputeSignatureError,
    DecryptedMessage,
    DecryptError,
    EncodingAESKey,
    EncryptedReply,
    EncryptError,
    EnvelopeFormat,
    ErrorCode,
    IllegalBufferError,
    InvalidKeyError,
    KeyRing,
    MessageCrypto,
    ParseError,
    ReceiveIdError,
    ReceiveIdPolicy,
    RenderError,
    SignatureError,
    Signer,
    WXCallbackError,
    check_signature,
    decode_encoding_aes_key,
    decrypt_media,
    generate_encoding_aes_key,
    sign,
)

__version__ = "0.1.0"

__all__ = [
    "ANY_RECEIVE_ID",
    "Base64DecodeError",
    "Base64EncodeError",
    "ComputeSignatureError",
    "DecryptError",
    "DecryptedMessage",
    "EncodingAESKey",
    "EncryptError",
    "EncryptedReply",
    "EnvelopeFormat",
    "ErrorCode",
    "IllegalBufferError",
    "InvalidKeyError",
    "KeyRing",
    "MessageCrypto",
    "ParseError",
    "ReceiveIdError",
    "ReceiveIdPolicy",
    "RenderError",
    "SignatureError",
    "Signer",
    "WXCallbackError",
    "__version__",
    "check_signature",
    "decode_encoding_aes_key",
    "decrypt_media",
    "generate_encoding_aes_key",
    "sign",
]
