"""One fuzz target per entry point that takes outside input.

Each target is a function of one ``bytes`` input (laid out as ``fuzz.inputs`` reads
it). It calls the entry point the way a caller would and lets every exception that is
not a WXCallbackError escape: to the fuzzer that is a crash. Where a result can be
checked without a second implementation it is (a decrypted frame must re-encrypt to
the same ciphertext, the XML fast path must agree with expat, the HTTP layer must not
answer 5xx), and a broken invariant is raised as AssertionError.

The deep targets act like a Token holder: they recompute a valid signature for the
fuzzed ciphertext, and can encrypt the fuzzed bytes as the *decrypted* block, so the
base64, AES, padding, length-field, receive_id and UTF-8 checks all see fuzzed data
instead of stopping at the signature.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes

from wxcallback.core import (
    ANY_RECEIVE_ID,
    DecryptedMessage,
    EnvelopeFormat,
    MessageCrypto,
    ReceiveIdPolicy,
    WXCallbackError,
    check_signature,
    decrypt_media,
    extract_encrypt,
    sign,
)
from wxcallback.core.envelope import _extract_xml_expat, _extract_xml_fast
from wxcallback.core.safexml import parse_xml
from wxcallback.messages import EmptyReply, Platform, TextReply, parse_message, render_reply

from .inputs import Reader, text_of

__all__ = ["APPID", "KEY", "OLD_KEY", "TARGETS", "TOKEN", "Target", "build_target", "crypto_variants"]

Target = Callable[[bytes], None]

# The WeCom doc sample account: the test vectors are made with it, so their real
# signatures verify in the seeds.
TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OLD_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx5823bf96d3bd56c7"


def crypto_variants() -> list[MessageCrypto]:
    """The channel shapes a target picks from: envelopes, receive_id policies, a key ring, sha256."""
    return [
        MessageCrypto(TOKEN, KEY, APPID),
        MessageCrypto(TOKEN, KEY, "", envelope="json"),
        MessageCrypto(TOKEN, KEY, APPID, envelope="oa-json"),
        MessageCrypto(TOKEN, KEY, {APPID, "ww1436e0e65a779aee", "中文"}),
        MessageCrypto(TOKEN, KEY, ANY_RECEIVE_ID),
        MessageCrypto(TOKEN, KEY, ReceiveIdPolicy.any(reply_id=APPID), previous_keys=[OLD_KEY]),
        MessageCrypto(TOKEN, OLD_KEY, APPID, previous_keys=[KEY], envelope="json"),
        MessageCrypto(TOKEN, KEY, APPID, digest="sha256"),
    ]


_CRYPTOS = crypto_variants()


def _signed(crypto: MessageCrypto, timestamp: str | bytes, nonce: str | bytes, encrypt: str | bytes) -> str | None:
    """The msg_signature a Token holder computes, or None when the values cannot be signed."""
    try:
        return crypto.sign(_as_str(timestamp), _as_str(nonce), _as_str(encrypt))
    except (WXCallbackError, UnicodeDecodeError):
        return None


def _as_str(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8")


def _ciphertext_for(crypto: MessageCrypto, how: int, key_index: int, raw: bytes) -> str | bytes:
    """The Encrypt value a mode makes of ``raw``: itself, its base64, or ``raw`` as the decrypted block."""
    import base64

    how %= 3
    if how == 0:
        return text_of(raw, key_index)
    if how == 1:
        return base64.b64encode(raw).decode("ascii")
    key = crypto.keys[key_index % len(crypto.keys)]
    block = raw[: len(raw) - len(raw) % 16]
    return base64.b64encode(key.cipher.encrypt_block(block)).decode("ascii")


def _check_round_trip(crypto: MessageCrypto, encrypt: str | bytes, message: DecryptedMessage) -> None:
    # Strict base64 and strict padding leave one encoding per frame: sealing what came
    # out with the same key, id and random prefix must give the very same ciphertext.
    again = crypto.encrypt_reply(message.text, "n", timestamp="1", key_index=message.key_index,
                                 receive_id=message.receive_id, random=message.random).encrypt
    given = encrypt if isinstance(encrypt, str) else encrypt.decode("ascii")
    assert again == given, f"decrypted frame does not re-encrypt to its ciphertext: {given!r} -> {message!r}"


# -- envelopes and XML ------------------------------------------------------------------


def envelope_xml(data: bytes) -> None:
    """extract_encrypt(body, XML); both XML paths must agree where the fast one answers."""
    reader = Reader(data)
    how = reader.byte()
    raw = reader.rest()
    try:
        value = extract_encrypt(text_of(raw, how), EnvelopeFormat.XML)
    except WXCallbackError:
        value = None
    fast = _extract_xml_fast(raw) if raw else None
    if fast is not None:
        try:
            slow: str | None = _extract_xml_expat(raw)
        except WXCallbackError:
            slow = None
        assert fast == slow, f"fast path read {fast!r}, expat read {slow!r}"
    if how % 5 == 0 and fast is not None:
        assert value == fast, f"extract_encrypt read {value!r}, the fast path {fast!r}"


def envelope_json(data: bytes) -> None:
    """extract_encrypt(body, JSON / OA_JSON)."""
    reader = Reader(data)
    how = reader.byte()
    envelope = EnvelopeFormat.JSON if how & 0x80 else EnvelopeFormat.OA_JSON
    try:
        value = extract_encrypt(text_of(reader.rest(), how), envelope)
    except WXCallbackError:
        return
    assert isinstance(value, str)


def safe_xml(data: bytes) -> None:
    """parse_xml(data) with a depth limit from 1 to 128."""
    reader = Reader(data)
    how, depth = reader.byte(), reader.byte() % 128 + 1
    try:
        root = parse_xml(text_of(reader.rest(), how), max_depth=depth)
    except WXCallbackError:
        return
    assert isinstance(root.tag, str) and isinstance(root.text, str)


# -- decryption -------------------------------------------------------------------------


def decrypt_body(data: bytes) -> None:
    """MessageCrypto.decrypt(body, msg_signature, timestamp, nonce), signature fuzzed or recomputed."""
    reader = Reader(data)
    choice, how, recompute = reader.byte(), reader.byte(), reader.byte()
    crypto = _CRYPTOS[choice % len(_CRYPTOS)]
    signature = text_of(reader.chunk(), how)
    timestamp, nonce = text_of(reader.chunk(), how >> 1), text_of(reader.chunk(), how >> 2)
    body = text_of(reader.rest(), how >> 3)
    if recompute & 1:
        try:
            encrypt: str | None = extract_encrypt(body, crypto.envelope)
        except WXCallbackError:
            encrypt = None
        if encrypt is not None:
            signature = _signed(crypto, timestamp, nonce, encrypt) or signature
    try:
        message = crypto.decrypt(body, signature, timestamp, nonce)
    except WXCallbackError:
        return
    _check_round_trip(crypto, extract_encrypt(body, crypto.envelope), message)


def decrypt_ciphertext(data: bytes) -> None:
    """decrypt_ciphertext with a valid signature over fuzzed ciphertext (or a fuzzed decrypted block)."""
    reader = Reader(data)
    choice, how, key_index = reader.byte(), reader.byte(), reader.byte()
    crypto = _CRYPTOS[choice % len(_CRYPTOS)]
    timestamp, nonce = text_of(reader.chunk(), how >> 2), text_of(reader.chunk(), how >> 4)
    encrypt = _ciphertext_for(crypto, how, key_index, reader.rest())
    signature = _signed(crypto, timestamp, nonce, encrypt) if choice & 0x80 == 0 else "0" * 40
    try:
        message = crypto.decrypt_ciphertext(encrypt, signature or "", timestamp, nonce)
    except WXCallbackError:
        return
    _check_round_trip(crypto, encrypt, message)


def verify_url(data: bytes) -> None:
    """verify_url / verify_plain_url / check_signature: the GET that proves a callback URL."""
    reader = Reader(data)
    mode, how, key_index = reader.byte(), reader.byte(), reader.byte()
    crypto = _CRYPTOS[(mode >> 3) % len(_CRYPTOS)]
    signature = text_of(reader.chunk(), how)
    timestamp, nonce = text_of(reader.chunk(), how >> 1), text_of(reader.chunk(), how >> 2)
    rest = reader.rest()
    try:
        if mode % 4 == 0:
            crypto.verify_url(signature, timestamp, nonce, text_of(rest, how >> 3))
        elif mode % 4 == 1:
            echostr = _ciphertext_for(crypto, how >> 3, key_index, rest)
            text = crypto.verify_url(_signed(crypto, timestamp, nonce, echostr) or signature, timestamp, nonce,
                                     echostr)
            assert isinstance(text, str)
        elif mode % 4 == 2:
            echostr = text_of(rest, how >> 3)
            if mode & 4:
                try:
                    signature = crypto.sign(_as_str(timestamp), _as_str(nonce))
                except (WXCallbackError, UnicodeDecodeError):
                    pass
            answer = crypto.verify_plain_url(signature, timestamp, nonce, echostr)
            assert answer == _as_str(echostr), "verify_plain_url must return echostr verbatim"
        else:
            check_signature(signature, timestamp, nonce, text_of(rest, how >> 3),
                            digest="sha256" if mode & 4 else "sha1")
    except WXCallbackError:
        return


def media(data: bytes) -> None:
    """decrypt_media(data, key): the key a callback named, the channel's, or 32 raw bytes."""
    reader = Reader(data)
    mode, how = reader.byte(), reader.byte()
    key_input = reader.chunk()
    rest = reader.rest()
    key: str | bytes
    if mode % 3 == 0:
        key = KEY
    elif mode % 3 == 1:
        key = text_of(key_input, how)
    else:
        key = (key_input * 32)[:32] if key_input else bytes(32)
    payload = rest
    if mode & 4 and isinstance(key, str) and key == KEY:
        payload = _CRYPTOS[0].keys.current.cipher.encrypt_block(rest[: len(rest) - len(rest) % 16])
    try:
        plain = decrypt_media(payload, key)
    except WXCallbackError:
        return
    assert len(plain) < len(payload)


