"""The examples of docs/integrations.md build their apps as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "integrations.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_doc_has_its_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_builds_its_app(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the examples name examples/wxcallback.toml, relative to a checkout
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(BLOCKS[index], f"{DOC} example {index + 1}", "exec"), namespace)
    assert namespace["app"] is not None
