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


def _chosen_python(**variables: str) -> str:
    env = {name: value for name, value in os.environ.items() if name != "PYTHON"}
    result = subprocess.run(["make", "--no-print-directory", "python", *(f"{k}={v}" for k, v in variables.items())],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_the_venv_is_made_with_the_distributions_python_when_it_can_make_one(tmp_path: Path) -> None:
    # An interpreter that can make a venv and is new enough is taken as the system's python3.
    assert _chosen_python(SYSTEM_PYTHON=sys.executable) == sys.executable
    # None there: the first python3 on PATH.
    assert _chosen_python(SYSTEM_PYTHON=str(tmp_path / "missing")) == "python3"
    # One too old, or one without ensurepip (Debian's before python3-venv): PATH's as well. Each
    # is this interpreter running the Makefile's probe ("-c", code) with one thing taken away.
    for name, change in (("old", "sys.version_info = (3, 9, 18)"), ("bare", "sys.modules['ensurepip'] = None")):
        stub = tmp_path / name
        stub.write_text(f"#!/bin/sh\nexec {sys.executable} -c \"import sys; {change}; exec(sys.argv[1])\" \"$2\"\n")
        stub.chmod(0o755)
        assert _chosen_python(SYSTEM_PYTHON=str(stub)) == "python3", name
    # An explicit choice wins.
    assert _chosen_python(PYTHON="python3.99") == "python3.99"
