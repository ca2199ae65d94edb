"""MessageCrypto: verify, decrypt and encrypt callbacks for one account.

This is the whole protocol for one channel (an Official Account, a WeCom app, a
smart robot): the Token, the key ring, the receive_id policy, the envelope format and
the signature digest. Every failure is a WXCallbackError carrying the official code.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import NamedTuple

from .encoding import strict_b64decode, text_value, utf8_bytes
from .envelope import EnvelopeFormat, check_reply_values, extract_encrypt, render_checked, render_envelope
from .errors import (
    EncryptError,
    IllegalBufferError,
    ReceiveIdError,
    RenderError,
    SignatureError,
    WXCallbackError,
)
from .frame import RANDOM_SIZE
from .keys import EncodingAESKey, KeyRing
from .receive_id import ReceiveIdPolicy
from .signature import DEFAULT_DIGEST, Signer, signature_hex

__all__ = ["DecryptedMessage", "EncryptedReply", "MessageCrypto"]


class DecryptedMessage(NamedTuple):
    """A verified, decrypted callback.

    ``key_index`` says which key of the ring opened it (0 = current); pass the whole
    object as ``reply_to=`` when encrypting the answer so the same key and receive_id
    seal it.
    """

    text: str
    receive_id: str
    key_index: int = 0
    random: bytes = b""


class EncryptedReply(NamedTuple):
    """The four values of an encrypted reply and the envelope that carries them."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str
    envelope: EnvelopeFormat = EnvelopeFormat.XML
    json_timestamp: type[int] | type[str] = str

    def render(self) -> str:
        return render_envelope(self.envelope, self.encrypt, self.msg_signature, self.timestamp, self.nonce,
                               json_timestamp=self.json_timestamp)