# -- messages ---------------------------------------------------------------------------


def _message_target(platform: Platform) -> Target:
    reply: Any = EmptyReply() if platform is Platform.WECOM_ROBOT else TextReply("ok")

    def parse(data: bytes) -> None:
        reader = Reader(data)
        how = reader.byte()
        try:
            message = parse_message(text_of(reader.rest(), how), platform)
        except WXCallbackError:
            return
        # The reply is addressed from the message's own (untrusted) fields.
        try:
            render_reply(reply, message, create_time=1)
        except WXCallbackError:
            return

    parse.__doc__ = f"parse_message(plaintext, {platform.value!r}), then render a reply to it."
    return parse


# -- the HTTP pipeline ------------------------------------------------------------------


_HTTP_CHANNELS: dict[str, dict[str, Any]] = {
    "wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
              "receive_id": APPID},
    "robot": {"path": "/robot", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY},
    "oa": {"path": "/oa", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
           "receive_id": APPID, "modes": ["safe", "compatible"]},
    "oa_plain": {"path": "/oa-plain", "platform": "official-account", "token": TOKEN, "modes": ["plaintext"]},
    "gateway": {"path": "/gateway", "platform": "signature-only", "token": TOKEN, "digest": "sha256"},
}
_METHODS = ("POST", "GET", "HEAD", "PUT", "DELETE")
_PATHS = ("/wecom", "/robot", "/oa", "/oa-plain", "/gateway", "/", "/x", "//oa", "/oa/", "/healthz")
# Store time runs this much faster than the wall clock, so the 2-hour nonce cache is swept
# every few seconds of fuzzing: real time would keep every signed request for 2 h, which
# is growth bounded by the TTL, not the leak the memory figures look for.
_STORE_TIME_SCALE = 1000.0


