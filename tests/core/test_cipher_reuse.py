"""One decryptor per key and thread: every message still starts from the IV."""

from __future__ import annotations

import os
import threading

from wxcallback.core import MessageCrypto

TOKEN, KEY, CORP_ID = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"


def _sample(crypto: MessageCrypto, text: str) -> tuple[str, str, str, str]:
    nonce, timestamp = os.urandom(4).hex(), "1409659813"
    encrypt = crypto.encrypt_reply(text, nonce, timestamp=timestamp).encrypt
    return encrypt, crypto.sign(timestamp, nonce, encrypt), timestamp, nonce


def test_messages_of_every_size_in_a_row_each_decrypt_from_the_iv() -> None:
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    texts = ["a", "b" * 15, "c" * 16, "d" * 300, "é" * 1000, "f" * 65536, "g"]
    samples = [_sample(crypto, text) for text in texts]
    for _ in range(2):
        assert [crypto.decrypt_ciphertext(*sample).text for sample in samples] == texts


def test_a_failed_message_leaves_the_next_one_unharmed() -> None:
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    other = MessageCrypto(TOKEN, "A" * 43, CORP_ID)  # another key: its frames do not open here
    encrypt, signature, timestamp, nonce = _sample(other, "not for this key")
    try:
        crypto.decrypt_ciphertext(encrypt, crypto.sign(timestamp, nonce, encrypt), timestamp, nonce)
    except Exception:
        pass
    assert crypto.decrypt_ciphertext(*_sample(crypto, "next")).text == "next"


def test_threads_decrypting_with_one_crypto_each_get_their_own_messages() -> None:
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    samples = {f"message {i} " * (i + 1): _sample(crypto, f"message {i} " * (i + 1)) for i in range(8)}
    wrong: list[str] = []

    def run(text: str, sample: tuple[str, str, str, str]) -> None:
        for _ in range(500):
            if crypto.decrypt_ciphertext(*sample).text != text:
                wrong.append(text)

    threads = [threading.Thread(target=run, args=item) for item in samples.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_sealed_messages_in_a_row_equal_those_of_a_new_encryptor_each() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from wxcallback.core.cipher import FrameCipher

    key = bytes(range(32))
    reused, fresh = FrameCipher(key), Cipher(algorithms.AES(key), modes.CBC(key[:16]))
    for size in (32, 64, 320, 4096, 65568, 32, 96):
        for _ in range(3):
            block = os.urandom(size)
            assert reused.encrypt_block(block) == fresh.encryptor().update(block)
    assert reused.encrypt_block(b"x" * 20) == fresh.encryptor().update(b"x" * 20)  # not whole blocks: fresh one


def test_replies_sealed_in_threads_all_open() -> None:
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    failures: list[str] = []

    def run(index: int) -> None:
        for turn in range(300):
            text = f"reply {index} {turn} " * (turn % 7 + 1)
            try:
                assert crypto.decrypt_ciphertext(*_sample(crypto, text)).text == text
            except Exception as exc:  # an AssertionError or a refused frame
                failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
