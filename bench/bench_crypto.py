"""Crypto speed: wxcallback against its peers and against a bare floor, in one interleaved run.

    .venv/bin/python bench/bench_crypto.py [--repeats 21] [--batch-ms 10]

Three operations, each at ~300 B, 2 KB and 64 KB messages:

- decrypt:    parse the XML body, check msg_signature, decrypt, check receive_id
- encrypt:    encrypt the reply, sign it, render the XML envelope
- verify_url: check msg_signature of echostr, decrypt it

Implementations: wxcallback (MessageCrypto), wechatpy 1.8.18 (enterprise WeChatCrypto),
the official SDK copies on PyPI (weworkapi, wx-crypt) and the floor (bench/floor.py).
A peer that is not installed, or cannot do an operation, is skipped with the reason.

Method: every implementation first decrypts every other one's ciphertext and rejects a
wrong signature, so nothing broken is timed. Then, per operation and size, each
repetition times one batch (~--batch-ms, the same call count for all) of every
implementation, rotating the order each repetition so machine noise hits all alike.
The table shows the best (lowest) µs/op over the repetitions: on a shared machine noise
only ever adds time, so the minimum is the steadiest estimate (``--statistic median``
gives the median instead). GC is off inside a batch.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import FloorCrypto  # noqa: E402

from wxcallback.core import MessageCrypto  # noqa: E402

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
TIMESTAMP = "1409659813"
NONCE = "1372623149"
SIZES = (("300 B", 300), ("2 KB", 2048), ("64 KB", 65536))
OPS = ("decrypt", "encrypt", "verify_url")
TARGET = 1.3

Decrypt = Callable[[bytes, str, str, str], str]
Encrypt = Callable[[str], str]
VerifyUrl = Callable[[str, str, str, str], str]


@dataclass
class Implementation:
    name: str
    decrypt: Decrypt | None = None
    encrypt: Encrypt | None = None
    verify_url: VerifyUrl | None = None
    notes: list[str] = field(default_factory=list)

    def op(self, name: str) -> Callable[..., str] | None:
        fn: Callable[..., str] | None = getattr(self, name)
        return fn


@dataclass(frozen=True)
class Message:
    label: str
    plaintext: str
    body: bytes  # the POST body as a server receives it
    encrypt: str  # the Encrypt value; also used as a (large) echostr
    msg_signature: str


# -- the implementations -----------------------------------------------------------------


def wxcallback_impl() -> Implementation:
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    return Implementation(
        "wxcallback",
        decrypt=lambda body, sig, ts, nonce: crypto.decrypt(body, sig, ts, nonce).text,
        encrypt=lambda reply: crypto.encrypt(reply, NONCE, timestamp=TIMESTAMP),
        verify_url=crypto.verify_url,
    )


def floor_impl() -> Implementation:
    floor = FloorCrypto(TOKEN, KEY, CORP_ID)
    return Implementation(
        "floor", decrypt=floor.decrypt, encrypt=lambda reply: floor.encrypt(reply, NONCE, TIMESTAMP),
        verify_url=floor.verify_url,
    )


def wechatpy_impl() -> Implementation:
    backend = importlib.import_module("wechatpy.crypto.base").WeChatCipher.__module__
    crypto = importlib.import_module("wechatpy.enterprise.crypto").WeChatCrypto(TOKEN, KEY, CORP_ID)
    impl = Implementation(
        "wechatpy",
        decrypt=lambda body, sig, ts, nonce: crypto.decrypt_message(body, sig, ts, nonce),
        encrypt=lambda reply: crypto.encrypt_message(reply, NONCE, TIMESTAMP),
        verify_url=crypto.check_signature,
    )
    impl.notes.append(f"AES backend {backend}")
    return impl


def _official(name: str, sdk: Any, *, reply_bytes: bool = False) -> Implementation:
    """An official-SDK-shaped class: methods return (ret, value), ret 0 on success."""

    def ok(result: tuple[int, object]) -> str:
        ret, value = result
        if ret != 0:
            raise RuntimeError(f"{name} returned {ret}")
        return value.decode() if isinstance(value, bytes) else str(value)

    return Implementation(
        name,
        decrypt=lambda body, sig, ts, nonce: ok(sdk.DecryptMsg(body, sig, ts, nonce)),
        encrypt=(
            (lambda reply: ok(sdk.EncryptMsg(reply.encode(), NONCE, TIMESTAMP)))
            if reply_bytes else
            (lambda reply: ok(sdk.EncryptMsg(reply, NONCE, TIMESTAMP)))
        ),
        verify_url=lambda sig, ts, nonce, echostr: ok(sdk.VerifyURL(sig, ts, nonce, echostr)),
    )


def weworkapi_impl() -> Implementation:
    sdk = importlib.import_module("weworkapi.WXBizMsgCrypt3").WXBizMsgCrypt(TOKEN, KEY, CORP_ID)
    impl = _official("weworkapi", sdk)
    impl.notes.append("weworkapi.WXBizMsgCrypt3 (official Python 3 SDK copy, pycryptodome)")
    return impl


def wx_crypt_impl() -> Implementation:
    wx_crypt = importlib.import_module("wx_crypt")
    sdk = wx_crypt.WXBizMsgCrypt(TOKEN, KEY, CORP_ID, wx_crypt.WxChannel_Wecom)
    impl = _official("wx-crypt", sdk)
    try:
        assert impl.encrypt is not None
        impl.encrypt("probe")
    except Exception as exc:  # noqa: BLE001 - report whatever the peer raises
        # Its EncryptMsg tests `text is bytes` (always False) and so never encodes a str.
        impl = _official("wx-crypt", sdk, reply_bytes=True)
        impl.notes.append(f"EncryptMsg(str) raises {type(exc).__name__}: {exc}; driven with UTF-8 bytes")
    impl.notes.append("wx_crypt.WXBizMsgCrypt3 (official Python 3 SDK copy + JSON channel, pycryptodome)")
    return impl


PEERS: tuple[tuple[str, Callable[[], Implementation]], ...] = (
    ("wechatpy", wechatpy_impl),
    ("weworkapi", weworkapi_impl),
    ("wx-crypt", wx_crypt_impl),
)


def load_implementations() -> tuple[list[Implementation], list[str]]:
    impls = [floor_impl(), wxcallback_impl()]
    skipped: list[str] = []
    for name, factory in PEERS:
        try:
            impls.append(factory())
        except Exception as exc:  # noqa: BLE001 - a missing or broken peer is skipped, not fatal
            skipped.append(f"{name}: skipped ({type(exc).__name__}: {exc})")
    return impls, skipped


# -- inputs and the correctness check -------------------------------------------------------


def make_message(label: str, size: int) -> Message:
    head = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[mycreate]]>"
            f"</FromUserName><CreateTime>{TIMESTAMP}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            "<Content><![CDATA[")
    tail = "]]></Content><MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>"
    filler = ("The quick brown fox jumps over the lazy dog. " * (size // 45 + 1))[: size - len(head) - len(tail)]
    plaintext = head + filler + tail
    sealed = MessageCrypto(TOKEN, KEY, CORP_ID).encrypt_reply(plaintext, NONCE, timestamp=TIMESTAMP)
    body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{sealed.encrypt}]]>"
            "</Encrypt><AgentID><![CDATA[218]]></AgentID></xml>").encode()
    return Message(label, plaintext, body, sealed.encrypt, sealed.msg_signature)


_ENVELOPE = re.compile(
    r"<xml>\n<Encrypt><!\[CDATA\[(?P<encrypt>[A-Za-z0-9+/=]+)\]\]></Encrypt>\n"
    r"<MsgSignature><!\[CDATA\[(?P<signature>[0-9a-f]{40})\]\]></MsgSignature>\n"
    rf"<TimeStamp>{TIMESTAMP}</TimeStamp>\n<Nonce><!\[CDATA\[{NONCE}\]\]></Nonce>\n</xml>"
)


def _rejects(fn: Callable[[], str]) -> bool:
    try:
        fn()
    except Exception:  # noqa: BLE001 - any refusal counts
        return True
    return False


def check_agreement(impls: list[Implementation], messages: list[Message]) -> list[str]:
    """Problems found: every decrypter must open every encrypter's output and the sample."""
    problems: list[str] = []
    for message in messages:
        sealed: list[tuple[str, str, str]] = [("sample", message.encrypt, message.msg_signature)]
        for producer in impls:
            if producer.encrypt is None:
                continue
            envelope = producer.encrypt(message.plaintext)
            match = _ENVELOPE.fullmatch(envelope)
            if match is None:
                problems.append(f"{producer.name} encrypt {message.label}: envelope is not the official XML")
                continue
            sealed.append((producer.name, match["encrypt"], match["signature"]))
        for consumer in impls:
            for source, encrypt, signature in sealed:
                body = (message.body if source == "sample" else
                        f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode())
                if consumer.decrypt is not None:
                    got = consumer.decrypt(body, signature, TIMESTAMP, NONCE)
                    if got != message.plaintext:
                        problems.append(f"{consumer.name} decrypt of {source} {message.label}: wrong plaintext")
                if consumer.verify_url is not None:
                    got = consumer.verify_url(signature, TIMESTAMP, NONCE, encrypt)
                    if got != message.plaintext:
                        problems.append(f"{consumer.name} verify_url of {source} {message.label}: wrong plaintext")
            bad_signature = "0" * 40
            decrypt, verify_url = consumer.decrypt, consumer.verify_url
            if decrypt is not None and not _rejects(lambda: decrypt(message.body, bad_signature, TIMESTAMP, NONCE)):
                problems.append(f"{consumer.name} decrypt accepts a wrong msg_signature")
            if verify_url is not None and not _rejects(
                lambda: verify_url(bad_signature, TIMESTAMP, NONCE, message.encrypt)
            ):
                problems.append(f"{consumer.name} verify_url accepts a wrong msg_signature")
    return problems


