"""canonical_path answers as its definition does, whether or not the path has anything encoded."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxcallback.server.http import canonical_path

_SAFE = "/:@!$&'()*+,;=-._~"


def _by_definition(raw: bytes) -> str | None:
    """Decode, re-encode: canonical when that gives the same text and no '//', '.' or '..' segment."""
    try:
        text = raw.decode("ascii")
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None
    if quote(decoded, safe=_SAFE) != text or "//" in decoded:
        return None
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return None
    return decoded


@settings(max_examples=2000)
@given(st.text(alphabet="/._~-aZ09%2FE5:@!$&'()*+,;= \x80é", max_size=12))
def test_every_path_is_judged_as_the_definition_judges_it(text: str) -> None:
    raw = text.encode("utf-8")
    assert canonical_path(raw) == _by_definition(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"/wecom/app", "/wecom/app"), (b"/%E5%9B%9E", "/回"), (b"/a.b/c", "/a.b/c"), (b"/.well-known", "/.well-known"),
    (b"/a/.", None), (b"/a/../b", None), (b".", None), (b"//a", None), (b"/%61", None), (b"/%e5%9b%9e", None),
])
def test_usual_and_refused_paths(raw: bytes, expected: str | None) -> None:
    assert canonical_path(raw) == expected
