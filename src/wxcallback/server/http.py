"""The framework-neutral HTTP request and response of one callback, and the body limits.

The server sees only these, so the Starlette app, and the WSGI and Django adapters,
share one behaviour: the adapter turns its framework's request into a CallbackRequest
(or hands over the body stream, read here within ``max_body_bytes`` and
``body_timeout``) and writes the CallbackResponse back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote

from ..core import ParseError

__all__ = [
    "JSON",
    "TEXT",
    "XML",
    "BodyTooLarge",
    "CallbackRequest",
    "CallbackResponse",
    "QueryError",
    "canonical_path",
    "checked_body",
    "parse_query",
    "read_body",
]

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
_MAX_QUERY_FIELDS = 32


class QueryError(ParseError):
    """The query string cannot be read unambiguously (-40002, answered 400)."""


class BodyTooLarge(Exception):
    """The body (declared or received) exceeds ``max_body_bytes`` (answered 413)."""


# One of each per request: NamedTuples, built in under half a frozen dataclass's time.
class CallbackRequest(NamedTuple):
    method: str
    path: str
    query_string: bytes = b""
    body: bytes = b""


class CallbackResponse(NamedTuple):
    """What to answer: status, body and content type. What the log records is an Outcome."""

    status: int
    body: bytes = b""
    content_type: str = TEXT


# what a path keeps unencoded in its canonical form (RFC 3986 pchar and "/")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_PLAIN_PATH = re.compile(rb"[A-Za-z0-9/:@!$&'()*+,;=._~-]*")


def canonical_path(raw_path: bytes) -> str | None:
    """The decoded path if ``raw_path`` is in canonical form, else None.

    Canonical: percent-encoding only where needed (``/%E5%9B%9E`` for a non-ASCII
    segment), upper-case hex, no ``//``, ``.`` or ``..`` segment. ``/wecom%2fapp``,
    ``/wecom/%61pp`` and ``//wecom`` all decode to a channel's path; a proxy rule written
    for the path as the platform sends it would not see them, so they are refused.
    """
    if (_PLAIN_PATH.fullmatch(raw_path) is not None and b"//" not in raw_path and b"/." not in raw_path
            and not raw_path.startswith(b".")):
        # nothing encoded and no dot segment possible: its own canonical form (the usual path)
        return raw_path.decode("ascii")
    try:
        text = raw_path.decode("ascii")
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None
    if quote(decoded, safe=_PATH_SAFE) != text or "//" in decoded:
        return None
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return None
    return decoded


def parse_query(query_string: bytes) -> dict[str, str]:
    """Form-decode the query once ('+' is a space, %2B is '+', as WeCom sends it).

    A key given twice is refused: which value was signed would be a guess.
    """
    try:
        text = query_string.decode("ascii")
        if "%" in text or "+" in text:
            pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=_MAX_QUERY_FIELDS)
        else:
            # Nothing to decode (the usual signature, timestamp and nonce): parse_qsl's own
            # split, without its two unquote calls per field.
            if text.count("&") >= _MAX_QUERY_FIELDS:
                raise ValueError("Max number of fields exceeded")
            pairs = [(name, value) for name, _, value in (field.partition("=") for field in text.split("&") if field)]
    except UnicodeDecodeError:
        raise QueryError("query string is not valid UTF-8 / ASCII") from None
    except ValueError as exc:
        raise QueryError(f"query string cannot be parsed: {exc}") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            raise QueryError(f"query parameter {key!r} is given more than once")
        query[key] = value
    return query


async def read_body(body: bytes | AsyncIterator[bytes], declared: int | None, limit: int, timeout: float) -> bytes:
    """The whole body within ``limit`` bytes and, when it is streamed, ``timeout`` seconds.

    BodyTooLarge when it (or its declared Content-Length) exceeds the limit;
    asyncio.TimeoutError when a streamed body does not arrive in time.
    """
    if isinstance(body, bytes):  # already read by the framework
        return checked_body(body, declared, limit)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    return await asyncio.wait_for(_read_chunks(body, limit), timeout)


def checked_body(body: bytes, declared: int | None, limit: int) -> bytes:
    """``read_body`` for a body already read whole: BodyTooLarge past ``limit``."""
    if len(body) > limit or (declared is not None and declared > limit):
        raise BodyTooLarge
    return body


async def _read_chunks(body: AsyncIterator[bytes], limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
