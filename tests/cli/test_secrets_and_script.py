"""Secrets stay out of every output; the installed console script behaves like the in-process CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.vectors import by_case

from .conftest import Cli

V01 = by_case("verify_url.json")["V01_doc_sample"]
V09 = by_case("verify_url.json")["V09_wrong_receive_id"]
SCRIPT = Path(sys.executable).parent / "wxcallback"


def test_token_and_key_from_the_environment(cli: Cli) -> None:
    env = {"WXCALLBACK_TOKEN": V01["token"], "WXCALLBACK_ENCODING_AES_KEY": V01["encoding_aes_key"]}
    result = cli("verify-url", "--receive-id", V01["receive_id"], "--query", V01["raw_query"], env=env)
    assert result.exit_code == 0
    assert result.stdout.strip() == V01["expected"]["reply"]


def test_errors_never_show_the_token_or_key(cli: Cli) -> None:
    env = {"WXCALLBACK_TOKEN": "SecretToken123", "WXCALLBACK_ENCODING_AES_KEY": V01["encoding_aes_key"]}
    for args in (
        ["verify-url", "--receive-id", V01["receive_id"], "--query", V01["raw_query"]],
        ["decrypt", "--receive-id", "x", "--msg-signature", "a", "--timestamp", "1", "--nonce", "2", "<xml/>"],
        ["decrypt", "--receive-id", "x", "--json", "--msg-signature", "a", "--timestamp", "1", "--nonce", "2",
         "--format", "json", "{}"],
        ["encrypt", "--receive-id", "x", "--nonce", "1", "--timestamp", "x", "hi"],
        ["verify-url", "--msg-signature", "a"],
    ):
        result = cli(*args, env=env)
        assert result.exit_code in (1, 2)
        output = result.stdout + result.stderr
        assert "SecretToken123" not in output
        assert V01["encoding_aes_key"] not in output


def test_help_does_not_show_secret_values(cli: Cli) -> None:
    env = {"WXCALLBACK_TOKEN": "SecretToken123"}
    result = cli("decrypt", "--help", env=env)
    assert result.exit_code == 0
    assert "WXCALLBACK_TOKEN" in result.stdout
    assert "SecretToken123" not in result.stdout


def test_installed_console_script() -> None:
    assert SCRIPT.is_file(), f"the wxcallback console script is not installed at {SCRIPT}"
    ok = subprocess.run(
        [str(SCRIPT), "verify-url", "--token", V01["token"], "--key", V01["encoding_aes_key"],
         "--receive-id", V01["receive_id"], "--query", V01["raw_query"]],
        capture_output=True, check=False, timeout=60,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, V01["expected"]["reply"].encode() + b"\n", b"")

    refused = subprocess.run(
        [str(SCRIPT), "verify-url", "--token", V09["token"], "--key", V09["encoding_aes_key"],
         "--receive-id", V09["receive_id"], "--msg-signature", V09["msg_signature"],
         "--timestamp", V09["timestamp"], "--nonce", V09["nonce"], "--echostr", V09["echostr"]],
        capture_output=True, check=False, timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stdout == b""
    assert refused.stderr == (b"-40005 receive_id mismatch: the message is for wx0000000000000000, "
                              b"this key is configured for wx5823bf96d3bd56c7\n")
