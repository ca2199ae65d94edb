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
