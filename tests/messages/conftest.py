from __future__ import annotations

import pytest

from tests.vectors import load


@pytest.fixture(scope="session")
def plaintexts() -> dict[str, str]:
    """Decrypted plaintext of each encrypt test vector case, by case id prefix ("E01", …)."""
    by_case: dict[str, str] = {}
    for vector in load("encrypt.json"):
        by_case.setdefault(vector["case_id"].split("_")[0], vector["plaintext"])
    return by_case
