"""The floor: the least work that still gives the right answer, for comparison only.

Bare ``cryptography`` + hashlib + base64 and a str.find scan of the envelope, written
as plainly as possible. The AES ``Cipher`` is built once per key (the IV is the first 16
bytes of the key, so it never changes); each message only makes a fresh encryptor or
decryptor. It checks what the protocol needs for the right answer (msg_signature, the
receive_id) and nothing else: no strict base64, no padding check, no XML parser, no
error codes. Never use it to serve callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_ENCRYPT_OPEN = b"<Encrypt><![CDATA["
_ENCRYPT_CLOSE = b"]]></Encrypt>"


class FloorCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        key = base64.b64decode(encoding_aes_key + "=")
        self.cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self.token = token
        self.receive_id = receive_id.encode()

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1("".join(sorted((self.token, timestamp, nonce, encrypt))).encode()).hexdigest()

    def open(self, encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        if not hmac.compare_digest(self.signature(timestamp, nonce, encrypt), msg_signature):
            raise ValueError("msg_signature does not match")
        decryptor = self.cipher.decryptor()
        block = decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()
        frame = block[: -block[-1]]
        end = 20 + int.from_bytes(frame[16:20], "big")
        if frame[end:] != self.receive_id:
            raise ValueError("receive_id mismatch")
        return frame[20:end].decode()

    def decrypt(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        start = body.find(_ENCRYPT_OPEN) + len(_ENCRYPT_OPEN)
        end = body.find(_ENCRYPT_CLOSE, start)
        return self.open(body[start:end].decode(), msg_signature, timestamp, nonce)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        return self.open(echostr, msg_signature, timestamp, nonce)

    def encrypt(self, reply: str, nonce: str, timestamp: str) -> str:
        message = reply.encode()
        frame = os.urandom(16) + len(message).to_bytes(4, "big") + message + self.receive_id
        pad = 32 - len(frame) % 32
        encryptor = self.cipher.encryptor()
        encrypt = base64.b64encode(encryptor.update(frame + bytes((pad,)) * pad) + encryptor.finalize()).decode()
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{self.signature(timestamp, nonce, encrypt)}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )
