"""Loading the shared test vectors (produced by running the official and peer SDKs).

They live beside the repository in ../shared/vectors (override with WXCALLBACK_VECTORS).
A missing directory is an error, not a skip: every byte-level claim is checked on them.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(
    os.environ.get("WXCALLBACK_VECTORS", Path(__file__).resolve().parents[2] / "shared" / "vectors")
)


@cache
def load(name: str) -> list[dict[str, Any]]:
    path = VECTORS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"test vectors not found at {path}: check out the shared/ folder beside the repository "
            "or set WXCALLBACK_VECTORS"
        )
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def by_case(name: str) -> dict[str, dict[str, Any]]:
    return {entry["case_id"]: entry for entry in load(name)}


def ids(entries: list[dict[str, Any]], field: str = "case_id") -> list[str]:
    return [entry[field] for entry in entries]
