"""`make run`'s install: only what serving needs, and it works where atheris cannot be built.

PIP_NO_BINARY=atheris makes pip build atheris from source, which needs libFuzzer: it fails
on most machines, as on the platforms atheris has no wheel for. The serving install must not
need it (nor any test tool), and the example configuration must be servable from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_run_install_needs_neither_atheris_nor_the_test_toolchain(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "PIP_NO_BINARY": "atheris", "PYTHON": sys.executable}
    result = subprocess.run(["make", f"VENV={venv}", f"{venv}/bin/.installed-server"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, check=True).stdout.lower()
    names = {line.split("==")[0].replace("_", "-") for line in installed.splitlines()}
    assert {"starlette", "uvicorn", "httpx", "prometheus-client", "wxcallback"} <= names
    assert not names & {"atheris", "pytest", "mypy", "django", "flask", "fastapi", "wechatpy", "redis"}
    check = subprocess.run([str(venv / "bin" / "wxcallback"), "serve", "--config", "examples/wxcallback.toml",
                            "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "configuration OK: 3 channel(s)" in check.stdout
