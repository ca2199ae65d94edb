"""The HTTP requests a platform sends, byte for byte: query string, body, headers.

The platform's side of the frame is symmetric with the server's reply: it encrypts
the message with receive_id = the account's id and signs (Token, timestamp, nonce,
Encrypt), which is exactly ``MessageCrypto.encrypt_reply``. Query values are
percent-encoded with ``+ / =`` as ``%2B %2F %3D``, as WeCom does for echostr.

A third party's notices (InfoType callbacks) come in their own envelope: a component's
with ``<AppId>`` instead of ``<ToUserName>``, a suite's with the SuiteID and an empty AgentID.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from wxcallback.channel import ChannelKind, Mode
from wxcallback.core import MessageCrypto, sign

from .errors import SimulatorError
from .target import DataFormat, Target

__all__ = [
    "WireRequest",
    "callback_request",
    "fresh_nonce",
    "fresh_timestamp",
    "render_document",
    "url_verification",
    "xml_document",
]


@dataclass(frozen=True)
class WireRequest:
    """One request as sent: method, encoded query, body and the values the answer is judged by."""

    method: str
    query: str
    body: bytes
    content_type: str | None
    timestamp: str
    nonce: str
    # The message inside, in clear (the echostr for a URL check).
    plaintext: str
    path_suffix: str = ""

    def url(self, base: str) -> str:
        parts = urlsplit(base)
        path = parts.path
        if self.path_suffix:
            path = path.rstrip("/") + "/" + self.path_suffix
        query = "&".join(part for part in (parts.query, self.query) if part)
        return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": "Mozilla/4.0 (wxcallback simulate)"}
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return headers


def fresh_timestamp() -> str:
    return str(int(time.time()))


def fresh_nonce() -> str:
    # The platforms send 9-10 decimal digits.
    return str(100_000_000 + secrets.randbelow(9_900_000_000))


def encode_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        return f"<{name}>" + "".join(_element(key, item) for key, item in value.items()) + f"</{name}>"
    if isinstance(value, (list, tuple)):
        return "".join(_element(name, item) for item in value)
    if isinstance(value, bool):
        return f"<{name}>{int(value)}</{name}>"
    if isinstance(value, int):
        return f"<{name}>{value}</{name}>"
    return f"<{name}>{_cdata(str(value))}</{name}>"


def xml_document(fields: Mapping[str, Any]) -> str:
    """``<xml>`` with one element per field: strings in CDATA, numbers bare, mappings nested."""
    return "<xml>" + "".join(_element(name, value) for name, value in fields.items()) + "</xml>"


def render_document(target: Target, fields: Mapping[str, Any]) -> str:
    """A message in the target's data format."""
    if target.data_format is DataFormat.JSON:
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return xml_document(fields)


def _content_type(target: Target) -> str:
    return "application/json" if target.data_format is DataFormat.JSON else "text/xml"


def url_verification(
    target: Target, *, echostr: str | None = None, timestamp: str | None = None, nonce: str | None = None,
) -> WireRequest:
    """The GET a platform sends when the URL is saved in its console; ``plaintext`` is the expected answer."""
    timestamp = timestamp or fresh_timestamp()
    nonce = nonce or fresh_nonce()
    # The platforms' echostr plaintexts are 19-digit numbers.
    plain = echostr if echostr is not None else str(10**18 + secrets.randbelow(9 * 10**18))
    if target.is_official_account_like:
        signature = sign(target.token, timestamp, nonce)
        query = encode_query([("signature", signature), ("timestamp", timestamp), ("nonce", nonce),
                              ("echostr", plain)])
    else:
        sealed = (target.url_crypto or _crypto(target)).encrypt_reply(plain, nonce, timestamp=timestamp)
        query = encode_query([("msg_signature", sealed.msg_signature), ("timestamp", timestamp),
                              ("nonce", nonce), ("echostr", sealed.encrypt)])
    return WireRequest("GET", query, b"", None, timestamp, nonce, plain)


def _crypto(target: Target) -> MessageCrypto:
    if target.crypto is None:  # pragma: no cover - Target.create guarantees it for encrypting channels
        raise SimulatorError("this channel has no EncodingAESKey")
    return target.crypto


def callback_request(
    target: Target, payload: Mapping[str, Any] | str, *, timestamp: str | None = None, nonce: str | None = None,
    sender: str | None = None,
) -> WireRequest:
    """The signed (and, per mode, encrypted) POST carrying ``payload``: its fields, or a document
    already in the target's data format (sent as it is, byte for byte)."""
    timestamp = timestamp or fresh_timestamp()
    nonce = nonce or fresh_nonce()
    if isinstance(payload, str):
        if target.mode is Mode.COMPATIBLE:
            raise SimulatorError("compatibility mode repeats the message's fields beside Encrypt: give the fields")
        plaintext = payload
        notice = "<InfoType>" in payload
    else:
        plaintext = render_document(target, payload)
        notice = "InfoType" in payload
    if target.is_official_account_like:
        pairs = [("signature", sign(target.token, timestamp, nonce)), ("timestamp", timestamp), ("nonce", nonce)]
        if sender is not None and target.platform is ChannelKind.OFFICIAL_ACCOUNT:
            pairs.append(("openid", sender))
        if not target.encrypts:
            return WireRequest("POST", encode_query(pairs), plaintext.encode(), _content_type(target),
                               timestamp, nonce, plaintext)
        sealed = _crypto(target).encrypt_reply(plaintext, nonce, timestamp=timestamp)
        pairs += [("encrypt_type", "aes"), ("msg_signature", sealed.msg_signature)]
        if target.mode is Mode.COMPATIBLE and not isinstance(payload, str):  # a str was refused above
            # Compatibility mode: the plaintext fields and the Encrypt value in one document.
            envelope: dict[str, Any] = {**payload, "Encrypt": sealed.encrypt}
        elif notice:
            envelope = {"AppId": target.receive_id, "Encrypt": sealed.encrypt}
        else:
            envelope = {"ToUserName": target.account_id, "Encrypt": sealed.encrypt}
        body = render_document(target, envelope)
        return WireRequest("POST", encode_query(pairs), body.encode(), _content_type(target),
                           timestamp, nonce, plaintext)
    sealed = _crypto(target).encrypt_reply(plaintext, nonce, timestamp=timestamp)
    query = encode_query([("msg_signature", sealed.msg_signature), ("timestamp", timestamp), ("nonce", nonce)])
    if target.platform is ChannelKind.WECOM_ROBOT:
        body = json.dumps({"encrypt": sealed.encrypt})
    else:
        body = xml_document({"ToUserName": target.receive_id, "AgentID": "" if notice else target.agent_id,
                             "Encrypt": sealed.encrypt})
    return WireRequest("POST", query, body.encode(), _content_type(target), timestamp, nonce, plaintext)