# -- timing ----------------------------------------------------------------------------------


def call_for(op: str, fn: Callable[..., str], message: Message) -> Callable[[], str]:
    if op == "decrypt":
        return lambda: fn(message.body, message.msg_signature, TIMESTAMP, NONCE)
    if op == "encrypt":
        return lambda: fn(message.plaintext)
    return lambda: fn(message.msg_signature, TIMESTAMP, NONCE, message.encrypt)


def time_batch(call: Callable[[], str], count: int) -> float:
    """µs per call over one batch of ``count`` calls."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / count * 1e6


def calibrate(call: Callable[[], str], batch_ms: float) -> int:
    count = 1
    while True:
        elapsed_us = time_batch(call, count) * count
        if elapsed_us >= batch_ms * 1000 / 4 or count >= 1 << 20:
            return max(1, int(count * batch_ms * 1000 / max(elapsed_us, 1.0)))
        count *= 2


def measure(impls: list[Implementation], messages: list[Message], repeats: int, batch_ms: float,
            statistic: Callable[[list[float]], float]) -> dict[tuple[str, str, str], float]:
    """µs/op per (op, size label, implementation name), reduced over the repetitions by ``statistic``."""
    results: dict[tuple[str, str, str], float] = {}
    for op in OPS:
        for message in messages:
            calls = [(impl.name, call_for(op, fn, message)) for impl in impls if (fn := impl.op(op)) is not None]
            # One call count for everybody, sized on wxcallback so a batch lasts ~batch_ms.
            reference = dict(calls)["wxcallback"]
            count = calibrate(reference, batch_ms)
            for _, call in calls:
                call()  # warm up caches and lazy imports
            samples: dict[str, list[float]] = {name: [] for name, _ in calls}
            for repetition in range(repeats):
                shift = repetition % len(calls)
                for name, call in calls[shift:] + calls[:shift]:
                    samples[name].append(time_batch(call, count))
            for name, values in samples.items():
                results[(op, message.label, name)] = statistic(values)
    return results


# -- report ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def render_table(impls: list[Implementation], messages: list[Message],
                 results: dict[tuple[str, str, str], float]) -> tuple[str, list[str]]:
    peers = [impl.name for impl in impls if impl.name not in ("floor", "wxcallback")]
    header = ["op", "size", "floor µs", "wxcallback µs", *(f"{p} µs" for p in peers), "wxcallback/floor",
              *(f"{p}/wxcallback" for p in peers)]
    rows = [header, ["---"] * len(header)]
    misses: list[str] = []
    for op in OPS:
        for message in messages:
            floor = results[(op, message.label, "floor")]
            ours = results[(op, message.label, "wxcallback")]
            ratio = ours / floor
            if ratio > TARGET:
                misses.append(f"{op} {message.label}: {ratio:.2f}x the floor")
            peer_times = [results.get((op, message.label, p)) for p in peers]
            rows.append([
                op, message.label, f"{floor:.1f}", f"{ours:.1f}",
                *("—" if t is None else f"{t:.1f}" for t in peer_times),
                f"{ratio:.2f}" + (" ✗" if ratio > TARGET else ""),
                *("—" if t is None else f"{t / ours:.2f}" for t in peer_times),
            ])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows), misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="batches per implementation and size")
    parser.add_argument("--batch-ms", type=float, default=10.0, help="approximate length of one batch")
    parser.add_argument("--statistic", choices=("min", "median"), default="min",
                        help="how the repetitions are reduced (default: best of N)")
    args = parser.parse_args()
    statistic: Callable[[list[float]], float] = min if args.statistic == "min" else statistics.median

    impls, skipped = load_implementations()
    messages = [make_message(label, size) for label, size in SIZES]
    print(f"# wxcallback crypto benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}), "
          f"{cpu_model()}; Python {platform.python_version()} ({platform.python_implementation()})")
    print("packages: " + ", ".join(f"{p} {version(p)}" for p in
                                   ("wxcallback", "cryptography", "wechatpy", "pycryptodome", "xmltodict",
                                    "weworkapi", "wx-crypt")))
    print("message sizes (plaintext bytes): " + ", ".join(f"{m.label}={len(m.plaintext.encode())}" for m in messages))
    for impl in impls:
        for note in impl.notes:
            print(f"note: {impl.name}: {note}")
    for reason in skipped:
        print(f"note: {reason}")

    problems = check_agreement(impls, messages)
    if problems:
        print("\nthe implementations disagree; nothing was timed:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(f"check: all {len(impls)} implementations decrypt each other's ciphertext and the sample bodies, "
          "and reject a wrong msg_signature")

    results = measure(impls, messages, args.repeats, args.batch_ms, statistic)
    table, misses = render_table(impls, messages, results)
    label = "best" if args.statistic == "min" else "median"
    print(f"\nµs/op, {label} of {args.repeats} interleaved batches of ~{args.batch_ms:g} ms each "
          f"(ratios > {TARGET} against the floor are marked ✗)\n")
    print(table)
    if misses:
        print(f"\nabove the {TARGET}x target: " + "; ".join(misses))
    else:
        print(f"\nevery wxcallback operation is within {TARGET}x of the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
