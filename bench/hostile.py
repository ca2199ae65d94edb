"""Hostile requests against a running ``wxcallback serve``: each must be refused quickly with a 4xx.

    .venv/bin/python bench/hostile.py                 # prints a Markdown table
    .venv/bin/python bench/hostile.py --json out.json

Starts the server (one worker, loopback, a free port, memory store) with a WeCom app
channel (XML), a smart-robot channel (JSON) and an Official Account in plaintext mode;
``max_body_bytes`` stays at its default of 1 MiB and ``body_timeout`` is lowered from
10 s to 2 s so the slow-body case ends sooner. Every request goes over a raw socket, so
nothing in a client library fixes it up. Per case: the status, the time from the first
byte sent to the status line (ms), how many body bytes the client got into the socket
before the answer (an upper bound on what the server read: the kernel buffers part of
it), and the server's RSS before and after. The exit status is 1 if a case is not a
4xx, or not refused within its bound (1 s; body_timeout + 1 s for the slow body).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from wxcallback.core import MessageCrypto, WXCallbackError, sign
from wxcallback.core.cipher import FrameCipher
from wxcallback.core.frame import pack_frame
from wxcallback.core.keys import decode_encoding_aes_key
from wxcallback.core.padding import pad

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
APPID = "wx5823bf96d3bd56c7"
BODY_TIMEOUT = 2.0
HEADER_TIMEOUT = 2.0
IDLE_SOCKETS = 1100
QUICK_MS = 1000.0
MIB = 1024 * 1024

CONFIG = f"""
[server]
host = "127.0.0.1"
port = {{port}}
workers = 1
store = "memory://"
log_level = "warning"
body_timeout = {BODY_TIMEOUT}
header_timeout = {HEADER_TIMEOUT}

[channels.wecom]
path = "/wecom"
platform = "wecom-app"
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
receive_id = "{APPID}"

[channels.robot]
path = "/robot"
platform = "wecom-robot"
token = "{TOKEN}"
encoding_aes_key = "{KEY}"

[channels.oa]
path = "/oa"
platform = "official-account"
token = "{TOKEN}"
modes = ["plaintext"]

