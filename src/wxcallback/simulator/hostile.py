"""Requests no platform sends, and the refusals they must meet.

An endpoint on the internet gets these too: a forged signature, a plaintext-mode body
swapped under a captured query (the 3-value signature does not cover the body), a
broken or DTD-carrying document, a huge body, a path that is not the callback. Each
must be refused with a 4xx status; a 5xx means the input reached code that did not
expect it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from wxcallback.channel import ChannelKind

from .report import Check
from .scenarios import Scenarios
from .target import DataFormat, Target
from .wire import WireRequest, callback_request, encode_query, url_verification

__all__ = ["HostileCase", "hostile_cases", "judge_refusal"]

UNKNOWN_PATH = "wxcallback-simulate-unknown-path"


@dataclass(frozen=True)
class HostileCase:
    """One hostile request, the status a careful endpoint answers, and an optional legitimate lead-in."""

    name: str
    request: WireRequest
    preferred: int
    # Sent first and expected to succeed: the replay case needs a nonce the server has seen.
    setup: WireRequest | None = None
    # A server may close the connection instead of reading a huge body; that is a refusal too.
    dropped_ok: bool = False


def _flip(signature: str) -> str:
    last = signature[-1:] or "0"
    return signature[:-1] + ("1" if last != "1" else "2")


def tamper_signature(request: WireRequest) -> WireRequest:
    """The same request with every signature value changed in its last digit."""
    pairs = parse_qsl(request.query, keep_blank_values=True)
    changed = [(name, _flip(value) if name in ("signature", "msg_signature") else value) for name, value in pairs]
    return replace(request, query=encode_query(changed))


def _billion_laughs() -> str:
    entities = ['<!ENTITY a0 "ha">'] + [f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE xml [\n' + "\n".join(entities) + "\n]>\n"
            "<xml><ToUserName>&a9;</ToUserName><Encrypt>&a9;</Encrypt><Content>&a9;</Content></xml>")


def _oversized(target: Target, size: int) -> bytes:
    if target.data_format is DataFormat.JSON:
        return json.dumps({"encrypt": "A" * size}).encode()
    return ("<xml><Encrypt><![CDATA[" + "A" * size + "]]></Encrypt></xml>").encode()


def hostile_cases(target: Target, scenarios: Scenarios, *, oversize_bytes: int) -> list[HostileCase]:
    def fresh() -> WireRequest:
        callback = scenarios.text("hostile")
        return callback_request(target, callback.payload, sender=callback.sender)

    cases = [
        HostileCase("hostile: bad signature (GET)", tamper_signature(url_verification(target)), 403),
        HostileCase("hostile: bad signature (POST)", tamper_signature(fresh()), 403),
    ]
    if target.is_official_account_like and not target.encrypts:
        # Plaintext mode signs only (token, timestamp, nonce): a captured query with another body must not pass.
        original = fresh()
        swapped = scenarios.text("a different body under a replayed nonce")
        body = callback_request(target, swapped.payload, sender=swapped.sender,
                                timestamp=original.timestamp, nonce=original.nonce)
        cases.append(HostileCase("hostile: replayed nonce, other body", replace(original, body=body.body), 403,
                                 setup=original))
    broken = b'{"encrypt": "' if target.data_format is DataFormat.JSON else b"<xml><ToUserName><![CDATA[gh_"
    cases.append(HostileCase("hostile: malformed body", replace(fresh(), body=broken), 400))
    if target.data_format is DataFormat.XML:
        cases.append(HostileCase("hostile: DTD / entities", replace(fresh(), body=_billion_laughs().encode()), 400))
    elif target.platform is not ChannelKind.WECOM_ROBOT:
        cases.append(HostileCase("hostile: XML to a JSON channel",
                                 replace(fresh(), body=_billion_laughs().encode()), 400))
    cases.append(HostileCase("hostile: oversized body", replace(fresh(), body=_oversized(target, oversize_bytes)),
                             413, dropped_ok=True))
    cases.append(HostileCase("hostile: unknown path", replace(fresh(), path_suffix=UNKNOWN_PATH), 404))
    return cases


def judge_refusal(case: HostileCase, status: int | None, error: str | None) -> Check:
    if status is None:
        # A server may cut an oversized upload short; one that never accepted the
        # connection has refused nothing.
        if case.dropped_ok and not (error or "").startswith("request failed: ConnectError"):
            return Check("refused", True, "the connection was closed before an answer")
        return Check("refused", False, f"no answer: {error or 'connection lost'} (expected HTTP {case.preferred})")
    if status >= 500:
        return Check("refused", False, f"HTTP {status}: a server error on a hostile request "
                                       f"(expected a 4xx such as {case.preferred})")
    if status < 400:
        return Check("refused", False, f"HTTP {status}: the request was accepted (expected {case.preferred})")
    if status != case.preferred:
        return Check("refused", True, f"refused with {status} ({case.preferred} is usual)")
    return Check("refused", True, f"refused with {status}")
