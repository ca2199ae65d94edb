"""The repository stands alone: the sdist carries what the tests need, nothing refers outside it."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTOR_FILES = ["README.md", "decrypt_errors.json", "encrypt.json", "signature.json", "verify_url.json"]


def _tracked() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_tracked_file_refers_to_a_directory_beside_the_repository() -> None:
    # Split so this file does not match itself.
    outside = re.compile("/work/" + "shared|\\.\\./" + "shared")
    offenders = []
    for path in _tracked():
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            offenders += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                          if outside.search(line)]
    assert offenders == []


def test_the_vectors_are_in_the_repository() -> None:
    from tests.vectors import IN_REPOSITORY, VECTORS_DIR

    tracked = {p.relative_to(ROOT).as_posix() for p in _tracked()}
    assert {f"tests/vectors/{name}" for name in VECTOR_FILES} <= tracked
    assert VECTORS_DIR == IN_REPOSITORY or "WXCALLBACK_VECTORS" in __import__("os").environ


def test_the_sdist_has_the_license_and_vectors_but_not_measured_results(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (sdist,) = tmp_path.glob("wxcallback-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "LICENSE" in names
    assert {f"tests/vectors/{name}" for name in VECTOR_FILES} <= names
    assert "reliability/faults.py" in names
    assert not [name for name in names if name.startswith("reliability/results/")]
    assert not [name for name in names if name.endswith((".db", ".db-wal", ".db-shm"))]


def test_the_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "wxcallback developers" in text
