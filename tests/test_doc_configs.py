"""Every configuration shown in the README and docs/ is accepted as written (its variables set)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.platform_requests import KEY, TOKEN
from wxcallback.server.config import parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(page, block) for page in PAGES
          for block in re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
          # A fragment ("# … path, platform …") shows only the keys a section adds.
          if not re.search(r"^# …", block, re.M)]


def _value(name: str) -> str:
    if "KEY" in name:
        return KEY
    if "TOKEN" in name:
        return TOKEN
    return "placeholder"


def test_the_pages_show_configurations() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("page, block", BLOCKS, ids=[f"{p.name}:{b.splitlines()[0]}" for p, b in BLOCKS])
def test_a_documented_configuration_is_accepted(page: Path, block: str) -> None:
    env = {name: _value(name) for name in re.findall(r"\$\{(\w+)\}", block)}
    config = parse_config(tomllib.loads(block), env)
    assert config.channels
