"""In CI every skip is a failure; elsewhere a skip stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.skipif(True, reason='tool absent')\n"
        "def test_marked(): pass\n\n"
        "def test_imperative(): pytest.skip('tool absent')\n\n"
        "@pytest.mark.xfail(reason='known')\n"
        "def test_expected_failure(): assert False\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "WXCALLBACK_CI")}
    if ci:
        env["WXCALLBACK_CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", [False, True])
def test_a_skip_fails_only_in_ci(tmp_path: Path, ci: bool) -> None:
    result = _run(tmp_path, ci)
    summary = result.stdout.strip().splitlines()[-1]
    if ci:
        # A skip in setup (a skipif mark) is reported as an error, one in the test body as a failure.
        assert result.returncode == 1 and "skipped" not in summary and "1 xfailed" in summary, result.stdout
        assert "1 failed" in summary and "1 error" in summary, result.stdout
        assert result.stdout.count("skipped in CI, where nothing may skip") == 2, result.stdout
    else:
        assert result.returncode == 0 and "2 skipped" in summary and "1 xfailed" in summary, result.stdout
