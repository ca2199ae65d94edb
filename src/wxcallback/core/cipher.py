"""AES-256-CBC over the callback frame, for one key.

The IV is the first 16 bytes of the key (WeCom doc 90968), so it never changes for a
key: the ``Cipher`` object is built once per key and only a fresh encryptor is made per
message (building a ``Cipher`` costs ~20 µs, more than the rest of a small message's work).
Decryption does not even make a decryptor per message (~1.5 µs, most of a small message's
AES): in CBC each plaintext block depends only on its ciphertext block and the one before,
so one decryptor per thread, fed the IV as a ciphertext block first, starts every message
from the IV again.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from .encoding import b64encode
from .errors import DecryptError, EncryptError
from .frame import RANDOM_SIZE, Frame, pack_frame, unpack_frame

__all__ = ["FrameCipher"]

_MAX_MESSAGE = 0xFFFFFFFF


class FrameCipher:
    """Seal a message into base64 ciphertext and open ciphertext bytes into a Frame."""

    __slots__ = ("_cipher", "_iv", "_iv_decrypted", "_per_thread")

    def __init__(self, aes_key: bytes) -> None:
        self._iv = aes_key[:16]
        self._cipher = Cipher(algorithms.AES(aes_key), modes.CBC(self._iv))
        # AES-decrypt(IV) as an int: what turns an encryptor's chaining block back into the IV
        ecb = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
        self._iv_decrypted = int.from_bytes(ecb.update(self._iv), "big")
        # encryptors and decryptors keep their chaining block between calls: one per thread
        self._per_thread = threading.local()

    def encrypt_block(self, block: bytes) -> bytes:
        if not block or len(block) % 16:  # not whole blocks: the chaining block would be lost
            return self._cipher.encryptor().update(block)
        # After a whole-block update the encryptor's chaining block is the last block it wrote,
        # C. Encrypting AES-decrypt(IV) xor C writes the IV itself (discarded), which makes the
        # IV the chaining block again: the next message starts from it, as with a new encryptor.
        state = self._per_thread
        encryptor: CipherContext | None = getattr(state, "encryptor", None)
        if encryptor is None:
            encryptor = self._cipher.encryptor()
        else:
            encryptor.update((self._iv_decrypted ^ int.from_bytes(state.last, "big")).to_bytes(16, "big"))
        state.encryptor = None  # taken: should the update fail, the next message gets a new one
        sealed = encryptor.update(block)
        state.encryptor, state.last = encryptor, sealed[-16:]
        return sealed

    def decrypt_block(self, data: bytes) -> bytes:
        size = len(data)
        if size == 0 or size % 16:
            raise DecryptError(
                f"ciphertext is {size} bytes, not a non-zero multiple of the 16-byte AES block"
            )
        # CBC without padding hands back every whole block from update(); finalize()
        # would only re-check the length checked above. Each call ends on a whole block,
        # so the decryptor's chaining block is the last ciphertext block it saw: feeding it
        # the IV (the 16 bytes out are discarded) makes the IV the next message's chaining block.
        decryptor: CipherContext
        try:
            decryptor = self._per_thread.decryptor
        except AttributeError:
            decryptor = self._per_thread.decryptor = self._cipher.decryptor()
        decryptor.update(self._iv)
        return decryptor.update(data)

    def seal(self, message: bytes, receive_id: bytes, random: bytes) -> str:
        """Base64 ciphertext of the frame (message, receive_id) with the given random prefix."""
        if len(random) != RANDOM_SIZE:
            raise EncryptError(f"the random prefix must be 16 bytes, not {len(random)}")
        if len(message) > _MAX_MESSAGE:
            raise EncryptError("the message is longer than the 32-bit length field allows")
        return b64encode(self.encrypt_block(pack_frame(message, receive_id, random)))

    def open(self, ciphertext: bytes) -> Frame:
        """The frame inside raw (base64-decoded) ciphertext; -40007 or -40008 when malformed."""
        return unpack_frame(self.decrypt_block(ciphertext))
