"""wxcallback sign (signature.json) and wxcallback keygen."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vectors import load
from wxcallback.core import decode_encoding_aes_key

from .conftest import Cli

SIGNATURES = load("signature.json")


def sign_args(case: dict[str, Any]) -> list[str]:
    args = ["sign", "--token", case["token"], "--timestamp", case["timestamp"], "--nonce", case["nonce"]]
    if case["encrypt"] is not None:
        args += ["--encrypt", case["encrypt"]]
    return args


@pytest.mark.parametrize("case", SIGNATURES, ids=[c["case_id"] for c in SIGNATURES])
def test_sign_matches_the_vectors(cli: Cli, case: dict[str, Any]) -> None:
    result = cli(*sign_args(case))
    assert result.exit_code == 0
    assert result.stdout == case["expected_sha1_hex"] + "\n"


@pytest.mark.parametrize("case", [c for c in SIGNATURES if "sha256_variant" in c][:4],
                         ids=lambda c: c["case_id"])
def test_sign_with_sha256(cli: Cli, case: dict[str, Any]) -> None:
    result = cli(*sign_args(case), "--digest", "sha256", "--json")
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["signature"] == case["sha256_variant"]["value_hex"]


def test_echostr_is_the_fourth_value_of_the_url_check(cli: Cli) -> None:
    by_id = {c["case_id"]: c for c in SIGNATURES}
    case = by_id["S01_doc_verifyurl"]
    result = cli("sign", "--token", case["token"], "--timestamp", case["timestamp"], "--nonce", case["nonce"],
                 "--echostr", case["encrypt"], "--json")
    assert json.loads(result.stdout) == {"ok": True, "signature": case["expected_sha1_hex"], "values": 4}


def test_encrypt_and_echostr_together_is_a_usage_error(cli: Cli) -> None:
    result = cli("sign", "--token", "t", "--timestamp", "1", "--nonce", "2", "--encrypt", "a", "--echostr", "b")
    assert result.exit_code == 2


def test_token_from_the_environment(cli: Cli) -> None:
    case = SIGNATURES[0]
    args = sign_args(case)
    del args[1:3]
    result = cli(*args, env={"WXCALLBACK_TOKEN": case["token"]})
    assert result.stdout.strip() == case["expected_sha1_hex"]


def test_missing_token_is_a_usage_error(cli: Cli) -> None:
    result = cli("sign", "--timestamp", "1", "--nonce", "2")
    assert result.exit_code == 2
    assert "--token" in result.stderr


def test_keygen_prints_a_usable_key(cli: Cli) -> None:
    result = cli("keygen")
    key = result.stdout.strip()
    assert len(key) == 43
    assert len(decode_encoding_aes_key(key)) == 32


def test_keygen_count_gives_distinct_keys(cli: Cli) -> None:
    document = json.loads(cli("keygen", "--count", "5", "--json").stdout)
    assert document["ok"] is True
    assert len(set(document["keys"])) == 5
    assert all(len(decode_encoding_aes_key(k)) == 32 for k in document["keys"])


def test_keygen_count_must_be_positive(cli: Cli) -> None:
    assert cli("keygen", "--count", "0").exit_code == 2
