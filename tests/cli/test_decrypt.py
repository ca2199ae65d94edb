"""wxcallback decrypt on the official DecryptMsg sample (vector E17)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vectors import load
from wxcallback.core import generate_encoding_aes_key

from .conftest import Cli

E17 = next(e for e in load("encrypt.json") if e["vector_id"] == "E17_official_doc_decryptmsg_xml/wework-python3-xml")
# A request as WeCom posts it: ToUserName and AgentID beside the Encrypt value.
E17_BODY = (f"<xml><ToUserName><![CDATA[{E17['receive_id']}]]></ToUserName>"
            f"<Encrypt><![CDATA[{E17['ciphertext']}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
DOC_PLAINTEXT = E17["plaintext"]


def e17_args(*extra: str) -> list[str]:
    return [
        "decrypt", "--token", E17["token"], "--key", E17["encoding_aes_key"],
        "--msg-signature", E17["official_expected_signature"], "--timestamp", E17["timestamp"],
        "--nonce", E17["nonce"], *extra,
    ]


def test_official_sample_decrypts_from_an_argument(cli: Cli) -> None:
    result = cli(*e17_args("--receive-id", E17["receive_id"], E17_BODY))
    assert result.exit_code == 0
    assert result.stdout == DOC_PLAINTEXT + "\n"
    assert "<Content><![CDATA[hello]]></Content>" in result.stdout


@pytest.mark.parametrize("body_argument", [[], ["-"]], ids=["no-argument", "dash"])
def test_body_is_read_from_stdin(cli: Cli, body_argument: list[str]) -> None:
    result = cli(*e17_args("--receive-id", E17["receive_id"], *body_argument), input=E17_BODY.encode())
    assert result.exit_code == 0
    assert result.stdout == DOC_PLAINTEXT + "\n"


def test_reply_envelope_is_a_body_too(cli: Cli) -> None:
    result = cli(*e17_args("--receive-id", E17["receive_id"]), input=E17["envelope"])
    assert result.stdout == DOC_PLAINTEXT + "\n"


def test_json_output_has_plaintext_receive_id_and_key_index(cli: Cli) -> None:
    result = cli(*e17_args("--receive-id", E17["receive_id"], "--json", E17_BODY))
    assert json.loads(result.stdout) == {
        "ok": True, "plaintext": DOC_PLAINTEXT, "receive_id": E17["receive_id"], "key_index": 0,
    }


def test_previous_key_opens_a_message_after_rotation(cli: Cli) -> None:
    args = e17_args("--receive-id", E17["receive_id"], "--json", E17_BODY)
    args[args.index("--key") + 1] = generate_encoding_aes_key()
    result = cli(*args, "--previous-key", E17["encoding_aes_key"])
    assert json.loads(result.stdout)["key_index"] == 1
    assert json.loads(result.stdout)["plaintext"] == DOC_PLAINTEXT


def test_previous_keys_from_the_environment(cli: Cli) -> None:
    args = e17_args("--receive-id", E17["receive_id"], "--json", E17_BODY)
    args[args.index("--key") + 1] = generate_encoding_aes_key()
    env = {"WXCALLBACK_PREVIOUS_ENCODING_AES_KEYS": f"{generate_encoding_aes_key()} {E17['encoding_aes_key']}"}
    result = cli(*args, env=env)
    assert json.loads(result.stdout)["key_index"] == 2


def test_query_supplies_the_signature_values(cli: Cli) -> None:
    query = (f"/callback?msg_signature={E17['official_expected_signature']}&timestamp={E17['timestamp']}"
             f"&nonce={E17['nonce']}")
    result = cli("decrypt", "--token", E17["token"], "--key", E17["encoding_aes_key"],
                 "--receive-id", E17["receive_id"], "--query", query, E17_BODY)
    assert result.stdout == DOC_PLAINTEXT + "\n"


def test_wrong_receive_id(cli: Cli) -> None:
    result = cli(*e17_args("--receive-id", "", E17_BODY))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "-40005 receive_id mismatch: the message is for wx5823bf96d3bd56c7, this key is configured for ''"
    )


def test_tampered_body_fails_the_signature(cli: Cli) -> None:
    tampered = E17_BODY.replace("RypEvHKD8Q", "RypEvHKD8R")
    result = cli(*e17_args("--receive-id", E17["receive_id"], tampered))
    assert result.exit_code == 1
    assert result.stderr.startswith("-40001 ")


def test_wrong_key_is_an_illegal_buffer(cli: Cli) -> None:
    args = e17_args("--receive-id", E17["receive_id"], E17_BODY)
    args[args.index("--key") + 1] = "A" * 43
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("-40008 ")


def test_malformed_key_is_an_illegal_aes_key(cli: Cli) -> None:
    args = e17_args("--receive-id", E17["receive_id"], E17_BODY)
    args[args.index("--key") + 1] = "short"
    result = cli(*args, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["code"] == -40004
    assert "short" not in result.stdout + result.stderr


def test_plaintext_body_is_a_parse_error(cli: Cli) -> None:
    result = cli(*e17_args("--receive-id", E17["receive_id"], "<xml><Content>hi</Content></xml>"))
    assert result.exit_code == 1
    assert result.stderr == "-40002 body has no Encrypt element: is this channel in plaintext mode?\n"


def test_json_format_takes_a_json_body(cli: Cli) -> None:
    body = json.dumps({"tousername": E17["receive_id"], "encrypt": E17["ciphertext"], "agentid": 218})
    result = cli(*e17_args("--receive-id", E17["receive_id"], "--format", "json", body))
    assert result.stdout == DOC_PLAINTEXT + "\n"


def test_official_account_json_sample(cli: Cli) -> None:
    # The OA encryption doc's worked example: a JSON-format security-mode POST.
    body = ('{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8'
            'khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7Ggiav'
            'iNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cP'
            'DrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="}')
    result = cli("decrypt", "--token", "AAAAA", "--key", "A" * 43, "--receive-id", "wxba5fad812f8e6fb9",
                 "--format", "oa-json", "--query",
                 "signature=6c5c811b55cc85e0e1b54100749188c20beb3f5d&timestamp=1714112445&nonce=415670741"
                 "&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes"
                 "&msg_signature=046e02f8204d34f8ba5fa3b1db94908f3df2e9b3", "--json", body)
    assert result.exit_code == 0
    assert json.loads(json.loads(result.stdout)["plaintext"])["debug_str"] == "hello world"


def test_body_that_is_not_utf8_is_an_error_not_a_crash(cli: Cli) -> None:
    result = cli(*e17_args("--receive-id", E17["receive_id"]), input=b"<xml>\xff\xfe</xml>")
    assert result.exit_code == 1
    assert result.stderr.startswith("-40002 ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--receive-id", "x", "--msg-signature", "a", "--timestamp", "1", "<xml/>"], "missing --nonce"),
        (["--msg-signature", "a", "--timestamp", "1", "--nonce", "2", "<xml/>"], "--receive-id is required"),
        (["--receive-id", "x", "--msg-signature", "a", "--timestamp", "1", "--nonce", "2", "--format", "yaml",
          "<xml/>"], "'yaml' is not one of"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli("decrypt", "--token", "t", "--key", "A" * 43, *args)
    assert result.exit_code == 2
    assert message in result.stderr


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), signature=st.text(max_size=50), envelope=st.sampled_from(["xml", "json"]))
def test_any_input_ends_in_an_official_code_never_a_traceback(body: bytes, signature: str, envelope: str) -> None:
    result = Cli()("decrypt", "--token", E17["token"], "--key", E17["encoding_aes_key"],
                   "--receive-id", E17["receive_id"], "--msg-signature", signature, "--timestamp", E17["timestamp"],
                   "--nonce", E17["nonce"], "--format", envelope, "--json", input=body)
    assert result.exit_code in (1, 2)
    if result.exit_code == 1:
        code = json.loads(result.stdout)["code"]
        assert -40011 <= code <= -40001
        assert result.stderr.startswith(f"{code} ")
