"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def calls_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file tests/e2e/e2e_handlers.py records each handler call in (shared by the server's processes)."""
    path = tmp_path / "calls.txt"
    path.touch()
    monkeypatch.setenv("WXCALLBACK_E2E_CALLS", str(path))
    return path