[channels.oa_sibling]
path = "/oa-sibling"
platform = "official-account"
token = "{TOKEN}"
modes = ["plaintext"]
"""


@dataclass
class Outcome:
    case: str
    expected: str
    status: int | str
    answer: str
    ms: float
    body_bytes_sent: int
    rss_before_mb: float
    rss_after_mb: float
    ok: bool


# -- the server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    config = workdir / "hostile.toml"
    config.write_text(CONFIG.replace("{port}", str(port)), encoding="utf-8")
    command = [sys.executable, "-m", "wxcallback", "serve", "--config", str(config)]
    server = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"").status == 200:
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("wxcallback serve did not answer /healthz within 30 s")


# -- one raw HTTP exchange ------------------------------------------------------------


@dataclass
class Answer:
    status: int | str
    ms: float
    sent: int
    text: str = ""


def _ready(conn: socket.socket, want_write: bool, timeout: float) -> tuple[bool, bool]:
    """(readable, writable) within ``timeout``: poll, not select (which stops at fd 1024, and the
    idle-socket case holds more)."""
    poller = select.poll()
    poller.register(conn, select.POLLIN | (select.POLLOUT if want_write else 0))
    events = 0
    for _, mask in poller.poll(timeout * 1000):
        events |= mask
    return bool(events & (select.POLLIN | select.POLLHUP | select.POLLERR)), bool(events & select.POLLOUT)


def request(port: int, head: bytes, body: bytes | Iterable[bytes], *, pace: float = 0.0,
            limit: float = 60.0) -> Answer:
    """Send ``head`` then ``body`` (stopping as soon as an answer arrives); the status and timing."""
    chunks: Iterator[bytes] = iter([body] if isinstance(body, bytes) else body)
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        conn.sendall(head)
        sent, pending, received = 0, b"", b""
        closed_for_writing = False
        while b"\r\n" not in received:
            if time.perf_counter() - started > limit:
                return Answer("no answer", _ms(started), sent)
            if not pending and not closed_for_writing:
                pending = next(chunks, b"")
                if not pending:
                    closed_for_writing = True
                elif pace:
                    readable, _ = _ready(conn, False, pace)
                    if readable:
                        pending = b""  # the answer came while we waited: stop sending
                        closed_for_writing = True
            readable, writable = _ready(conn, bool(pending), 0.5)
            if readable:
                try:
                    data = conn.recv(65536)
                except ConnectionResetError:
                    return Answer("reset", _ms(started), sent)
                if not data:
                    return Answer("closed", _ms(started), sent)
                received += data
                continue
            if writable and pending:
                try:
                    count = conn.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    closed_for_writing, pending = True, b""
                    continue
                sent += count
                pending = pending[count:]
        elapsed = _ms(started)
        received = _rest_of_answer(conn, received)
    line = received.split(b"\r\n", 1)[0].split()
    text = received.partition(b"\r\n\r\n")[2][:60].decode("utf-8", "replace")
    return Answer(int(line[1]) if len(line) > 1 and line[1].isdigit() else received[:40].decode("latin-1"),
                  elapsed, sent, text)


def _rest_of_answer(conn: socket.socket, received: bytes) -> bytes:
    """Read the headers and the (short) body of an answer whose status line is in."""
    deadline = time.perf_counter() + 0.5
    while True:
        head, separator, body = received.partition(b"\r\n\r\n")
        if separator:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                return received
        remaining = deadline - time.perf_counter()
        if remaining <= 0 or not _ready(conn, False, remaining)[0]:
            return received
        try:
            data = conn.recv(65536)
        except OSError:
            return received
        if not data:
            return received
        received += data


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _head(method: str, target: str | bytes, body_length: int | None, extra: str = "") -> bytes:
    target_bytes = target if isinstance(target, bytes) else target.encode()
    lines = [method.encode() + b" " + target_bytes + b" HTTP/1.1", b"Host: 127.0.0.1"]
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}".encode())
    if extra:
        lines.append(extra.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


# -- the hostile requests -------------------------------------------------------------

_nonces = iter(range(10**6))


def _stamp() -> tuple[str, str]:
    return str(int(time.time())), f"hostile{next(_nonces)}"


def _signed_query(encrypt: str, *, upper: bool = False) -> str:
    timestamp, nonce = _stamp()
    signature = sign(TOKEN, timestamp, nonce, encrypt)
    return urlencode({"msg_signature": signature.upper() if upper else signature, "timestamp": timestamp,
                      "nonce": nonce})


def _wecom_post(body: bytes, encrypt: str = "QUJD") -> tuple[bytes, bytes]:
    return _head("POST", f"/wecom?{_signed_query(encrypt)}", len(body)), body


def _frame_ciphertext(block: bytes) -> str:
    """A hand-made decrypted block, encrypted with the channel's key (as a Token holder could)."""
    return base64.b64encode(FrameCipher(decode_encoding_aes_key(KEY)).encrypt_block(block)).decode()


def _library_code(crypto: MessageCrypto, encrypt: str) -> int:
    """The code the crypto core gives a hand-made ciphertext under a valid signature (0 if it opens)."""
    try:
        crypto.decrypt_ciphertext(encrypt, crypto.sign("1", "n", encrypt), "1", "n")
    except WXCallbackError as exc:
        return int(exc.code)
    return 0


