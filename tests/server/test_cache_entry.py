"""The cached answer a retry is given is written as json.dumps writes it, and read back whole."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from wxcallback.server.dispatch import Answer

KINDS = st.sampled_from(["reply", "raw", "none", "error"])


@given(KINDS, st.text())
def test_a_cache_entry_is_the_json_of_its_kind_and_text(kind: str, text: str) -> None:
    answer = Answer(kind, text)
    entry = answer.to_cache()
    assert entry == json.dumps({"kind": kind, "text": text}).encode()
    assert Answer.from_cache(entry) == answer


def test_markup_quotes_and_non_ascii_text_survive() -> None:
    text = '<xml><Content><![CDATA[回复 "quoted" \\ back\u2028slash\x00]]></Content></xml>\ud800'
    assert Answer.from_cache(Answer("reply", text).to_cache()) == Answer("reply", text)
