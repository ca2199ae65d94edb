"""The framework-neutral request and response of one callback exchange.

The pipeline sees only these, so the Starlette app, and any WSGI or Django adapter,
share one behaviour: the adapter turns its framework's request into a CallbackRequest
and writes the CallbackResponse back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ..core import ParseError

__all__ = ["CallbackRequest", "CallbackResponse", "QueryError", "parse_query"]

_MAX_QUERY_FIELDS = 32


class QueryError(ParseError):
    """The query string cannot be read unambiguously (-40002, answered 400)."""


@dataclass(frozen=True)
class CallbackRequest:
    method: str
    path: str
    query_string: bytes = b""
    body: bytes = b""


@dataclass
class CallbackResponse:
    """What to answer, plus what the access log and metrics record about it."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    outcome: str = "ok"
    code: int = 0
    detail: str = ""
    channel: str = "-"
    msg_type: str = ""
    fields: dict[str, object] = field(default_factory=dict)


def parse_query(query_string: bytes) -> dict[str, str]:
    """Form-decode the query once ('+' is a space, %2B is '+', as WeCom sends it).

    A key given twice is refused: which value was signed would be a guess.
    """
    try:
        text = query_string.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=_MAX_QUERY_FIELDS)
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
