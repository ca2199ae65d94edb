"""``wxcallback decrypt`` and ``wxcallback encrypt``: one callback body or one reply."""

from __future__ import annotations

import click

from wxcallback.core import EncryptError, MessageCrypto

from .app import emit, main
from .options import (
    digest_option,
    format_option,
    key_option,
    previous_key_option,
    query_values,
    random_prefix,
    read_input,
    receive_id_options,
    receive_id_policy,
    require,
    token_option,
)

__all__ = ["decrypt", "encrypt"]

_QUERY_NAMES = ("msg_signature", "timestamp", "nonce")


@main.command()
@token_option
@key_option(required=True)
@previous_key_option
@receive_id_options
@click.option("--msg-signature", help="The msg_signature query value.")
@click.option("--timestamp", help="The timestamp query value.")
@click.option("--nonce", help="The nonce query value.")
@click.option("--query", help="The raw query string (or URL) as logged; it is form-decoded once.")
@format_option
@digest_option
@click.argument("body", required=False)
def decrypt(
    token: str,
    encoding_aes_key: str,
    previous_keys: tuple[str, ...],
    receive_ids: tuple[str, ...],
    any_receive_id: bool,
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    query: str | None,
    envelope: str,
    digest: str,
    body: str | None,
) -> None:
    """Verify and decrypt a callback BODY (argument, or '-' / nothing for stdin); print the plaintext."""
    values = query_values(query, _QUERY_NAMES,
                          {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce})
    signature, stamp, nonce_value = require(values, "msg_signature", "timestamp", "nonce")
    crypto = MessageCrypto(token, encoding_aes_key, receive_id_policy(receive_ids, any_receive_id),
                           previous_keys=previous_keys, envelope=envelope, digest=digest)
    message = crypto.decrypt(read_input(body, "callback body"), signature, stamp, nonce_value)
    emit(message.text, plaintext=message.text, receive_id=message.receive_id, key_index=message.key_index)


@main.command()
@token_option
@key_option(required=True)
@click.option("--receive-id", required=True,
              help="The CorpID / AppID / SuiteID sealed into the reply; '' for a smart robot.")
@click.option("--nonce", required=True, help="The nonce to sign with (usually the request's).")
@click.option("--timestamp", help="Decimal timestamp to sign with  [default: now]")
@click.option("--random-hex", "random", metavar="32HEX", callback=random_prefix,
              help="The 16-byte random prefix as 32 hex digits, to reproduce a known ciphertext "
                   "[default: from the OS CSPRNG]")
@format_option
@digest_option
@click.argument("reply", required=False)
def encrypt(
    token: str,
    encoding_aes_key: str,
    receive_id: str,
    nonce: str,
    timestamp: str | None,
    random: bytes | None,
    envelope: str,
    digest: str,
    reply: str | None,
) -> None:
    """Encrypt and sign a REPLY (argument, or '-' / nothing for stdin); print the reply envelope."""
    message = read_input(reply, "reply")
    try:
        message.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The receiver decodes the reply as UTF-8; other bytes would be refused there.
        raise EncryptError(f"reply is not valid UTF-8 (byte {exc.start})") from None
    crypto = MessageCrypto(token, encoding_aes_key, receive_id, envelope=envelope, digest=digest)
    sealed = crypto.encrypt_reply(message, nonce, timestamp=timestamp, random=random)
    rendered = sealed.render()
    emit(rendered, envelope=rendered, encrypt=sealed.encrypt, msg_signature=sealed.msg_signature,
         timestamp=sealed.timestamp, nonce=sealed.nonce)
