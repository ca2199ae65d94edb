"""``wxcallback sign``: the signature or msg_signature of a set of values."""

from __future__ import annotations

import click

from wxcallback.core import sign

from .app import emit, main
from .options import digest_option, token_option

__all__ = ["sign_values"]


@main.command("sign")
@token_option
@click.option("--timestamp", required=True, help="The timestamp query value.")
@click.option("--nonce", required=True, help="The nonce query value.")
@click.option("--encrypt", help="The Encrypt value: makes the 4-value msg_signature.")
@click.option("--echostr", help="The URL-decoded echostr (WeCom URL check): same as --encrypt.")
@digest_option
def sign_values(
    token: str, timestamp: str, nonce: str, encrypt: str | None, echostr: str | None, digest: str
) -> None:
    """Print the signature of Token, timestamp and nonce (3 values, Official Account),
    or with --encrypt / --echostr the msg_signature (4 values, every encrypted callback)."""
    if encrypt is not None and echostr is not None:
        raise click.UsageError("--encrypt and --echostr are the same 4th value: give one")
    fourth = encrypt if encrypt is not None else echostr
    values = (token, timestamp, nonce) if fourth is None else (token, timestamp, nonce, fourth)
    signature = sign(*values, digest=digest)
    emit(signature, signature=signature, values=len(values))
