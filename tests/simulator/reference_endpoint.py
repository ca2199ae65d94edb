"""A small, correct callback endpoint for every platform, with faults that can be switched on.

It is written here, independently of the wxcallback server, on top of MessageCrypto
only, so the simulator is judged against a known-good peer. Each fault breaks one
thing the platform checks; the tests switch one on and expect the simulator to name it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from wxcallback.core import MessageCrypto, ParseError, ReceiveIdError, SignatureError, WXCallbackError
from wxcallback.core.safexml import parse_xml

TOKEN = "SimToken2024"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
APP_ID = "wx5823bf96d3bd56c7"
CORP_ID = "ww1436e0e65a779aee"
ACCOUNT_ID = "gh_wxcallbacksim"
BODY_LIMIT = 64 * 1024

FAULTS = frozenset({
    "echostr-quoted", "echostr-newline", "slow-get", "slow-post", "reply-signature", "reply-receive-id",
    "reply-nonce", "reply-recipient", "crash-on-bad-input", "no-dedup", "replay-accepted",
    "stream-never-finishes", "stream-shrinks", "answer-feedback",
})


@dataclass
class Endpoint:
    """One channel served at one path."""

    platform: str
    receive_id: str = ""
    mode: str = "safe"
    data_format: str = "xml"
    faults: frozenset[str] = frozenset()
    slow_seconds: float = 0.6
    stream_steps: tuple[str, ...] = ("Hel", "Hello", "Hello, wor", "Hello, world")
    replies: dict[str, bytes] = field(default_factory=dict)
    seen_nonces: dict[str, str] = field(default_factory=dict)
    streams: dict[str, int] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    requests: int = 0

    def __post_init__(self) -> None:
        assert self.faults <= FAULTS, self.faults - FAULTS
        envelope = "json" if self.platform == "wecom-robot" else ("oa-json" if self.data_format == "json" else "xml")
        self.crypto = MessageCrypto(TOKEN, KEY, self.receive_id, envelope=envelope,
                                    json_timestamp=int if envelope != "xml" else None)

    @property
    def oa_like(self) -> bool:
        return self.platform in ("official-account", "signature-only")

    @property
    def encrypted(self) -> bool:
        return not (self.platform == "signature-only" or (self.platform == "official-account"
                                                           and self.mode == "plaintext"))


class ReferenceApp:
    """Plain ASGI: each registered path is one Endpoint; anything else is 404."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        endpoint = self.endpoints.get(request.url.path)
        if endpoint is None:
            response = Response("not found", status_code=404)
        else:
            endpoint.requests += 1
            response = await self.handle(endpoint, request)
        await response(scope, receive, send)

    async def handle(self, endpoint: Endpoint, request: Request) -> Response:
        try:
            if request.method == "GET":
                return await verify(endpoint, request)
            if request.method == "POST":
                declared = int(request.headers.get("content-length", "0") or 0)
                if declared > BODY_LIMIT:
                    return Response("too large", status_code=413)
                body = await request.body()
                if len(body) > BODY_LIMIT:
                    return Response("too large", status_code=413)
                return await callback(endpoint, request, body)
            return Response(status_code=405)
        except WXCallbackError as exc:
            if "crash-on-bad-input" in endpoint.faults:
                return Response("internal error", status_code=500)
            status = 403 if isinstance(exc, (SignatureError, ReceiveIdError)) else 400
            return Response(f"{int(exc.code)} {exc}", status_code=status)


async def verify(endpoint: Endpoint, request: Request) -> Response:
    query = request.query_params
    if "slow-get" in endpoint.faults:
        await asyncio.sleep(endpoint.slow_seconds)
    if endpoint.oa_like:
        echo = endpoint.crypto.verify_plain_url(query.get("signature", ""), query.get("timestamp", ""),
                                                query.get("nonce", ""), query.get("echostr", ""))
    else:
        echo = endpoint.crypto.verify_url(query.get("msg_signature", ""), query.get("timestamp", ""),
                                          query.get("nonce", ""), query.get("echostr", ""))
    if "echostr-quoted" in endpoint.faults:
        echo = json.dumps(echo)
    if "echostr-newline" in endpoint.faults:
        echo += "\n"
    return Response(echo, media_type="text/plain")


async def callback(endpoint: Endpoint, request: Request, body: bytes) -> Response:
    query = request.query_params
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if endpoint.encrypted and (not endpoint.oa_like or query.get("encrypt_type") == "aes"):
        opened = endpoint.crypto.decrypt(body, query.get("msg_signature", ""), timestamp, nonce)
        text = opened.text
    else:
        endpoint.crypto.verify_signature(query.get("signature", ""), timestamp, nonce)
        # The 3-value signature does not cover the body: a nonce seen with another body is a replay.
        digest = hashlib.sha256(body).hexdigest()
        if endpoint.seen_nonces.setdefault(nonce, digest) != digest and "replay-accepted" not in endpoint.faults:
            raise SignatureError("nonce replayed with another body")
        text = body.decode("utf-8")
    message = read_message(endpoint, text)
    key = dedup_key(endpoint, message)
    if "no-dedup" not in endpoint.faults and key in endpoint.replies:
        reply = endpoint.replies[key]
    else:
        reply = render_reply(endpoint, message, nonce)
        endpoint.replies[key] = reply
    if "slow-post" in endpoint.faults:
        await asyncio.sleep(endpoint.slow_seconds)
    return Response(reply, media_type="application/json" if reply.startswith(b"{") else "text/xml")


