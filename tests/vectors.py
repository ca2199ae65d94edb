"""Loading the WXBizMsgCrypt test vectors (produced by running the official and peer SDKs).

They live in tests/vectors/ (README.md there says where they come from); WXCALLBACK_VECTORS
points the tests at another copy. A missing file is an error, not a skip: every byte-level
claim is checked on them.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

IN_REPOSITORY = Path(__file__).resolve().parent / "vectors"
VECTORS_DIR = Path(os.environ.get("WXCALLBACK_VECTORS") or IN_REPOSITORY)


@cache
def load(name: str) -> list[dict[str, Any]]:
    path = VECTORS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"test vectors not found at {path}: they ship in tests/vectors/ "
            "(is WXCALLBACK_VECTORS pointing elsewhere?)"
        )
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def by_case(name: str) -> dict[str, dict[str, Any]]:
    return {entry["case_id"]: entry for entry in load(name)}


def ids(entries: list[dict[str, Any]], field: str = "case_id") -> list[str]:
    return [entry[field] for entry in entries]
