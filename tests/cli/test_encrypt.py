"""wxcallback encrypt reproduces the official envelopes (encrypt.json E01) byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vectors import load

from .conftest import DOC_CORP_ID, DOC_KEY, DOC_TOKEN, Cli

E01 = [e for e in load("encrypt.json") if e["case_id"].startswith("E01")]


def vector_args(vector: dict[str, Any], *extra: str) -> list[str]:
    return [
        "encrypt", "--token", vector["token"], "--key", vector["encoding_aes_key"],
        "--receive-id", vector["receive_id"], "--nonce", vector["nonce"], "--timestamp", vector["timestamp"],
        "--random-hex", vector["random_hex"], "--format", vector["format"], *extra,
    ]


@pytest.mark.parametrize("vector", E01, ids=[e["impl"] for e in E01])
def test_random_hex_reproduces_the_vector(cli: Cli, vector: dict[str, Any]) -> None:
    result = cli(*vector_args(vector, vector["plaintext"]))
    assert result.exit_code == 0
    envelope = result.stdout.removesuffix("\n")
    if vector["format"] == "xml" or vector["impl"] == "wework-go-json":
        # XML (Python SDKs, wechatpy) and compact JSON (Go SDK) are byte-identical.
        assert envelope == vector["envelope"]
    else:
        assert json.loads(envelope) == json.loads(vector["envelope"])


@pytest.mark.parametrize("vector", E01, ids=[e["impl"] for e in E01])
def test_reply_from_stdin(cli: Cli, vector: dict[str, Any]) -> None:
    from_stdin = cli(*vector_args(vector), input=vector["plaintext"].encode())
    assert from_stdin.exit_code == 0
    assert vector["ciphertext"] in from_stdin.stdout
    assert from_stdin.stdout == cli(*vector_args(vector, vector["plaintext"])).stdout


def test_json_output_has_the_four_values(cli: Cli) -> None:
    vector = E01[0]
    result = cli(*vector_args(vector, "--json", vector["plaintext"]))
    assert json.loads(result.stdout) == {
        "ok": True, "envelope": vector["envelope"], "encrypt": vector["ciphertext"],
        "msg_signature": vector["signature"], "timestamp": vector["timestamp"], "nonce": vector["nonce"],
    }


def test_encrypted_reply_decrypts_back(cli: Cli) -> None:
    sealed = json.loads(cli("encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", "",
                            "--nonce", "n1", "--format", "json", "--json", "你好, robot").stdout)
    assert sealed["timestamp"].isdigit()
    result = cli("decrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", "", "--format", "json",
                 "--msg-signature", sealed["msg_signature"], "--timestamp", sealed["timestamp"],
                 "--nonce", "n1", sealed["envelope"])
    assert result.stdout == "你好, robot\n"


def test_fresh_random_prefix_each_time(cli: Cli) -> None:
    args = ["encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", DOC_CORP_ID, "--nonce", "1",
            "--timestamp", "1", "hello"]
    assert cli(*args).stdout != cli(*args).stdout


def test_official_account_json_envelope_has_a_numeric_timestamp(cli: Cli) -> None:
    result = cli("encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", DOC_CORP_ID,
                 "--nonce", "415670741", "--timestamp", "1713424427", "--format", "oa-json", "{}")
    document = json.loads(result.stdout)
    assert sorted(document) == ["Encrypt", "MsgSignature", "Nonce", "TimeStamp"]
    assert document["TimeStamp"] == 1713424427


def test_bad_timestamp_is_a_render_error(cli: Cli) -> None:
    result = cli("encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", DOC_CORP_ID,
                 "--nonce", "1", "--timestamp", "soon", "hello")
    assert result.exit_code == 1
    assert result.stderr == "-40011 timestamp must be decimal digits, not 'soon'\n"


def test_reply_that_is_not_utf8_is_an_encrypt_error(cli: Cli) -> None:
    result = cli("encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", DOC_CORP_ID,
                 "--nonce", "1", "--json", input=b"caf\xe9")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"ok": False, "code": -40006, "error": "reply is not valid UTF-8 (byte 3)"}


@pytest.mark.parametrize("random_hex", ["00" * 15, "zz" * 16, "00" * 17, " " + "0" * 31])
def test_random_hex_must_be_16_bytes_of_hex(cli: Cli, random_hex: str) -> None:
    result = cli("encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--receive-id", DOC_CORP_ID,
                 "--nonce", "1", "--random-hex", random_hex, "hello")
    assert result.exit_code == 2
    assert "32 hexadecimal digits" in result.stderr


def test_receive_id_is_required(cli: Cli) -> None:
    result = cli("encrypt", "--token", DOC_TOKEN, "--key", DOC_KEY, "--nonce", "1", "hello")
    assert result.exit_code == 2
    assert "--receive-id" in result.stderr
