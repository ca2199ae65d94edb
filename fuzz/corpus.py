"""Seed inputs for every target, from real callbacks.

The seeds come from the WXBizMsgCrypt test vectors in tests/vectors/ (envelopes, ciphertexts, decrypted
blocks, URL checks, official samples, each error case) and from callbacks we seal
ourselves with ``MessageCrypto.encrypt_reply`` for every channel shape, so the fuzzer
starts from inputs that pass most checks and mutates its way into the corners.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wxcallback.core import EncryptedReply, MessageCrypto
from wxcallback.core.frame import pack_frame
from wxcallback.core.padding import pad

from .inputs import pack
from .targets import APPID, KEY, OLD_KEY, TOKEN, crypto_variants

__all__ = ["DEFAULT_VECTORS", "SAMPLE_MESSAGES", "seeds", "write_corpus"]

# The vectors the test suite uses; WXCALLBACK_VECTORS points at another copy.
DEFAULT_VECTORS = Path(os.environ.get("WXCALLBACK_VECTORS") or Path(__file__).resolve().parents[1] / "tests" / "vectors")

# Callbacks as the platforms send them, one of each common shape.
SAMPLE_MESSAGES: dict[str, list[str]] = {
    "official-account": [
        "<xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[hello 你好]]></Content><MsgId>1234567890123456</MsgId></xml>",
        "<xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_1]]></EventKey>"
        "<Ticket><![CDATA[TICKET]]></Ticket></xml>",
        "<xml><ToUserName>gh_123</ToUserName><FromUserName>o_user</FromUserName><CreateTime>1700000000</CreateTime>"
        "<MsgType>location</MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
        "<Scale>20</Scale><Label>place</Label><MsgId>1234567890123457</MsgId></xml>",
        '{"ToUserName":"gh_123","FromUserName":"o_user","CreateTime":1700000000,"MsgType":"text",'
        '"Content":"json mode","MsgId":1234567890123458}',
    ],
    "wecom-app": [
        f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>"
        "<MsgId>4561255354251345929</MsgId><AgentID>1000002</AgentID></xml>",
        f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_contact]]></Event><ChangeType>update_user</ChangeType><UserID>zhangsan</UserID>"
        "<Department><![CDATA[1,2,3]]></Department><ExtAttr><Item><Name>attr</Name><Type>0</Type>"
        "<Text><Value>v</Value></Text></Item></ExtAttr></xml>",
        "<xml><SuiteId><![CDATA[ww4asffe9xxx4c0f4c]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>"
        "<TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[asdfasfdasdfasdf]]></SuiteTicket></xml>",
        f"<xml><ToUserName>{APPID}</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1700000000"
        "</CreateTime><MsgType>event</MsgType><Event>template_card_event</Event><EventKey>btn</EventKey>"
        "<TaskId>task</TaskId><CardType>button_interaction</CardType><ResponseCode>code</ResponseCode>"
        "<AgentID>1</AgentID></xml>",
    ],
    "wecom-robot": [
        json.dumps({"msgid": "m1", "aibotid": "bot1", "chattype": "single", "from": {"userid": "zhangsan"},
                    "response_url": "https://example.invalid/r", "msgtype": "text", "text": {"content": "@bot hi"}}),
        json.dumps({"msgid": "m2", "aibotid": "bot1", "chatid": "group1", "chattype": "group",
                    "from": {"userid": "lisi"}, "msgtype": "mixed",
                    "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "look"}},
                                           {"msgtype": "image", "image": {"url": "https://example.invalid/i"}}]}}),
        json.dumps({"msgid": "m3", "aibotid": "bot1", "chattype": "single", "from": {"userid": "zhangsan"},
                    "msgtype": "stream", "stream": {"id": "stream-1"}}),
        json.dumps({"msgid": "m4", "aibotid": "bot1", "chattype": "single", "from": {"userid": "zhangsan"},
                    "msgtype": "event", "event": {"eventtype": "enter_chat"}}),
        json.dumps({"msgid": "m5", "aibotid": "bot1", "chattype": "single", "from": {"userid": "zhangsan"},
                    "msgtype": "event", "event": {"eventtype": "template_card_event",
                                                  "template_card_event": {"card_type": "button_interaction",
                                                                          "event_key": "k", "task_id": "t"}}}),
    ],
}


def _load(vectors: Path, name: str) -> list[dict[str, Any]]:
    path = vectors / name
    if not path.is_file():
        # Seeds without the vectors would quietly fuzz far less of the protocol.
        raise FileNotFoundError(f"test vectors not found at {path} (they ship in tests/vectors/)")
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _b(value: object) -> bytes:
    return str(value).encode("utf-8", "surrogatepass")


def _sealed(vectors: Path) -> Iterator[tuple[int, MessageCrypto, EncryptedReply]]:
    """(variant index, crypto, sealed reply) for our own valid callbacks."""
    plaintexts = [m for ms in SAMPLE_MESSAGES.values() for m in ms]
    plaintexts += sorted({v["plaintext"] for v in _load(vectors, "encrypt.json")})[:12]
    for index, crypto in enumerate(crypto_variants()):
        for number, plaintext in enumerate(plaintexts[:8] if index else plaintexts):
            nonce, timestamp = f"nonce{number}", str(1700000000 + number)
            receive_id = crypto.receive_id.reply_id if crypto.receive_id.reply_id is not None else APPID
            yield index, crypto, crypto.encrypt_reply(plaintext, nonce, timestamp=timestamp, receive_id=receive_id,
                                                      random=hashlib.sha256(plaintext.encode()).digest()[:16])


def _frames(vectors: Path) -> list[bytes]:
    """Decrypted blocks: the vectors' (including the malformed ones) and a few of our own."""
    blocks = [bytes.fromhex(v["plaintext_block_hex"]) for v in _load(vectors, "encrypt.json")
              if v.get("plaintext_block_hex")][:20]
    blocks += [bytes.fromhex(v["aes_decrypted_block_hex"]) for v in _load(vectors, "decrypt_errors.json")
               if v.get("aes_decrypted_block_hex")]
    for message, receive_id in ((b"hello", APPID.encode()), (b"", b""), ("你好".encode(), b"ww1436e0e65a779aee"),
                                (b"x" * 200, APPID.encode())):
        blocks.append(pack_frame(message, receive_id, b"0123456789abcdef"))
    return blocks