def read_message(endpoint: Endpoint, text: str) -> dict[str, Any]:
    if endpoint.platform == "wecom-robot" or endpoint.data_format == "json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ParseError(f"not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ParseError("not an object")
        return document
    root = parse_xml(text)
    return {child.tag: child.text for child in root.children}


def dedup_key(endpoint: Endpoint, message: dict[str, Any]) -> str:
    if endpoint.platform == "wecom-robot":
        return str(message.get("msgid"))
    if "MsgId" in message:
        return str(message["MsgId"])
    return f"{message.get('FromUserName')}|{message.get('CreateTime')}|{message.get('Event')}"


def render_reply(endpoint: Endpoint, message: dict[str, Any], nonce: str) -> bytes:
    if endpoint.platform == "wecom-robot":
        plain = robot_reply(endpoint, message)
    else:
        plain = xml_reply(endpoint, message)
    if plain is None:
        return b""
    if not endpoint.encrypted or (endpoint.oa_like and endpoint.mode == "plaintext"):
        return plain.encode()
    echo_nonce = nonce if endpoint.platform != "wecom-app" else str(secrets.randbelow(10**9))
    if "reply-nonce" in endpoint.faults:
        echo_nonce = str(int(nonce) + 1)
    receive_id = "wrongcorp" if "reply-receive-id" in endpoint.faults else endpoint.receive_id
    sealed = endpoint.crypto.encrypt_reply(plain, echo_nonce, receive_id=receive_id)
    if "reply-signature" in endpoint.faults:
        sealed = sealed._replace(msg_signature=hashlib.sha1(b"forged").hexdigest())
    return sealed.render().encode()


def xml_reply(endpoint: Endpoint, message: dict[str, Any]) -> str | None:
    msg_type, event = message.get("MsgType"), message.get("Event")
    if event in ("change_contact", "unsubscribe"):
        return None
    counter = f" #{next(endpoint.counter)}" if "no-dedup" in endpoint.faults else ""
    if msg_type == "text":
        content = f"echo: {message.get('Content')}{counter}"
    elif msg_type == "event":
        content = f"event {event}{counter}"
    else:
        content = f"got {msg_type}{counter}"
    recipient = "someone-else" if "reply-recipient" in endpoint.faults else message["FromUserName"]
    sender = message["ToUserName"]
    fields = {"ToUserName": recipient, "FromUserName": sender, "CreateTime": int(time.time()),
              "MsgType": "text", "Content": content}
    if endpoint.data_format == "json":
        return json.dumps(fields, ensure_ascii=False)
    return ("<xml>" + "".join(f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}><![CDATA[{v}]]></{k}>"
                              for k, v in fields.items()) + "</xml>")


def robot_reply(endpoint: Endpoint, message: dict[str, Any]) -> str | None:
    msgtype = message.get("msgtype")
    if msgtype == "stream":
        stream_id = message["stream"]["id"]
        step = endpoint.streams.get(stream_id, 0) + 1
        endpoint.streams[stream_id] = step
        steps = endpoint.stream_steps
        if "stream-never-finishes" in endpoint.faults:
            return json.dumps({"msgtype": "stream", "stream": {"id": stream_id, "finish": False,
                                                               "content": endpoint.stream_steps[0] + "." * step}})
        content = steps[min(step, len(steps) - 1)]
        if "stream-shrinks" in endpoint.faults and step >= 2:
            content = "Bye"
        return json.dumps({"msgtype": "stream", "stream": {"id": stream_id, "finish": step >= len(steps) - 1,
                                                           "content": content}})
    if msgtype == "event":
        event = message["event"]
        eventtype = event.get("eventtype")
        if eventtype == "enter_chat":
            return json.dumps({"msgtype": "text", "text": {"content": "welcome"}})
        if eventtype == "template_card_event":
            task_id = event["template_card_event"]["task_id"]
            return json.dumps({"response_type": "update_template_card", "template_card": {
                "card_type": "button_interaction", "task_id": task_id,
                "main_title": {"title": "done"}}})
        if eventtype == "feedback_event" and "answer-feedback" in endpoint.faults:
            return json.dumps({"msgtype": "text", "text": {"content": "thanks"}})
        return None
    stream_id = "stream" + secrets.token_hex(8)
    if "no-dedup" in endpoint.faults:
        stream_id += f"-{next(endpoint.counter)}"
    endpoint.streams[stream_id] = 0
    return json.dumps({"msgtype": "stream", "stream": {"id": stream_id, "finish": False,
                                                       "content": endpoint.stream_steps[0]}})


class ReferenceServer:
    """uvicorn on 127.0.0.1 with a free port, in a background thread."""

    def __init__(self) -> None:
        self.app = ReferenceApp()
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP,
        # and without it Nagle holds the response body for the client's delayed ACK (~40 ms).
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.paths = itertools.count()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the reference endpoint did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()

    def serve(self, endpoint: Endpoint) -> str:
        """Register ``endpoint`` at a fresh path; returns its URL."""
        path = f"/cb/{endpoint.platform}/{next(self.paths)}"
        self.app.endpoints[path] = endpoint
        return f"http://127.0.0.1:{self.port}{path}"
