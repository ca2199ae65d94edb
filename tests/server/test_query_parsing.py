"""parse_query reads a query exactly as parse_qsl does, with or without anything to decode."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wxcallback.server.http import QueryError, parse_query


def _expected(text: str) -> dict[str, str] | None:
    """parse_qsl's reading, or None where parse_query must refuse (a key twice, too many fields)."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=32)
    except (ValueError, UnicodeDecodeError):
        return None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            return None
        query[key] = value
    return query


@given(st.text(alphabet="ab=&1%2B+", max_size=24))
def test_every_query_is_read_as_parse_qsl_reads_it(text: str) -> None:
    expected = _expected(text)
    if expected is None:
        with pytest.raises(QueryError):
            parse_query(text.encode())
    else:
        assert parse_query(text.encode()) == expected


@pytest.mark.parametrize("fields, refused", [(32, False), (33, True)])
def test_at_most_32_fields_with_or_without_escapes(fields: int, refused: bool) -> None:
    for value in ("1", "%31"):
        query = "&".join(f"a{i}={value}" for i in range(fields)).encode()
        if refused:
            with pytest.raises(QueryError, match="Max number of fields"):
                parse_query(query)
        else:
            assert len(parse_query(query)) == fields


def test_the_usual_callback_query_needs_no_decoding() -> None:
    assert parse_query(b"msg_signature=ab12&timestamp=1409659813&nonce=263014780&flag") == {
        "msg_signature": "ab12", "timestamp": "1409659813", "nonce": "263014780", "flag": ""}
