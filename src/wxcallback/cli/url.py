"""``wxcallback verify-url``: answer the GET a platform sends to check a callback URL.

Two protocols share the request: WeCom apps and smart robots send ``msg_signature`` and
an encrypted ``echostr`` (answer its plaintext); Official Accounts send ``signature``
and a plaintext ``echostr`` (answer it unchanged, never decrypt it).
"""

from __future__ import annotations

import click

from wxcallback.core import MessageCrypto, Signer

from .app import emit, main
from .options import (
    digest_option,
    key_option,
    previous_key_option,
    query_values,
    receive_id_options,
    receive_id_policy,
    require,
    token_option,
)

__all__ = ["verify_url"]

_QUERY_NAMES = ("msg_signature", "signature", "timestamp", "nonce", "echostr")


@main.command("verify-url")
@token_option
@key_option(required=False)
@previous_key_option
@receive_id_options
@click.option("--msg-signature", help="msg_signature (WeCom app, smart robot): echostr is encrypted.")
@click.option("--signature", help="signature (Official Account): echostr is plaintext; no key needed.")
@click.option("--timestamp", help="The timestamp query value.")
@click.option("--nonce", help="The nonce query value.")
@click.option("--echostr", help="The echostr query value, URL-decoded once.")
@click.option("--query", help="The raw query string (or URL) as logged; it is form-decoded once.")
@digest_option
def verify_url(
    token: str,
    encoding_aes_key: str | None,
    previous_keys: tuple[str, ...],
    receive_ids: tuple[str, ...],
    any_receive_id: bool,
    msg_signature: str | None,
    signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    echostr: str | None,
    query: str | None,
    digest: str,
) -> None:
    """Verify a URL-check request and print the body to answer it with."""
    values = query_values(query, _QUERY_NAMES, {
        "msg_signature": msg_signature, "signature": signature,
        "timestamp": timestamp, "nonce": nonce, "echostr": echostr,
    })
    if values["msg_signature"] is not None and values["signature"] is not None:
        if query is None or msg_signature is not None or signature is not None:
            raise click.UsageError("give --msg-signature (WeCom, smart robot) or --signature (Official Account), "
                                   "not both")
        # A logged query may carry both (Official Account security mode): msg_signature is the
        # stronger check, since it covers echostr too.
        values["signature"] = None
    if values["msg_signature"] is None and values["signature"] is None:
        raise click.UsageError("missing --msg-signature (WeCom, smart robot) or --signature (Official Account)")
    stamp, nonce_value, echo = require(values, "timestamp", "nonce", "echostr")

    plain_signature = values["signature"]
    if plain_signature is not None:
        Signer(token, digest=digest).verify_signature(plain_signature, stamp, nonce_value)
        emit(echo, echostr=echo, mode="signature")
        return

    if encoding_aes_key is None:
        raise click.UsageError("--key (or WXCALLBACK_ENCODING_AES_KEY) is required with --msg-signature")
    crypto = MessageCrypto(token, encoding_aes_key, receive_id_policy(receive_ids, any_receive_id),
                           previous_keys=previous_keys, digest=digest)
    message = crypto.decrypt_ciphertext(echo, str(values["msg_signature"]), stamp, nonce_value)
    emit(message.text, echostr=message.text, mode="msg_signature",
         receive_id=message.receive_id, key_index=message.key_index)