def seeds(target: str, vectors: Path = DEFAULT_VECTORS) -> list[bytes]:
    """The seed inputs for ``target``."""
    encrypt_vectors = _load(vectors, "encrypt.json")
    error_vectors = [v for v in _load(vectors, "decrypt_errors.json") if "msg_signature" in v]
    url_vectors = _load(vectors, "verify_url.json")
    xml_bodies = [_b(v["envelope"]) for v in encrypt_vectors if v["format"] == "xml"][:30]
    xml_bodies += [_b(v["xml_body"]) for v in error_vectors if v.get("xml_body")]
    json_bodies = [_b(v["envelope"]) for v in encrypt_vectors if v["format"] == "json"][:30]
    json_bodies += [_b(v["json_body"]) for v in error_vectors if v.get("json_body")]
    sealed = list(_sealed(vectors))
    xml_bodies += [reply.render().encode() for _, c, reply in sealed if c.envelope.value == "xml"]
    json_bodies += [reply.render().encode() for _, c, reply in sealed if c.envelope.value != "xml"]
    frames = _frames(vectors)
    out: list[bytes] = []
    if target == "envelope-xml":
        out = [pack(how, rest=body) for body in xml_bodies for how in (0, 1)]
    elif target == "envelope-json":
        out = [pack(0x80 | how, rest=body) for body in json_bodies for how in (0, 1)]
        out += [pack(0, rest=body) for body in json_bodies if b'"Encrypt"' in body]
    elif target == "safexml":
        texts = [_b(v["plaintext"]) for v in encrypt_vectors if v["format"] == "xml"][:20] + xml_bodies[:20]
        texts += [m.encode() for p in ("official-account", "wecom-app") for m in SAMPLE_MESSAGES[p]]
        out = [pack(0, 63, rest=text) for text in texts]
    elif target == "decrypt":
        for v in error_vectors:
            parts = (_b(v["msg_signature"]), _b(v["timestamp"]), _b(v["nonce"]))
            if v.get("xml_body"):
                out.append(pack(0, 0, 0, *parts, rest=_b(v["xml_body"])))
            if v.get("json_body"):
                out.append(pack(1, 0, 1, *parts, rest=_b(v["json_body"])))
        for index, _, reply in sealed:
            out.append(pack(index, 0, 0, reply.msg_signature.encode(), reply.timestamp.encode(),
                            reply.nonce.encode(), rest=reply.render().encode()))
    elif target == "ciphertext":
        for v in encrypt_vectors[:40] + error_vectors:
            ciphertext = v.get("ciphertext") or v.get("encrypt") or ""
            out.append(pack(0, 0, 0, _b(v["timestamp"]), _b(v["nonce"]), rest=_b(ciphertext)))
        for index, block in enumerate(frames):
            out.append(pack(index % 8, 2, index % 2, b"1700000000", b"nonce", rest=block))
        # padding after a whole quad, which Python 3.11's strict base64 lets through
        out.append(pack(0, 0, 0, b"1700000000", b"nonce", rest=base64.b64encode(bytes(96)) + b"==="))
    elif target == "verify-url":
        for v in url_vectors:
            out.append(pack(0, 0, 0, _b(v["msg_signature"]), _b(v["timestamp"]), _b(v["nonce"]),
                            rest=_b(v["echostr"])))
        for block in frames[:12]:
            out.append(pack(1, 2 << 3, 0, b"", b"1409659589", b"263014780", rest=block))
        out += [pack(6, 0, 0, b"", b"1409659589", b"263014780", rest=b"1616140317555161061"),
                pack(3, 0, 0, b"5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", b"1409659589", b"263014780",
                     rest=b"echo")]
    elif target == "media":
        crypto = MessageCrypto(TOKEN, KEY, APPID)
        for plain in (b"", b"GIF89a" + bytes(40), b"%PDF-1.4\n" * 9):
            padded = pad(plain)
            out.append(pack(4, 0, b"", rest=padded))
            out.append(pack(0, 0, b"", rest=crypto.keys.current.cipher.encrypt_block(padded)))
        out += [pack(1, 1, OLD_KEY.encode(), rest=bytes(64)), pack(1, 1, (KEY + "=").encode(), rest=bytes(32)),
                pack(2, 0, bytes(range(32)), rest=bytes(96))]
    elif target.startswith("message-"):
        platform = target.removeprefix("message-")
        texts = [m.encode() for m in SAMPLE_MESSAGES[platform]]
        texts += [_b(v["plaintext"]) for v in encrypt_vectors
                  if (v["format"] == "json") == (platform == "wecom-robot")][:20]
        out = [pack(how, rest=text) for text in texts for how in (0, 1)]
    elif target == "http":
        names = ("wecom", "robot", "oa")
        for pick, name in enumerate(names):
            platform = {"wecom": "wecom-app", "robot": "wecom-robot", "oa": "official-account"}[name]
            for text in SAMPLE_MESSAGES[platform]:
                out.append(pack(1, pick, 0, b"n1", b"", rest=text.encode()))
            out.append(pack(3, pick, 1, b"n2", b"", rest=b"1616140317555161061"))
        for body in xml_bodies[:10] + json_bodies[:10]:
            out.append(pack(2, 0 if body.startswith(b"<") else 1, 1, b"n3", b"", rest=body))
            out.append(pack(0, 0, 0, b"msg_signature=x&timestamp=1&nonce=2", b"echostr=abc", rest=body))
        for text in SAMPLE_MESSAGES["official-account"][:3]:
            out.append(pack(4, 0, 0, b"n4", b"openid=o_user", rest=text.encode()))
            out.append(pack(5, 0, 1, b"n5", b"", rest=text.encode()))
    else:
        raise ValueError(f"unknown target {target!r}")
    return list(dict.fromkeys(out))


def write_corpus(target: str, directory: Path, vectors: Path = DEFAULT_VECTORS) -> int:
    """Write the seeds of ``target`` into ``directory`` (one file each); the count written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in seeds(target, vectors):
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        written += 1
    return written

