"""Judging an endpoint's answers the way the platform does.

Every function returns :class:`Check` values instead of raising: a wrong answer is a
finding. The order of the checks follows the platform's own processing: HTTP status,
time, the envelope, its signature, decryption, receive_id, the echoed nonce, and
last the reply message itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wxcallback.channel import ChannelKind, Mode
from wxcallback.core import ReceiveIdError, WXCallbackError, check_signature
from wxcallback.core.safexml import parse_xml

from .errors import SimulatorError
from .report import Check
from .scenarios import UPDATE_TEMPLATE_CARD, Callback
from .target import DataFormat, Target

__all__ = [
    "NO_REPLY_BODIES",
    "ReplyReading",
    "check_deadline",
    "check_status",
    "judge_reply",
    "judge_url_answer",
    "open_reply",
    "stream_state",
]

# Both stop the platform from retrying and need no encryption (OA §2.4, WeCom: empty 200).
NO_REPLY_BODIES = (b"", b"success")
# Robot stream content limit (101031).
STREAM_CONTENT_LIMIT = 20480


def _show(data: bytes | str, limit: int = 60) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_status(status: int | None, error: str | None = None) -> Check:
    if status is None:
        return Check("status", False, error or "no answer")
    if status != 200:
        return Check("status", False, f"HTTP {status}, expected 200 (any other status counts as a failure and is retried)")
    return Check("status", True, "200")


def check_deadline(latency: float, deadline: float) -> Check:
    if latency > deadline:
        return Check("deadline", False, f"answered in {latency:.3f} s, after the {deadline:g} s deadline "
                                        "(the platform has already dropped the connection)")
    return Check("deadline", True, f"{latency:.3f} s ≤ {deadline:g} s")


def judge_url_answer(target: Target, expected: str, body: bytes, encrypted_echostr: str | None = None) -> Check:
    """The URL check answer must be the echostr plaintext, verbatim: no quotes, BOM or newline."""
    wanted = expected.encode()
    if body == wanted:
        return Check("echostr", True, "echostr answered verbatim")
    if body.startswith(b"\xef\xbb\xbf"):
        why = "the answer starts with a UTF-8 BOM"
    elif body.strip() == wanted:
        why = "the answer has whitespace or a newline around the echostr"
    elif body.strip(b"\"'") == wanted or body.strip().strip(b"\"'") == wanted:
        why = "the answer is quoted"
    elif encrypted_echostr is not None and body.strip() == encrypted_echostr.encode():
        why = "the answer is the still-encrypted echostr: decrypt it first"
    elif not body:
        why = "the answer is empty"
    elif wanted in body:
        why = f"the echostr is wrapped in other text ({_show(body)})"
    else:
        why = f"the answer {_show(body)} is not the echostr {expected!r}"
    return Check("echostr", False, why)


@dataclass
class ReplyReading:
    """What a reply said: the checks, its plaintext, and the parsed message."""

    checks: list[Check] = field(default_factory=list)
    plaintext: str | None = None
    document: Any = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def judge_reply(target: Target, callback: Callback, request_nonce: str, body: bytes) -> ReplyReading:
    """Read and judge the body answering ``callback``."""
    reading = ReplyReading()
    if callback.success_only:
        # Suite instructions (doc 90628) and component notices: "success", nothing else.
        passed = body == b"success"
        reading.checks.append(Check("reply", passed, "success" if passed else
                                    f"a {callback.name} must be answered with the literal success, not {_show(body)}"))
        return reading
    if body in NO_REPLY_BODIES:
        what = "empty body" if not body else "success"
        if callback.reply_required:
            reading.checks.append(Check("reply", False, f"no reply ({what}): a {callback.name} must be answered"))
        else:
            reading.checks.append(Check("reply", True, f"no reply ({what})"))
        return reading
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        reading.checks.append(Check("reply", False, f"the reply is not UTF-8 (byte {exc.start})"))
        return reading
    if text.startswith("\ufeff"):
        reading.checks.append(Check("reply", False, "the reply starts with a UTF-8 BOM"))
        return reading
    if target.encrypts:
        envelope = _read_envelope(target, text)
        if isinstance(envelope, Check):
            if target.mode is Mode.COMPATIBLE and envelope.name == "plain":
                # Compatibility mode accepts a plaintext reply as well (OA FAQ).
                _judge_message(target, callback, text, reading)
                return reading
            if envelope.name == "plain":
                envelope = Check("envelope", False, f"the reply is not an encrypted envelope: {envelope.detail}")
            reading.checks.append(envelope)
            return reading
        plaintext = _open_envelope(target, envelope, request_nonce, reading)
        if plaintext is None:
            return reading
        text = plaintext
    _judge_message(target, callback, text, reading)
    return reading


def open_reply(target: Target, body: bytes, request_nonce: str | None = None) -> str:
    """The plaintext of an encrypted reply, opened as the platform opens it (envelope, signature,
    decryption, receive_id, and the echoed nonce when ``request_nonce`` is given); a
    SimulatorError says which of those fails."""
    envelope = _read_envelope(target, body.decode("utf-8", "replace"))
    if isinstance(envelope, Check):
        raise SimulatorError(f"{envelope.name}: {envelope.detail}")
    reading = ReplyReading()
    plaintext = _open_envelope(target, envelope, envelope[3] if request_nonce is None else request_nonce, reading)
    if plaintext is None:
        failed = next(check for check in reading.checks if not check.passed)
        raise SimulatorError(f"{failed.name}: {failed.detail}")
    return plaintext


# -- envelopes ------------------------------------------------------------------------

_XML_FIELDS = ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")
_ROBOT_FIELDS = ("encrypt", "msgsignature", "timestamp", "nonce")


def _read_envelope(target: Target, text: str) -> tuple[str, str, str, str] | Check:
    """(encrypt, signature, timestamp, nonce), a Check("plain") when there is no Encrypt at all, or a failure."""
    platform_names = _ROBOT_FIELDS if target.platform is ChannelKind.WECOM_ROBOT else _XML_FIELDS
    if target.data_format is DataFormat.XML:
        try:
            root = parse_xml(text, what="reply")
        except WXCallbackError as exc:
            return Check("envelope", False, str(exc))
        children = {child.tag: child for child in root.children}
        if "Encrypt" not in children:
            return Check("plain", False, f"no <Encrypt> in {_show(text)}")
        values = []
        for name in platform_names:
            matches = root.findall(name)
            if len(matches) != 1:
                near = [tag for tag in children if tag.lower() == name.lower() and tag != name]
                hint = f" (found <{near[0]}>: tag names are case-sensitive)" if near else ""
                return Check("envelope", False, f"the reply envelope needs exactly one <{name}>{hint}")
            values.append(matches[0].text)
        return values[0], values[1], values[2], values[3]
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Check("envelope", False, f"the reply is not valid JSON: {exc}")
    if not isinstance(document, dict):
        return Check("envelope", False, "the reply must be a JSON object")
    if "encrypt" not in document and "Encrypt" not in document:
        return Check("plain", False, f"no encrypt key in {_show(text)}")
    values = []
    for name in platform_names:
        if name not in document:
            near = [key for key in document if key.lower().replace("_", "") == name.lower()]
            hint = f" (found {near[0]!r})" if near else ""
            return Check("envelope", False, f"the reply envelope has no {name!r} key{hint}")
        value = document[name]
        if name.lower() == "timestamp" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return Check("envelope", False, f"{name!r} must be a string, not {type(value).__name__}")
        values.append(value)
    return values[0], values[1], values[2], values[3]


def _open_envelope(
    target: Target, envelope: tuple[str, str, str, str], request_nonce: str, reading: ReplyReading,
) -> str | None:
    encrypt, signature, timestamp, nonce = envelope
    checks = reading.checks
    checks.append(Check("envelope", True, target.reply_envelope.value))
    if not timestamp.isdigit():
        checks.append(Check("envelope", False, f"TimeStamp {timestamp!r} is not decimal seconds"))
        return None
    if not check_signature(signature, target.token, timestamp, nonce, encrypt):
        checks.append(Check("signature", False, "the reply's MsgSignature does not verify over its own "
                                                "TimeStamp, Nonce and Encrypt with the Token"))
        return None
    checks.append(Check("signature", True))
    assert target.crypto is not None  # every encrypting Target has one
    try:
        opened = target.crypto.decrypt_ciphertext(encrypt, signature, timestamp, nonce)
    except ReceiveIdError as exc:
        checks.append(Check("decrypt", True))
        checks.append(Check("receive_id", False, f"the reply is sealed for receive_id {exc.received!r}, "
                                                 f"expected {target.receive_id!r}"))
        return None
    except WXCallbackError as exc:
        checks.append(Check("decrypt", False, f"the reply cannot be decrypted with the EncodingAESKey "
                                              f"({int(exc.code)}: {exc})"))
        return None
    checks.append(Check("decrypt", True))
    checks.append(Check("receive_id", True, repr(opened.receive_id)))
    if target.reply_echoes_nonce and nonce != request_nonce:
        checks.append(Check("nonce", False, f"the reply's Nonce {nonce!r} must echo the request nonce "
                                            f"{request_nonce!r}"))
        return None
    reading.plaintext = opened.text
    return opened.text


# -- reply messages -------------------------------------------------------------------

def _judge_message(target: Target, callback: Callback, text: str, reading: ReplyReading) -> None:
    reading.plaintext = text
    if target.platform is ChannelKind.WECOM_ROBOT:
        check = _judge_robot_reply(callback, text, reading)
    elif target.data_format is DataFormat.JSON:
        check = _judge_fields(target, callback, _json_fields(text, reading))
    else:
        check = _judge_fields(target, callback, _xml_fields(text, reading))
    reading.checks.append(check)


def _xml_fields(text: str, reading: ReplyReading) -> dict[str, Any] | Check:
    try:
        root = parse_xml(text, what="reply")
    except WXCallbackError as exc:
        return Check("reply", False, str(exc))
    reading.document = root
    if root.tag != "xml":
        return Check("reply", False, f"the reply's root element is <{root.tag}>, expected <xml>")
    fields: dict[str, Any] = {}
    for child in root.children:
        fields.setdefault(child.tag, child.text)
    return fields


def _json_fields(text: str, reading: ReplyReading) -> dict[str, Any] | Check:
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Check("reply", False, f"the reply is not valid JSON: {exc}")
    if not isinstance(document, dict):
        return Check("reply", False, "the reply must be a JSON object")
    reading.document = document
    return document


def _judge_fields(target: Target, callback: Callback, fields: dict[str, Any] | Check) -> Check:
    if isinstance(fields, Check):
        return fields
    for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType"):
        if name not in fields:
            return Check("reply", False, f"the reply has no {name}")
    if str(fields["ToUserName"]) != callback.sender:
        return Check("reply", False, f"ToUserName is {fields['ToUserName']!r}, expected the sender {callback.sender!r}")
    if str(fields["FromUserName"]) != target.reply_account:
        return Check("reply", False, f"FromUserName is {fields['FromUserName']!r}, "
                                     f"expected the account {target.reply_account!r}")
    if not str(fields["CreateTime"]).isdigit():
        return Check("reply", False, f"CreateTime {fields['CreateTime']!r} is not decimal seconds")
    msg_type = str(fields["MsgType"])
    if msg_type not in callback.reply_types:
        allowed = ", ".join(sorted(callback.reply_types))
        return Check("reply", False, f"MsgType {msg_type!r} is not a passive reply type ({allowed})")
    return Check("reply", True, f"reply {msg_type}")


def _judge_robot_reply(callback: Callback, text: str, reading: ReplyReading) -> Check:
    document = _json_fields(text, reading)
    if isinstance(document, Check):
        return document
    if not callback.reply_types:
        return Check("reply", False, f"a {callback.name} must be answered with an empty body, "
                                     f"got {_show(text)}")
    if UPDATE_TEMPLATE_CARD in callback.reply_types:
        if document.get("response_type") != UPDATE_TEMPLATE_CARD:
            return Check("reply", False, "a template_card_event reply needs response_type "
                                         f"'update_template_card', got {document.get('response_type')!r}")
        card = document.get("template_card")
        if not isinstance(card, dict):
            return Check("reply", False, "the update reply has no template_card object")
        if callback.task_id is not None and "task_id" in card and card["task_id"] != callback.task_id:
            return Check("reply", False, f"template_card.task_id {card['task_id']!r} must equal the "
                                         f"callback's {callback.task_id!r}")
        return Check("reply", True, "reply update_template_card")
    msgtype = document.get("msgtype")
    if msgtype not in callback.reply_types:
        allowed = ", ".join(sorted(callback.reply_types))
        return Check("reply", False, f"msgtype {msgtype!r} is not allowed for a {callback.name} ({allowed})")
    if msgtype in ("stream", "stream_with_template_card"):
        return _judge_stream_state(document)
    if not isinstance(document.get(str(msgtype)), dict):
        return Check("reply", False, f"the reply has no {msgtype!r} object")
    return Check("reply", True, f"reply {msgtype}")


def stream_state(document: Any) -> tuple[str, bool, str] | None:
    """(id, finish, content) of a stream reply, or None when the document is not one."""
    if not isinstance(document, dict) or document.get("msgtype") not in ("stream", "stream_with_template_card"):
        return None
    stream = document.get("stream")
    if not isinstance(stream, dict):
        return None
    stream_id, finish, content = stream.get("id"), stream.get("finish", False), stream.get("content", "")
    if not isinstance(stream_id, str) or not isinstance(finish, bool) or not isinstance(content, str):
        return None
    return stream_id, finish, content


def _judge_stream_state(document: dict[str, Any]) -> Check:
    stream = document.get("stream")
    if not isinstance(stream, dict):
        return Check("reply", False, "a stream reply needs a stream object")
    if not isinstance(stream.get("id"), str) or not stream["id"]:
        return Check("reply", False, "stream.id must be a non-empty string")
    if not isinstance(stream.get("finish", False), bool):
        return Check("reply", False, "stream.finish must be true or false")
    content = stream.get("content", "")
    if not isinstance(content, str):
        return Check("reply", False, "stream.content must be a string")
    if len(content.encode()) > STREAM_CONTENT_LIMIT:
        return Check("reply", False, f"stream.content is {len(content.encode())} bytes, over {STREAM_CONTENT_LIMIT}")
    finish = "true" if stream.get("finish") else "false"
    return Check("reply", True, f"reply {document['msgtype']} (finish={finish})")
