"""The crypto core: keys, signatures (Signer), the cipher frame, envelopes and MessageCrypto.

It depends on nothing else in wxcallback; the message models, the server and the CLI
build on it.
"""

from .crypto import DecryptedMessage, EncryptedReply, MessageCrypto
from .envelope import EnvelopeFormat, extract_encrypt, render_envelope
from .errors import (
    Base64DecodeError,
    Base64EncodeError,
    ComputeSignatureError,
    DecryptError,
    EncryptError,
    ErrorCode,
    IllegalBufferError,
    InvalidKeyError,
    ParseError,
    ReceiveIdError,
    RenderError,
    SignatureError,
    WXCallbackError,
)
from .keys import EncodingAESKey, KeyRing, decode_encoding_aes_key, generate_encoding_aes_key
from .media import decrypt_media
from .receive_id import ANY_RECEIVE_ID, ReceiveIdPolicy
from .signature import Signer, check_signature, sign

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
    "check_signature",
    "decode_encoding_aes_key",
    "decrypt_media",
    "extract_encrypt",
    "generate_encoding_aes_key",
    "render_envelope",
    "sign",
]
