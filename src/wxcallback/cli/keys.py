"""``wxcallback keygen``: fresh EncodingAESKeys."""

from __future__ import annotations

import click

from wxcallback.core import generate_encoding_aes_key

from .app import emit, main

__all__ = ["keygen"]


@main.command()
@click.option("--count", "-n", type=click.IntRange(min=1, max=10_000), default=1, show_default=True,
              help="How many keys to print, one a line.")
def keygen(count: int) -> None:
    """Print a new random EncodingAESKey (43 characters, from the OS CSPRNG)."""
    keys = [generate_encoding_aes_key() for _ in range(count)]
    emit("\n".join(keys), keys=keys)