class _Defects(logging.Handler):
    """Keeps the traceback the server logs when it answers 500."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = "".join(traceback.format_exception(*record.exc_info))
        else:
            self.last = record.getMessage()


def http_target() -> Target:
    """CallbackServer.respond over fuzzed requests: raw, or signed the way the platforms sign."""
    from wxcallback.server.runtime import CallbackServer
    from wxcallback.server.config import parse_config
    from wxcallback.server.stores import MemoryStore

    defects = _Defects()
    logger = logging.getLogger("wxcallback")
    logger.setLevel(logging.ERROR)  # no access log per input
    logger.addHandler(defects)
    logger.propagate = False
    wall, started = time.time(), time.monotonic()
    store = MemoryStore(clock=lambda: wall + (time.monotonic() - started) * _STORE_TIME_SCALE)
    server = CallbackServer(parse_config({"server": {"max_body_bytes": 64 * 1024}, "channels": _HTTP_CHANNELS}),
                            store)
    loop = asyncio.new_event_loop()
    cryptos = {name: MessageCrypto(TOKEN, KEY, APPID if name != "robot" else "",
                                   envelope="json" if name == "robot" else "xml")
               for name in ("wecom", "robot", "oa")}

    def respond(data: bytes) -> None:
        method, path, query, body, length = _http_request(Reader(data), cryptos)
        defects.last = None
        response = loop.run_until_complete(server.respond(method, path, query, body, length))
        if response.status >= 500:
            raise AssertionError(f"{method} {path} answered {response.status} ({response.detail}):\n"
                                 f"{defects.last or 'no traceback logged'}")

    return respond


def _query(pairs: list[tuple[str, str | bytes]], extra: bytes) -> bytes:
    parts = [f"{key}={quote_from_bytes(value if isinstance(value, bytes) else value.encode('utf-8', 'surrogatepass'))}"
             for key, value in pairs]
    query = "&".join(parts).encode()
    return query + (b"&" + extra if extra else b"")


def _http_request(reader: Reader, cryptos: dict[str, MessageCrypto]
                  ) -> tuple[str, str, bytes, bytes, int | None]:
    mode, pick, how = reader.byte(), reader.byte(), reader.byte()
    nonce, extra = reader.chunk(), reader.chunk()
    rest = reader.rest()
    timestamp = str(int(time.time()))
    nonce_text = nonce.decode("utf-8", "replace")
    mode %= 7
    if mode == 6:  # correctly signed, every query value the signature covers fuzzed (timestamp too)
        fuzzed = extra.decode("utf-8", "replace")
        # a chunk holds 255 bytes; repeated, a timestamp reaches the lengths that broke arithmetic
        return _signed_fuzzed_query(pick, how, nonce_text, fuzzed * 20 if how & 16 else fuzzed, rest, cryptos)
    if mode == 0:  # anything at all
        length = None if how & 1 else len(rest) + (how >> 1) - 64
        return _METHODS[pick % len(_METHODS)], _PATHS[pick % len(_PATHS)], nonce + extra, rest, length
    name = ("wecom", "robot", "oa")[pick % 3]
    crypto = cryptos[name]
    path = f"/{name}"
    if mode == 1:  # a genuine callback carrying fuzzed plaintext
        try:
            reply = crypto.encrypt_reply(rest.decode("utf-8", "replace"), nonce_text, timestamp=timestamp)
        except WXCallbackError:
            return "POST", path, extra, rest, len(rest)
        body = reply.render().encode()
        pairs: list[tuple[str, str | bytes]] = [("msg_signature", reply.msg_signature), ("timestamp", timestamp),
                                                ("nonce", nonce_text)]
        if name == "oa":
            pairs += [("signature", sign(TOKEN, timestamp, nonce_text)), ("encrypt_type", "aes")]
        return "POST", path, _query(pairs, extra), body, len(body)
    if mode == 2:  # a fuzzed envelope, signed over whatever Encrypt it holds
        try:
            encrypt = extract_encrypt(rest, crypto.envelope)
        except WXCallbackError:
            encrypt = rest.decode("latin-1")
        pairs = [("msg_signature", _signed(crypto, timestamp, nonce_text, encrypt) or ""),
                 ("timestamp", timestamp), ("nonce", nonce)]
        if name == "oa":
            pairs += [("encrypt_type", "aes" if how & 1 else rest[:8])]
        return "POST", path, _query(pairs, extra), rest, None if how & 2 else len(rest)
    if mode == 3:  # URL verification with a valid signature over a fuzzed echostr
        echostr_text = rest.decode("utf-8", "replace")
        if name == "oa":
            pairs = [("signature", sign(TOKEN, timestamp, nonce_text)), ("echostr", echostr_text)]
        else:
            echostr = _ciphertext_for(crypto, how, 0, rest)
            pairs = [("msg_signature", _signed(crypto, timestamp, nonce_text, echostr) or ""),
                     ("echostr", echostr)]
        pairs += [("timestamp", timestamp), ("nonce", nonce_text)]
        return "GET", path, _query(pairs, extra), b"", None
    if mode == 4:  # Official Account plaintext mode: the signature does not cover the body
        pairs = [("signature", sign(TOKEN, timestamp, nonce_text)), ("timestamp", timestamp), ("nonce", nonce_text)]
        return "POST", "/oa-plain", _query(pairs, extra), rest, len(rest)
    pairs = [("signature", sign(TOKEN, timestamp, nonce_text, digest="sha256")), ("timestamp", timestamp),
             ("nonce", nonce_text)]
    return ("POST" if how & 1 else "GET"), "/gateway", _query(pairs, extra), rest, len(rest)


def _signed_fuzzed_query(pick: int, how: int, nonce: str, timestamp: str, rest: bytes,
                         cryptos: dict[str, MessageCrypto]) -> tuple[str, str, bytes, bytes, int | None]:
    """A request whose signature is right over a fuzzed timestamp, nonce, encrypt_type or echostr,
    so the input reaches what runs after the signature check (the replay window's arithmetic,
    the echostr rules)."""
    text = rest.decode("utf-8", "replace")
    name = ("wecom", "robot", "oa", "oa-plain", "gateway")[pick % 5]
    if name in ("oa-plain", "gateway", "oa") and how & 4:  # a URL check with a fuzzed echostr
        digest = "sha256" if name == "gateway" else "sha1"
        pairs: list[tuple[str, str | bytes]] = [("signature", sign(TOKEN, timestamp, nonce, digest=digest)),
                                                ("timestamp", timestamp), ("nonce", nonce), ("echostr", text)]
        return "GET", f"/{name}", _query(pairs, b""), b"", None
    if name in ("oa-plain", "gateway"):
        digest = "sha256" if name == "gateway" else "sha1"
        pairs = [("signature", sign(TOKEN, timestamp, nonce, digest=digest)), ("timestamp", timestamp),
                 ("nonce", nonce)]
        if how & 8:
            pairs.append(("encrypt_type", text[:16]))
        return "POST", f"/{name}", _query(pairs, b""), rest, len(rest)
    crypto = cryptos[name]
    sealed = crypto.encrypt_reply("<xml><MsgType>text</MsgType></xml>", "n", timestamp="1700000000")
    signature = _signed(crypto, timestamp, nonce, sealed.encrypt) or ""
    pairs = [("msg_signature", signature), ("timestamp", timestamp), ("nonce", nonce)]
    if name == "oa":
        pairs += [("signature", sign(TOKEN, timestamp, nonce)), ("encrypt_type", "aes" if how & 8 else text[:16])]
    body = sealed.render().encode()
    return "POST", f"/{name}", _query(pairs, b""), body, len(body)


# -- the registry -----------------------------------------------------------------------

TARGETS: dict[str, Callable[[], Target]] = {
    "envelope-xml": lambda: envelope_xml,
    "envelope-json": lambda: envelope_json,
    "safexml": lambda: safe_xml,
    "decrypt": lambda: decrypt_body,
    "ciphertext": lambda: decrypt_ciphertext,
    "verify-url": lambda: verify_url,
    "media": lambda: media,
    "message-official-account": lambda: _message_target(Platform.OFFICIAL_ACCOUNT),
    "message-wecom-app": lambda: _message_target(Platform.WECOM_APP),
    "message-wecom-robot": lambda: _message_target(Platform.WECOM_ROBOT),
    "http": http_target,
}


def build_target(name: str) -> Target:
    """The target called ``name`` (the HTTP one builds its server and event loop here, once)."""
    try:
        factory = TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}") from None
    return factory()
