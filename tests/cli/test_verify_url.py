"""wxcallback verify-url on the official URL-check samples (verify_url.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vectors import by_case
from wxcallback.core import sign

from .conftest import Cli

VERIFY = by_case("verify_url.json")
V01 = VERIFY["V01_doc_sample"]
V08 = VERIFY["V08_robot_empty_receive_id"]
V09 = VERIFY["V09_wrong_receive_id"]


def wecom_args(case: dict[str, Any], *extra: str) -> list[str]:
    return [
        "verify-url", "--token", case["token"], "--key", case["encoding_aes_key"],
        "--msg-signature", case["msg_signature"], "--timestamp", case["timestamp"],
        "--nonce", case["nonce"], "--echostr", case["echostr"], *extra,
    ]


def test_doc_sample_prints_the_decrypted_echostr(cli: Cli) -> None:
    result = cli(*wecom_args(V01, "--receive-id", V01["receive_id"]))
    assert result.exit_code == 0
    assert result.stdout == V01["expected"]["reply"] + "\n"
    assert result.stderr == ""


def test_raw_query_from_a_log_is_form_decoded_once(cli: Cli) -> None:
    result = cli("verify-url", "--token", V01["token"], "--key", V01["encoding_aes_key"],
                 "--receive-id", V01["receive_id"], "--query", V01["raw_query"])
    assert result.exit_code == 0
    assert result.stdout.strip() == V01["expected"]["reply"]


def test_a_whole_url_is_accepted_as_query(cli: Cli) -> None:
    url = "https://example.com/wecom/callback?" + V01["raw_query"]
    result = cli("verify-url", "--token", V01["token"], "--key", V01["encoding_aes_key"],
                 "--receive-id", V01["receive_id"], "--query", url)
    assert result.stdout.strip() == V01["expected"]["reply"]


def test_query_with_unencoded_plus_fails_the_signature_and_says_why(cli: Cli) -> None:
    # The echostr pasted with a literal '+': form decoding turns it into ' '.
    query = (f"msg_signature={V01['msg_signature']}&timestamp={V01['timestamp']}"
             f"&nonce={V01['nonce']}&echostr={V01['echostr']}")
    result = cli("verify-url", "--token", V01["token"], "--key", V01["encoding_aes_key"],
                 "--receive-id", V01["receive_id"], "--query", query)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("-40001 msg_signature does not match")
    assert "'+'" in result.stderr


def test_robot_receive_id_is_the_empty_string(cli: Cli) -> None:
    result = cli(*wecom_args(V08, "--receive-id", ""))
    assert result.exit_code == 0
    assert result.stdout.strip() == V08["expected"]["reply"]


def test_robot_echostr_is_refused_for_a_corp_id(cli: Cli) -> None:
    result = cli(*wecom_args(V08, "--receive-id", "wx5823bf96d3bd56c7"))
    assert result.exit_code == 1
    assert result.stderr.startswith("-40005 receive_id mismatch: the message is for '',")


def test_wrong_receive_id_exits_1_with_code_and_explanation(cli: Cli) -> None:
    result = cli(*wecom_args(V09, "--receive-id", V09["receive_id"]))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "-40005 receive_id mismatch: the message is for wx0000000000000000, "
        "this key is configured for wx5823bf96d3bd56c7\n"
    )
    assert V09["expected"]["error"] == -40005


def test_doc_sample_refused_for_a_robot_names_both_ids(cli: Cli) -> None:
    result = cli(*wecom_args(V01, "--receive-id", ""))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "-40005 receive_id mismatch: the message is for wx5823bf96d3bd56c7, this key is configured for ''"
    )


def test_any_receive_id_skips_the_check_for_diagnosis(cli: Cli) -> None:
    result = cli(*wecom_args(V09, "--any-receive-id", "--json"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True, "echostr": V09["reference_decrypt"]["echostr_plaintext"], "mode": "msg_signature",
        "receive_id": "wx0000000000000000", "key_index": 0,
    }


def test_several_receive_ids_accept_any_of_them(cli: Cli) -> None:
    result = cli(*wecom_args(V01, "--receive-id", "ww0000", "--receive-id", V01["receive_id"]))
    assert result.stdout.strip() == V01["expected"]["reply"]


def test_json_error_shape(cli: Cli) -> None:
    result = cli(*wecom_args(V09, "--receive-id", V09["receive_id"], "--json"))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["code"] == -40005
    assert document["error"].startswith("receive_id mismatch")
    assert result.stderr.startswith("-40005 ")


def test_official_account_plaintext_mode_needs_no_key(cli: Cli) -> None:
    # Official Account GET: echostr is plaintext and answered unchanged.
    token, timestamp, nonce, echostr = "AAAAA", "1714036504", "1514711492", "4375120948345356249"
    result = cli("verify-url", "--token", token, "--signature", "f464b24fc39322e44b38aa78f5edd27bd1441696",
                 "--timestamp", timestamp, "--nonce", nonce, "--echostr", echostr, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "echostr": echostr, "mode": "signature"}


def test_official_account_query_with_signature(cli: Cli) -> None:
    query = f"signature={sign('tok', '17', 'n')}&echostr=abc%2Bdef&timestamp=17&nonce=n"
    result = cli("verify-url", "--token", "tok", "--query", query)
    assert result.exit_code == 0
    assert result.stdout == "abc+def\n"


def test_official_account_wrong_token(cli: Cli) -> None:
    result = cli("verify-url", "--token", "other", "--signature", "f464b24fc39322e44b38aa78f5edd27bd1441696",
                 "--timestamp", "1714036504", "--nonce", "1514711492", "--echostr", "4375120948345356249")
    assert result.exit_code == 1
    assert result.stderr == "-40001 signature does not match: check the Token\n"


def test_sha256_digest_for_gateways(cli: Cli) -> None:
    signature = sign("tok", "17", "n", digest="sha256")
    result = cli("verify-url", "--token", "tok", "--signature", signature, "--timestamp", "17",
                 "--nonce", "n", "--echostr", "e", "--digest", "sha256")
    assert result.stdout == "e\n"


def test_unknown_digest_is_a_compute_signature_error(cli: Cli) -> None:
    result = cli("verify-url", "--token", "tok", "--signature", "x", "--timestamp", "17",
                 "--nonce", "n", "--echostr", "e", "--digest", "crc32")
    assert result.exit_code == 1
    assert result.stderr.startswith("-40003 digest 'crc32' is not supported")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timestamp", "1", "--nonce", "2", "--echostr", "e"], "missing --msg-signature"),
        (["--msg-signature", "a", "--signature", "b", "--timestamp", "1", "--nonce", "2", "--echostr", "e"],
         "not both"),
        (["--signature", "a", "--timestamp", "1", "--nonce", "2"], "missing --echostr"),
        (["--msg-signature", "a", "--timestamp", "1", "--nonce", "2", "--echostr", "e"], "--key"),
        (["--query", "timestamp=1&timestamp=2"], "timestamp appears more than once"),
        (["--query", "signature=a&timestamp=1&nonce=2&echostr=e", "--nonce", "3"], "both in --query"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli("verify-url", "--token", "tok", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_receive_id_is_required_in_wecom_mode(cli: Cli) -> None:
    result = cli(*wecom_args(V01))
    assert result.exit_code == 2
    assert "--receive-id is required" in result.stderr


def test_any_receive_id_and_receive_id_exclude_each_other(cli: Cli) -> None:
    result = cli(*wecom_args(V01, "--receive-id", V01["receive_id"], "--any-receive-id"))
    assert result.exit_code == 2
