"""Drop-in replacements for the official ``WXBizMsgCrypt`` and ``WXBizJsonMsgCrypt`` classes.

Migrating a program that copied the official Python 3 files is one line::

    # from WXBizMsgCrypt import WXBizMsgCrypt
    from wxcallback.compat import WXBizMsgCrypt

The constructors, method names, ``(ret, value)`` tuples and value types are those of
the official Python 3 SDK (sbzhu/weworkapi_python): the XML class returns ``bytes`` from
``VerifyURL`` / ``DecryptMsg``, the JSON class returns ``str``; ``EncryptMsg`` returns the
envelope as ``str``, byte-identical to the official output. What differs is what the
official files get wrong: a bad EncodingAESKey returns -40004 from every call instead of
raising in the constructor, malformed input returns its code instead of raising, and
padding, base64 and the receive_id are checked strictly (docs/strictness.md).
"""

from __future__ import annotations

import json
import time

from .core.crypto import MessageCrypto
from .core.envelope import EnvelopeFormat, render_envelope
from .core.errors import ErrorCode, WXCallbackError

__all__ = ["WXBizJsonMsgCrypt", "WXBizMsgCrypt"]


class _OfficialShape:
    _envelope = EnvelopeFormat.XML

    def __init__(self, sToken: str, sEncodingAESKey: str, sReceiveId: str) -> None:
        self._crypto: MessageCrypto | None = None
        self._init_error: WXCallbackError | None = None
        try:
            self._crypto = MessageCrypto(sToken, sEncodingAESKey, sReceiveId, envelope=self._envelope)
        except WXCallbackError as exc:
            # The official SDK raises FormatException here; returning the code from each
            # call keeps the (ret, value) contract every caller already handles.
            self._init_error = exc

    def _ready(self) -> MessageCrypto:
        if self._crypto is None:
            assert self._init_error is not None
            raise self._init_error
        return self._crypto

    def _verify(self, sMsgSignature: str, sTimeStamp: str, sNonce: str, sEchoStr: str) -> tuple[int, str | None]:
        try:
            return ErrorCode.OK, self._ready().verify_url(sMsgSignature, sTimeStamp, sNonce, sEchoStr)
        except WXCallbackError as exc:
            return int(exc.code), None

    def _decrypt(self, sPostData: str | bytes, sMsgSignature: str, sTimeStamp: str, sNonce: str) -> tuple[int, str | None]:
        try:
            return ErrorCode.OK, self._ready().decrypt(sPostData, sMsgSignature, sTimeStamp, sNonce).text
        except WXCallbackError as exc:
            return int(exc.code), None

    def EncryptMsg(self, sReplyMsg: str | bytes, sNonce: str, timestamp: str | int | None = None) -> tuple[int, str | None]:
        """Encrypt ``sReplyMsg``; ``timestamp`` defaults to now. Returns ``(ret, envelope)``."""
        try:
            crypto = self._ready()
            stamp = str(int(time.time())) if timestamp is None else timestamp
            reply = crypto.encrypt_reply(sReplyMsg, sNonce, timestamp=stamp)
            return ErrorCode.OK, self._render(reply.encrypt, reply.msg_signature, reply.timestamp, reply.nonce)
        except WXCallbackError as exc:
            return int(exc.code), None

    def _render(self, encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
        return render_envelope(EnvelopeFormat.XML, encrypt, signature, timestamp, nonce)


class WXBizMsgCrypt(_OfficialShape):
    """The official XML class: ``WXBizMsgCrypt(sToken, sEncodingAESKey, sReceiveId)``."""

    _envelope = EnvelopeFormat.XML

    def VerifyURL(self, sMsgSignature: str, sTimeStamp: str, sNonce: str, sEchoStr: str) -> tuple[int, bytes | None]:
        """Verify and decrypt the URL-decoded ``echostr``; ``(0, plaintext bytes)`` on success."""
        ret, value = self._verify(sMsgSignature, sTimeStamp, sNonce, sEchoStr)
        return ret, None if value is None else value.encode("utf-8")

    def DecryptMsg(self, sPostData: str | bytes, sMsgSignature: str, sTimeStamp: str, sNonce: str) -> tuple[int, bytes | None]:
        """Verify and decrypt an XML callback body; ``(0, plaintext bytes)`` on success."""
        ret, value = self._decrypt(sPostData, sMsgSignature, sTimeStamp, sNonce)
        return ret, None if value is None else value.encode("utf-8")


class WXBizJsonMsgCrypt(_OfficialShape):
    """The official JSON class (smart robots, WeCom JSON callbacks): values are ``str``."""

    _envelope = EnvelopeFormat.JSON

    def VerifyURL(self, sMsgSignature: str, sTimeStamp: str, sNonce: str, sEchoStr: str) -> tuple[int, str | None]:
        """Verify and decrypt the URL-decoded ``echostr``; ``(0, plaintext str)`` on success."""
        return self._verify(sMsgSignature, sTimeStamp, sNonce, sEchoStr)

    def DecryptMsg(self, sPostData: str | bytes, sMsgSignature: str, sTimeStamp: str, sNonce: str) -> tuple[int, str | None]:
        """Verify and decrypt a JSON callback body (``{"encrypt": …}``); ``(0, plaintext str)``."""
        return self._decrypt(sPostData, sMsgSignature, sTimeStamp, sNonce)

    def _render(self, encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
        # The official JSON SDK's exact layout (indented, string timestamp), so output
        # compared byte for byte against it, or logged, looks the same.
        fields = (("encrypt", encrypt), ("msgsignature", signature), ("timestamp", timestamp), ("nonce", nonce))
        body = ",\n".join(f"        {json.dumps(k)}: {json.dumps(v)}" for k, v in fields)
        return "{\n" + body + "\n    }"