class MessageCrypto(Signer):
    """The callback protocol for one account: a Signer with the key ring.

    >>> crypto = MessageCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    ...                        "wx5823bf96d3bd56c7")
    >>> crypto.verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
    ...     "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
    '1616140317555161061'

    ``receive_id`` is a str (exact match; "" for a smart robot), a collection of str
    (any of them), or a ReceiveIdPolicy (``ReceiveIdPolicy.any()`` skips the check).
    ``envelope`` is "xml", "json" (smart robot / WeCom JSON) or "oa-json". ``digest``
    applies to both signatures; WeChat and WeCom always use sha1.
    """

    __slots__ = ("keys", "receive_id", "envelope", "json_timestamp")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str | bytes | EncodingAESKey | KeyRing,
        receive_id: str | Iterable[str] | ReceiveIdPolicy,
        *,
        previous_keys: Iterable[str | bytes | EncodingAESKey] = (),
        envelope: EnvelopeFormat | str = EnvelopeFormat.XML,
        digest: str = DEFAULT_DIGEST,
        json_timestamp: type[int] | type[str] | None = None,
    ) -> None:
        super().__init__(token, digest=digest)
        if isinstance(encoding_aes_key, KeyRing):
            self.keys = encoding_aes_key if not previous_keys else KeyRing(
                encoding_aes_key.current, (*list(encoding_aes_key)[1:], *_as_tuple(previous_keys))
            )
        else:
            self.keys = KeyRing(encoding_aes_key, _as_tuple(previous_keys))
        self.receive_id = ReceiveIdPolicy.coerce(receive_id)
        self.envelope = EnvelopeFormat.parse(envelope)
        if json_timestamp is None:
            # The official JSON SDKs (Python, Go) send a string; the OA doc's example a number.
            json_timestamp = int if self.envelope is EnvelopeFormat.OA_JSON else str
        if json_timestamp not in (int, str):
            raise RenderError("json_timestamp must be int or str")
        self.json_timestamp = json_timestamp

    def __repr__(self) -> str:
        return (f"MessageCrypto(token=<hidden>, keys={len(self.keys)}, receive_id={self.receive_id.describe()}, "
                f"envelope={self.envelope.value!r}, digest={self.digest!r})")

    # -- signatures: sign, is_valid, verify_signature, verify_msg_signature (Signer) --

    def verify_plain_url(
        self, signature: str | bytes, timestamp: str | bytes, nonce: str | bytes, echostr: str | bytes
    ) -> str:
        """Official Account URL check: verify ``signature`` and return ``echostr`` verbatim.

        The OA echostr is plaintext in every mode and must not be decrypted (OA access guide).
        """
        self.verify_signature(signature, timestamp, nonce)
        return text_value(echostr, "echostr", SignatureError)

    # -- decryption -------------------------------------------------------------------

    def verify_url(
        self, msg_signature: str | bytes, timestamp: str | bytes, nonce: str | bytes, echostr: str | bytes
    ) -> str:
        """WeCom / smart robot URL check: verify, decrypt ``echostr`` and return its plaintext.

        ``echostr`` must be URL-decoded exactly once (a form decoder does it right when
        WeCom percent-encodes ``+ / =``). Answer the result verbatim as text/plain.
        """
        return self.decrypt_ciphertext(echostr, msg_signature, timestamp, nonce).text

    def decrypt(
        self, body: str | bytes, msg_signature: str | bytes, timestamp: str | bytes, nonce: str | bytes
    ) -> DecryptedMessage:
        """Verify and decrypt a callback body in this channel's envelope format."""
        encrypt = extract_encrypt(body, self.envelope)
        return self.decrypt_ciphertext(encrypt, msg_signature, timestamp, nonce)

    def decrypt_ciphertext(
        self, encrypt: str | bytes, msg_signature: str | bytes, timestamp: str | bytes, nonce: str | bytes
    ) -> DecryptedMessage:
        """Verify and decrypt an Encrypt value already taken out of its envelope."""
        encrypt_text = encrypt if type(encrypt) is str else text_value(encrypt, "Encrypt", SignatureError)
        self.verify_msg_signature(msg_signature, timestamp, nonce, encrypt_text)
        raw = strict_b64decode(encrypt_text)
        if len(self.keys) == 1:
            return self._open(raw, self.keys.current, 0)
        first_error: WXCallbackError | None = None
        mismatch: ReceiveIdError | None = None
        for index, key in enumerate(self.keys):
            try:
                return self._open(raw, key, index)
            except ReceiveIdError as exc:
                # The frame was well-formed under this key: the key is right, the id is not.
                mismatch = mismatch or exc
            except WXCallbackError as exc:
                first_error = first_error or exc
        raise mismatch or first_error or IllegalBufferError("no key could decrypt the message")

    def _open(self, raw: bytes, key: EncodingAESKey, index: int) -> DecryptedMessage:
        random, message, receive_id_utf8 = key.cipher.open(raw)
        receive_id = self.receive_id.match_utf8(receive_id_utf8)
        if receive_id is None:
            receive_id = self._unexpected_receive_id(receive_id_utf8)
        try:
            text = message.decode()
        except UnicodeDecodeError as exc:
            raise IllegalBufferError(f"decrypted message is not valid UTF-8 (byte {exc.start})") from None
        return DecryptedMessage(text, receive_id, index, random)

    def _unexpected_receive_id(self, received: bytes) -> str:
        """The decoded id of a frame not in the accepted set, if the policy accepts any; else raise."""
        try:
            receive_id = received.decode()
        except UnicodeDecodeError:
            raise ReceiveIdError(
                f"receive_id mismatch: the frame's receive_id is not UTF-8 ({received[:32]!r}); "
                f"this key is configured for {self.receive_id.describe()}",
                received=None, expected=self.receive_id.describe(),
            ) from None
        self.receive_id.check(receive_id)
        return receive_id

    # -- encryption -------------------------------------------------------------------

    def encrypt_reply(
        self,
        reply: str | bytes,
        nonce: str | bytes,
        *,
        timestamp: str | int | None = None,
        reply_to: DecryptedMessage | None = None,
        key_index: int | None = None,
        receive_id: str | None = None,
        random: bytes | None = None,
    ) -> EncryptedReply:
        """Encrypt and sign ``reply``; returns the four values (``render()`` gives the envelope).

        ``reply_to`` seals the answer with the key and receive_id that opened the request.
        ``timestamp`` defaults to now, ``random`` to 16 bytes from the OS CSPRNG; both can
        be given so published vectors reproduce exactly.
        """
        message = utf8_bytes(reply, "reply", EncryptError)
        nonce_text = text_value(nonce, "nonce", RenderError)
        stamp = text_value(str(int(time.time())) if timestamp is None else timestamp, "timestamp", RenderError)
        check_reply_values(self.envelope, stamp, nonce_text)
        if key_index is None:
            key_index = reply_to.key_index if reply_to is not None else 0
        key = self.keys[key_index]
        if receive_id is None:
            receive_id = reply_to.receive_id if reply_to is not None else self.receive_id.reply_id
        if receive_id is None:
            raise EncryptError(
                f"cannot choose a receive_id for the reply: this channel accepts {self.receive_id.describe()}; "
                "pass reply_to= (the decrypted request) or receive_id="
            )
        if random is None:
            random = secrets.token_bytes(RANDOM_SIZE)
        elif not isinstance(random, (bytes, bytearray)):
            raise EncryptError("random must be 16 bytes")
        encrypt = key.cipher.seal(message, utf8_bytes(receive_id, "receive_id", EncryptError), bytes(random))
        signature = signature_hex(self._hasher, (self.token, stamp, nonce_text, encrypt))
        return EncryptedReply(encrypt, signature, stamp, nonce_text, self.envelope, self.json_timestamp)

    def encrypt(
        self,
        reply: str | bytes,
        nonce: str | bytes,
        *,
        timestamp: str | int | None = None,
        reply_to: DecryptedMessage | None = None,
        key_index: int | None = None,
        receive_id: str | None = None,
        random: bytes | None = None,
    ) -> str:
        """The encrypted reply envelope for ``reply``, ready to be the response body."""
        sealed = self.encrypt_reply(
            reply, nonce, timestamp=timestamp, reply_to=reply_to, key_index=key_index,
            receive_id=receive_id, random=random,
        )
        # encrypt_reply has checked the timestamp and nonce; render without checking again.
        return render_checked(sealed.envelope, sealed.encrypt, sealed.msg_signature, sealed.timestamp,
                              sealed.nonce, sealed.json_timestamp)


def _as_tuple(keys: Iterable[str | bytes | EncodingAESKey]) -> tuple[str | bytes | EncodingAESKey, ...]:
    if isinstance(keys, (str, bytes)):
        return (keys,)
    return tuple(keys)
