"""Options and inputs shared by the commands: secrets, receive_id, query strings, bodies.

The Token and the EncodingAESKey are secrets: they may come from the environment so
they never reach shell history, and no message of the CLI ever contains them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import click

from wxcallback.core import EnvelopeFormat, ReceiveIdPolicy

__all__ = [
    "argument_bytes",
    "digest_option",
    "format_option",
    "key_option",
    "previous_key_option",
    "query_values",
    "random_prefix",
    "read_input",
    "receive_id_options",
    "receive_id_policy",
    "require",
    "token_option",
]

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_ENV = "WXCALLBACK_TOKEN"
KEY_ENV = "WXCALLBACK_ENCODING_AES_KEY"
PREVIOUS_KEYS_ENV = "WXCALLBACK_PREVIOUS_ENCODING_AES_KEYS"


def token_option(func: F) -> F:
    return click.option(
        "--token", envvar=TOKEN_ENV, show_envvar=True, required=True,
        help="The Token set in the console.",
    )(func)


def key_option(*, required: bool) -> Callable[[F], F]:
    return click.option(
        "--key", "--encoding-aes-key", "encoding_aes_key", envvar=KEY_ENV, show_envvar=True, required=required,
        help="The 43-character EncodingAESKey.",
    )


def previous_key_option(func: F) -> F:
    return click.option(
        "--previous-key", "previous_keys", multiple=True, envvar=PREVIOUS_KEYS_ENV, show_envvar=True,
        help="An EncodingAESKey in use before the current one (repeatable; the variable splits on spaces).",
    )(func)


def receive_id_options(func: F) -> F:
    func = click.option(
        "--any-receive-id", is_flag=True,
        help="Skip the receive_id check (diagnosis only: it drops a check the protocol makes).",
    )(func)
    return click.option(
        "--receive-id", "receive_ids", multiple=True,
        help="CorpID / AppID / SuiteID the messages are for; '' for a smart robot. Repeat to accept several.",
    )(func)


def digest_option(func: F) -> F:
    return click.option(
        "--digest", default="sha1", show_default=True,
        help="Signature hash (WeChat and WeCom use sha1; some gateways sha256).",
    )(func)


def format_option(func: F) -> F:
    return click.option(
        "--format", "envelope", type=click.Choice([f.value for f in EnvelopeFormat]), default="xml",
        show_default=True, help="Envelope: xml, json (smart robot / WeCom JSON) or oa-json.",
    )(func)


def receive_id_policy(receive_ids: tuple[str, ...], any_receive_id: bool) -> str | ReceiveIdPolicy:
    """What the messages may be addressed to, from --receive-id / --any-receive-id."""
    if any_receive_id:
        if receive_ids:
            raise click.UsageError("--any-receive-id and --receive-id exclude each other")
        return ReceiveIdPolicy.any()
    if not receive_ids:
        raise click.UsageError(
            "--receive-id is required (--receive-id '' for a smart robot; --any-receive-id skips the check)"
        )
    return receive_ids[0] if len(receive_ids) == 1 else ReceiveIdPolicy.one_of(receive_ids)


def random_prefix(_ctx: click.Context, _param: click.Parameter, value: str | None) -> bytes | None:
    """--random-hex: 32 hex digits, the 16-byte random prefix of the frame."""
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 16 or len(value) != 32:
        raise click.BadParameter("must be 32 hexadecimal digits (the 16-byte random prefix)")
    return raw


def query_values(query: str | None, names: tuple[str, ...], given: dict[str, str | None]) -> dict[str, str | None]:
    """Merge the options in ``given`` with the same names taken from a raw query string.

    The query is form-decoded exactly once, as a web framework does (decoding
    twice turns '+' in echostr into ' '). A whole URL is accepted; only its query is read.
    """
    if query is None:
        return dict(given)
    if "?" in query:
        query = query.split("?", 1)[1]
    query = query.split("#", 1)[0]
    found: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in names:
            continue
        if name in found:
            raise click.BadParameter(f"{name} appears more than once", param_hint="'--query'")
        found[name] = value
    merged = dict(given)
    for name, value in found.items():
        if merged.get(name) is not None:
            raise click.UsageError(f"{name} is given both in --query and as an option")
        merged[name] = value
    return merged


def require(values: dict[str, str | None], *names: str) -> list[str]:
    """The values of ``names``; a usage error naming every one that is missing."""
    missing = [name for name in names if values.get(name) is None]
    if missing:
        options = ", ".join("--" + name.replace("_", "-") for name in missing)
        raise click.UsageError(f"missing {options} (as options or in --query)")
    return [str(values[name]) for name in names]


def read_input(value: str | None, what: str) -> bytes:
    """The command's text input: the argument, or stdin when it is '-' or absent."""
    if value is None or value == "-":
        if value is None and sys.stdin.isatty():
            raise click.UsageError(f"give the {what} as an argument, or '-' and pipe it on stdin")
        return sys.stdin.buffer.read()
    return argument_bytes(value)


def argument_bytes(value: str) -> bytes:
    """The bytes of a command-line argument (the OS hands undecodable bytes over as surrogates)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # Other lone surrogates: keep them as invalid UTF-8 so the library names the problem.
        return value.encode("utf-8", "surrogatepass")
