"""The official samples that are not in the vector files (the OA encryption doc's JSON example)."""

from __future__ import annotations

import json

import pytest

from wxcallback import MessageCrypto, SignatureError

OA_TOKEN = "AAAAA"
OA_KEY = "A" * 43
OA_APPID = "wxba5fad812f8e6fb9"
OA_ENCRYPT = (
    "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXU"
    "nnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsj"
    "LY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
)


@pytest.fixture
def oa() -> MessageCrypto:
    return MessageCrypto(OA_TOKEN, OA_KEY, OA_APPID, envelope="oa-json")


def test_oa_security_mode_json_post_decrypts(oa: MessageCrypto) -> None:
    body = json.dumps({"ToUserName": "gh_97417a04a28d", "Encrypt": OA_ENCRYPT})
    message = oa.decrypt(body, "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3", "1714112445", "415670741")
    assert json.loads(message.text)["debug_str"] == "hello world"
    assert message.random.hex() == "a8eedb185eb2fecf".encode().hex()
    # The 3-value signature on the same URL is valid too.
    oa.verify_signature("6c5c811b55cc85e0e1b54100749188c20beb3f5d", "1714112445", "415670741")


def test_oa_json_reply_reproduces_the_documented_envelope(oa: MessageCrypto) -> None:
    envelope = oa.encrypt('{"demo_resp":"good luck"}', "415670741", timestamp=1713424427,
                          random=b"707722b803182950")
    assert json.loads(envelope) == {
        "Encrypt": "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==",
        "MsgSignature": "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1",
        "TimeStamp": 1713424427,
        "Nonce": "415670741",
    }


def test_oa_plaintext_url_and_post_signatures(oa: MessageCrypto) -> None:
    assert oa.verify_plain_url("f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711492",
                               "4375120948345356249") == "4375120948345356249"
    oa.verify_signature("899cf89e464efb63f54ddac96b0a0a235f53aa78", "1714037059", "486452656")
    with pytest.raises(SignatureError):
        oa.verify_signature("899cf89e464efb63f54ddac96b0a0a235f53aa78", "1714037059", "486452657")


def test_wecom_doc_sample_decrypt() -> None:
    crypto = MessageCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
    body = (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
        "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
        "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+Ltw"
        "Gc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2"
        "t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDA"
        "Ve0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    )
    message = crypto.decrypt(body, "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149")
    assert "<Content><![CDATA[hello]]></Content>" in message.text
    assert message.random == b"0960688932c47ef1"
