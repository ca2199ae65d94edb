"""The handler examples in docs/messages.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "messages.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_doc_has_an_example_per_platform() -> None:
    assert len(BLOCKS) == 3
    for platform in ("OFFICIAL_ACCOUNT", "wecom-app", "WECOM_ROBOT"):
        assert any(platform in block for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=["official-account", "wecom-app", "wecom-robot"])
def test_doc_example_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, str(DOC), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out  # each example prints what it rendered