def _encrypted_body(encrypt: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()


def _wecom_text() -> str:
    return (f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            "<Content><![CDATA[hi]]></Content><MsgId>1</MsgId><AgentID>1</AgentID></xml>")


def _oa_text(msg_id: int, content: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>").encode()


def _repeat(block: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(block)):
        yield block


def _chunked(block: bytes, total: int) -> Iterator[bytes]:
    frame = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    for _ in range(total // len(block)):
        yield frame
    yield b"0\r\n\r\n"


def _trickle(data: bytes) -> Iterator[bytes]:
    for index in range(len(data)):
        yield data[index : index + 1]


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
                             for n in range(1, 10))
                  + b"]><xml><Encrypt>&lol9;</Encrypt></xml>")


def cases(crypto: MessageCrypto) -> Iterator[tuple[str, str, bytes, bytes | Iterable[bytes], float]]:
    """(case, expected, head, body, pace) for every hostile request, and a valid one first."""
    timestamp, nonce = _stamp()
    valid = crypto.encrypt_reply(_wecom_text(), nonce, timestamp=timestamp)
    query = urlencode({"msg_signature": valid.msg_signature, "timestamp": timestamp, "nonce": nonce})
    body = _encrypted_body(valid.encrypt)
    yield "valid WeCom callback (baseline)", "200", _head("POST", f"/wecom?{query}", len(body)), body, 0.0

    yield "billion laughs (WeCom XML)", "400", *_wecom_post(BILLION_LAUGHS), 0.0
    for name, system in (("file:///etc/passwd", "file:///etc/passwd"), ("http://127.0.0.1:1/", "http://127.0.0.1:1/")):
        xxe = (f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "{system}">]>'
               "<xml><Encrypt>&xxe;</Encrypt></xml>").encode()
        yield f"external entity SYSTEM {name}", "400", *_wecom_post(xxe), 0.0
    yield "DOCTYPE alone", "400", *_wecom_post(b"<!DOCTYPE xml><xml><Encrypt>QUJD</Encrypt></xml>"), 0.0
    depth = 100_000
    yield "XML nested 100 000 deep", "400", *_wecom_post(b"<xml>" + b"<a>" * depth + b"</a>" * depth + b"</xml>"), 0.0
    deep_json = b'{"encrypt": "QUJD", "x": ' + b"[" * depth + b"]" * depth + b"}"
    yield "JSON nested 100 000 deep (robot)", "400", \
        _head("POST", f"/robot?{_signed_query('QUJD')}", len(deep_json)), deep_json, 0.0

    hundred_mb, block = 100 * MIB, b"x" * 65536
    yield "100 MB body, Content-Length", "413", \
        _head("POST", f"/wecom?{_signed_query('QUJD')}", hundred_mb), _repeat(block, hundred_mb), 0.0
    yield "100 MB body, chunked", "413", \
        _head("POST", f"/wecom?{_signed_query('QUJD')}", None, "Transfer-Encoding: chunked"), \
        _chunked(block, hundred_mb), 0.0
    slow = _encrypted_body(valid.encrypt)
    yield "slow body, 1 byte / 0.5 s", "408", \
        _head("POST", f"/wecom?{_signed_query(valid.encrypt)}", len(slow)), _trickle(slow), 0.5

    timestamp, nonce = _stamp()
    yield "non-UTF-8 in query (%FF)", "400", _head(
        "GET", f"/wecom?msg_signature=%FF%FE&timestamp={timestamp}&nonce=%C3%28&echostr=QUJD", None), b"", 0.0
    yield "non-UTF-8 in query (raw 0xFF byte)", "400", _head(
        "GET", b"/wecom?msg_signature=\xff\xfe&timestamp=1&nonce=\xc3\x28&echostr=QUJD", None), b"", 0.0
    bad_json = b'{"encrypt": "\xff\xfe\xfd"}'
    yield "non-UTF-8 body (robot JSON)", "400", \
        _head("POST", f"/robot?{_signed_query('QUJD')}", len(bad_json)), bad_json, 0.0
    bad_xml = b"<xml><Encrypt>\xff\xfe</Encrypt></xml>"
    yield "non-UTF-8 body (WeCom XML)", "400", *_wecom_post(bad_xml), 0.0
    timestamp, nonce = _stamp()
    oa_query = urlencode({"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce})
    latin = _oa_text(1, "x").replace(b"x]]>", b"\xe9\xff]]>")
    yield "non-UTF-8 body, valid signature (OA plaintext)", "400", _head("POST", f"/oa?{oa_query}", len(latin)), \
        latin, 0.0
    timestamp, nonce = _stamp()
    echostr = "%FF%FE%FD"
    signature = sign(TOKEN, timestamp, nonce, "\ufffd\ufffd\ufffd")
    yield "non-UTF-8 echostr (WeCom URL check)", "400", _head(
        "GET", f"/wecom?msg_signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr={echostr}", None), \
        b"", 0.0
    timestamp, nonce = _stamp()
    yield "duplicate query keys", "400", _head(
        "POST", f"/wecom?{query}&msg_signature=0000&timestamp={timestamp}&nonce={nonce}", len(body)), body, 0.0

    random16 = b"0123456789abcdef"
    huge = _frame_ciphertext(pad(random16 + b"\xff\xff\xff\xff" + b"<xml/>" + APPID.encode()))
    yield f"msg_len 0xFFFFFFFF, valid signature (core: {_library_code(crypto, huge)})", "400", *_wecom_post(_encrypted_body(huge), huge), 0.0
    message = b"<xml/>"
    over = _frame_ciphertext(pad(random16 + (len(message) + len(APPID) + 1).to_bytes(4, "big") + message
                                 + APPID.encode()))
    yield f"msg_len past the buffer, valid signature (core: {_library_code(crypto, over)})", "400", *_wecom_post(_encrypted_body(over), over), 0.0
    frame = pack_frame(b"<xml/>", APPID.encode(), random16)
    bad_pad = _frame_ciphertext(frame[:-1] + b"\xff")
    yield f"pad byte 0xFF, valid signature (core: {_library_code(crypto, bad_pad)})", "400", *_wecom_post(_encrypted_body(bad_pad), bad_pad), 0.0

    timestamp, nonce = _stamp()
    upper = crypto.encrypt_reply(_wecom_text(), nonce, timestamp=timestamp)
    upper_query = urlencode({"msg_signature": upper.msg_signature.upper(), "timestamp": timestamp, "nonce": nonce})
    upper_body = _encrypted_body(upper.encrypt)
    yield "upper-case msg_signature", "403", _head("POST", f"/wecom?{upper_query}", len(upper_body)), upper_body, 0.0

    timestamp, nonce = _stamp()
    oa_query = urlencode({"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce})
    first = _oa_text(101, "first")
    yield "OA plaintext: first use of a nonce", "200", _head("POST", f"/oa?{oa_query}", len(first)), first, 0.0
    replay = _oa_text(102, "transfer all the money")
    yield "OA plaintext: same nonce, another body", "403", _head("POST", f"/oa?{oa_query}", len(replay)), \
        replay, 0.0
    yield "unknown path", "404", _head("POST", f"/nowhere?{query}", len(body)), body, 0.0

    # The request head and the connection (server/connections.py)
    yield "one 100 MiB header", "431", b"GET /oa HTTP/1.1\r\nHost: x\r\nX-Big: ", _repeat(block, hundred_mb), 0.0
    many = b"GET /oa HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(100_000)) + b"\r\n"
    yield "100,000 header fields", "431", many, b"", 0.0
    yield "request head trickled, 1 byte / 0.5 s", "408", b"GET /oa HTTP/1.1\r\n", _trickle(b"X" * 40), 0.5
    timestamp, nonce = _stamp()
    yield "encoded path /%77ecom (a proxy rule on /wecom misses it)", "400", _head(
        "POST", f"/%77ecom?{query}", len(body)), body, 0.0
    yield "encoded slash /wecom%2f", "400", _head("POST", f"/wecom%2f?{query}", len(body)), body, 0.0
    long_stamp = "9" * 309
    signed = urlencode({"signature": sign(TOKEN, long_stamp, nonce), "timestamp": long_stamp, "nonce": nonce})
    text = _oa_text(103, "x")
    yield "309-digit timestamp, valid signature", "403", _head("POST", f"/oa?{signed}", len(text)), text, 0.0
    timestamp, nonce = _stamp()
    check = urlencode({"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                       "echostr": "<script>alert(1)</script>"})
    yield "URL check echoing HTML (echostr not signed)", "400", _head("GET", f"/oa?{check}", None), b"", 0.0
    timestamp, nonce = _stamp()
    oa_query = urlencode({"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce})
    captured = _oa_text(104, "pay 100")
    yield "OA plaintext: a request, then...", "200", _head("POST", f"/oa?{oa_query}", len(captured)), captured, 0.0
    forged = _oa_text(105, "pay 1000")
    yield "...its signed query replayed on a sibling channel (same Token)", "403", _head(
        "POST", f"/oa-sibling?{oa_query}", len(forged)), forged, 0.0


def idle_sockets(port: int, count: int) -> tuple[int, float, float]:
    """Open ``count`` sockets that send nothing, then time a URL check: (held, ms, seconds to close all)."""
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    try:
        timestamp, nonce = _stamp()
        check = urlencode({"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                           "echostr": "12345"})
        answer = request(port, _head("GET", f"/oa?{check}", None), b"", limit=10)
        ms = answer.ms if answer.status == 200 else float("inf")
        started = time.monotonic()
        for sock in held:  # the server closes them after header_timeout
            sock.settimeout(HEADER_TIMEOUT * 3)
            try:
                sock.recv(1)
            except OSError:
                pass
        return len(held), ms, time.monotonic() - started
    finally:
        for sock in held:
            sock.close()


def _acceptable(expected: str, status: int | str, ms: float, pace: float) -> bool:
    bound = (max(BODY_TIMEOUT, HEADER_TIMEOUT) * 1000 + 1000) if pace else QUICK_MS
    if not isinstance(status, int) or ms > bound:
        return False
    if expected == "200":
        return status == 200
    return 400 <= status < 500 and str(status) == expected


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    crypto = MessageCrypto(TOKEN, KEY, APPID)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="wxcallback-hostile-") as directory:
        server, port = start_server(Path(directory))
        try:
            for case, expected, head, body, pace in cases(crypto):
                before = _rss_mb(server.pid)
                answer = request(port, head, body, pace=pace)
                time.sleep(0.05)  # let the server finish its side before reading its RSS
                outcomes.append(Outcome(case, expected, answer.status, answer.text, answer.ms, answer.sent, before,
                                        _rss_mb(server.pid), _acceptable(expected, answer.status, answer.ms, pace)))
            held, idle_ms, idle_closed = idle_sockets(port, IDLE_SOCKETS)
            peak = next((line.split()[1] for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                         if line.startswith("VmHWM:")), "0")
        finally:
            server.terminate()
            server.wait(10)
    print(f"{machine()}; max_body_bytes 1 MiB (default), body_timeout {BODY_TIMEOUT:g} s (default 10 s); "
          f"server peak RSS {int(peak) / 1024:.1f} MB\n")
    print("| case | expected | status | answer | time to refuse ms | body bytes sent | server RSS before MB "
          "| after MB | ok |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    for o in outcomes:
        shown = o.answer if o.expected != "200" else "(reply)"
        print(f"| {o.case} | {o.expected} | {o.status} | {shown.replace('|', '/')} | {o.ms:,.1f} | {o.body_bytes_sent:,} | {o.rss_before_mb} "
              f"| {o.rss_after_mb} | {'yes' if o.ok else 'NO'} |")
    print(f"\n{held} idle sockets held open: a URL check answered in {idle_ms:,.1f} ms; the server closed "
          f"them all within {idle_closed:.1f} s (header_timeout {HEADER_TIMEOUT:g} s)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": [asdict(o) for o in outcomes]},
                                        indent=2) + "\n", encoding="utf-8")
    return 0 if all(o.ok for o in outcomes) and idle_ms != float("inf") else 1


if __name__ == "__main__":
    sys.exit(main())
