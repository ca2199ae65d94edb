"""A fake WeCom long-connection platform: the server side of the smart robot's WebSocket.

``FakePlatform`` plays what ``wss://openws.work.weixin.qq.com`` does (WeCom doc 101463; the
official Node SDK) on loopback, so a bot can be tested with no WeCom account:

- accepts ``aibot_subscribe`` with the configured bot_id and secret, and answers 853000
  ``invalid bot_id or secret`` to wrong ones (or to the next N, on request); a second
  connection that subscribes takes the bot, and the old one gets ``disconnected_event``
  and is closed a little later, as the live platform does;
- answers pings, acknowledges every frame, returns ``upload_id`` / ``media_id`` for uploads;
- pushes ``aibot_msg_callback`` (text, image, mixed, voice, file, video, quote) and
  ``aibot_event_callback`` (enter_chat, template_card_event, feedback_event) frames;
- records the bot's frames and checks them: replies carry a pushed callback's req_id, the
  right reply command for the callback, stream rules (same id, cumulative content, finish
  last, ≤ 20480 bytes, msg_item only on the finishing frame), welcome and card update
  within 5 s, frames of one req_id sent only after the previous one's ack;
- can drop the connection, stop answering pings, and be fed malformed frames.

Findings are :class:`Violation` values in ``violations``, not exceptions: a wrong frame
from the bot is the result under test.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from wxcallback.longconn.connection import SecretFilter
from wxcallback.longconn.errors import FrameBuildError, FrameError
from wxcallback.longconn.frames import (
    ERRCODE_AUTH_FAILED,
    ERRCODE_INVALID_REQ_ID,
    MAX_CHUNK_BYTES,
    Cmd,
    Frame,
    check_body,
    encode_ack,
    encode_callback,
    new_req_id,
    parse_request,
    subscribe_frame,
)

__all__ = ["MESSAGE_KINDS", "EVENT_KINDS", "FakePlatform", "Pushed", "Received", "Violation"]

# replies to enter_chat and template_card_event are accepted only within 5 s (doc 101463)
REPLY_WINDOW = 5.0
# the live platform's errcode for a malformed body is not published; the fake answers this one
ERRCODE_INVALID_BODY = 40058
# websockets' debug lines would show the tail of a subscribe frame, and so of its secret
_WIRE_LOG = logging.getLogger("wxcallback.simulator.longconn.wire")
_WIRE_FILTER = SecretFilter()
_WIRE_LOG.addFilter(_WIRE_FILTER)
MESSAGE_KINDS = ("text", "image", "mixed", "voice", "file", "video", "quote")
EVENT_KINDS = ("enter_chat", "template_card_event", "feedback_event")


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule the bot broke: a short ``code``, a sentence, and the frame's req_id."""

    code: str
    message: str
    req_id: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" (req_id {self.req_id})" if self.req_id else "")


@dataclass(frozen=True, slots=True)
class Received:
    """One frame from the bot, when it came (monotonic seconds) and on which connection."""

    at: float
    connection: int
    frame: Frame | None
    raw: str


@dataclass(slots=True)
class Pushed:
    """A callback the platform pushed, and what the bot answered on its req_id."""

    req_id: str
    cmd: str
    body: dict[str, Any]
    at: float
    connection: int
    replies: list[Frame] = field(default_factory=list)
    reply_times: list[float] = field(default_factory=list)

    @property
    def kind(self) -> str:
        event = self.body.get("event")
        if self.cmd == Cmd.EVENT_CALLBACK and isinstance(event, dict):
            return str(event.get("eventtype", ""))
        return str(self.body.get("msgtype", ""))


@dataclass(slots=True)
class _Stream:
    id: str
    content: str = ""
    finished: bool = False


@dataclass(slots=True)
class _Upload:
    media_type: str
    total_size: int
    total_chunks: int
    md5: str | None
    chunks: dict[int, bytes] = field(default_factory=dict)


class _Peer:
    def __init__(self, number: int, ws: ServerConnection) -> None:
        self.number = number
        self.ws = ws
        self.subscribed = False
        self.evicted = False
        self.unacked: set[str] = set()


class FakePlatform:
    """The platform side of the long connection on ``ws://host:port`` (port 0: any free one)."""

    def __init__(
        self,
        *,
        bot_id: str = "fake-bot-id",
        secret: str = "fake-bot-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        ack_delay: float = 0.0,
        evict_close_delay: float = 0.5,
        reply_window: float = REPLY_WINDOW,
        on_frame: Callable[[Received, list[Violation]], None] | None = None,
    ) -> None:
        self.bot_id = bot_id
        self._secret = secret
        self.host = host
        self.port = port
        self.ack_delay = ack_delay
        self.evict_close_delay = evict_close_delay
        self.reply_window = reply_window
        self.on_frame = on_frame
        self.answer_pings = True
        self.withhold_acks: set[str] = set()  # commands the fake leaves unacknowledged
        self.refuse_next_subscribes = 0
        self.subscribe_attempts = 0
        self.subscribes_ok = 0
        self.connections = 0
        self.received: list[Received] = []
        self.violations: list[Violation] = []
        self.pushed: dict[str, Pushed] = {}
        self.uploads: dict[str, bytes] = {}  # media_id -> the uploaded bytes
        self.pings: list[float] = []
        self._active: _Peer | None = None
        self._peers: list[_Peer] = []
        self._streams: dict[str, _Stream] = {}
        self._upload_sessions: dict[str, _Upload] = {}
        self._server: Server | None = None
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rivals: list[Any] = []

    def __repr__(self) -> str:
        return f"FakePlatform(bot_id={self.bot_id!r}, url={self.url!r})"

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> FakePlatform:
        _WIRE_FILTER.add(self._secret)
        self._server = await serve(self._serve, self.host, self.port, ping_interval=None, max_size=4 * 1024 * 1024,
                                   logger=_WIRE_LOG)
        sockets = list(self._server.sockets)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        for rival in self._rivals:
            with contextlib.suppress(Exception):
                await rival.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> FakePlatform:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- what the bot sees ------------------------------------------------------------

    @property
    def subscribed(self) -> bool:
        return self._active is not None and self._active.subscribed

    def _later(self, delay: float, action: Callable[[], Any]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            result = action()
            if asyncio.iscoroutine(result):
                await result

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (it may look at the bot too); raise TimeoutError
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the fake platform waited {timeout} s in vain")
            async with self._changed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        peer = _Peer(self.connections, ws)
        self._peers.append(peer)
        try:
            async for data in ws:
                await self._on_frame(peer, data if isinstance(data, str) else data.decode("utf-8", "replace"))
        except ConnectionClosed:
            pass
        finally:
            if self._active is peer:
                self._active = None
            await self._notify()

    def _violate(self, found: list[Violation], code: str, message: str, req_id: str | None) -> None:
        found.append(Violation(code, message, req_id))

    async def _on_frame(self, peer: _Peer, raw: str) -> None:
        now = time.monotonic()
        found: list[Violation] = []
        try:
            frame: Frame | None = parse_request(raw)
        except FrameError as exc:
            frame = None
            self._violate(found, "bad-frame", f"{exc.reason}: {exc}", exc.req_id)
        record = Received(now, peer.number, frame, raw)
        self.received.append(record)
        answer: str | None = None
        if frame is not None:
            if frame.req_id in peer.unacked:
                self._violate(found, "not-serial", "a frame was sent on this req_id before the previous one's ack",
                              frame.req_id)
            answer = self._answer(peer, frame, now, found)
            if frame.cmd in self.withhold_acks:
                answer = None
        self.violations.extend(found)
        if self.on_frame is not None:
            self.on_frame(record, found)
        if answer is not None and frame is not None:
            await self._ack(peer, frame.req_id, answer)
        await self._notify()

    async def _ack(self, peer: _Peer, req_id: str, answer: str) -> None:
        if self.ack_delay <= 0:
            with contextlib.suppress(ConnectionClosed):
                await peer.ws.send(answer)
            return
        peer.unacked.add(req_id)

        async def later() -> None:
            peer.unacked.discard(req_id)
            with contextlib.suppress(ConnectionClosed):
                await peer.ws.send(answer)
            await self._notify()

        self._later(self.ack_delay, later)

    def _answer(self, peer: _Peer, frame: Frame, now: float, found: list[Violation]) -> str | None:
        if frame.cmd == Cmd.SUBSCRIBE:
            return self._subscribe(peer, frame, found)
        if not peer.subscribed:
            self._violate(found, "not-subscribed", f"{frame.cmd} before a successful subscribe", frame.req_id)
            return encode_ack(frame.req_id, ERRCODE_AUTH_FAILED, "not subscribed")
        if frame.cmd == Cmd.PING:
            self.pings.append(now)
            return encode_ack(frame.req_id) if self.answer_pings else None
        if frame.cmd in Cmd.REPLIES:
            return self._reply(frame, now, found)
        if frame.cmd == Cmd.SEND_MSG:
            return self._checked(frame, found) or encode_ack(frame.req_id)
        return self._upload(frame, found)

    def _subscribe(self, peer: _Peer, frame: Frame, found: list[Violation]) -> str:
        self.subscribe_attempts += 1
        body = frame.body or {}
        if peer.subscribed:
            self._violate(found, "resubscribe", "subscribed again on a subscribed connection", frame.req_id)
        if self.refuse_next_subscribes > 0 or body.get("bot_id") != self.bot_id \
                or not secrets.compare_digest(str(body.get("secret", "")).encode(), self._secret.encode()):
            self.refuse_next_subscribes = max(0, self.refuse_next_subscribes - 1)
            return encode_ack(frame.req_id, ERRCODE_AUTH_FAILED, "invalid bot_id or secret")
        previous = self._active
        if previous is not None and previous is not peer:
            self._evict(previous)
        peer.subscribed = True
        self._active = peer
        self.subscribes_ok += 1
        return encode_ack(frame.req_id)

    def _evict(self, peer: _Peer) -> None:
        peer.evicted = True
        peer.subscribed = False
        body = {"msgid": secrets.token_hex(16), "create_time": int(time.time()), "aibotid": self.bot_id,
                "msgtype": "event", "event": {"eventtype": "disconnected_event"}}
        frame = encode_callback(Cmd.EVENT_CALLBACK, new_req_id("disconnected"), body)

        async def tell() -> None:
            with contextlib.suppress(ConnectionClosed):
                await peer.ws.send(frame)

        self._later(0, tell)
        self._later(self.evict_close_delay, peer.ws.close)

    def _checked(self, frame: Frame, found: list[Violation]) -> str | None:
        try:
            check_body(frame.cmd, frame.body)
        except FrameBuildError as exc:
            self._violate(found, "bad-body", str(exc), frame.req_id)
            return encode_ack(frame.req_id, ERRCODE_INVALID_BODY, f"invalid body: {exc}")
        return None

    def _reply(self, frame: Frame, now: float, found: list[Violation]) -> str:
        pushed = self.pushed.get(frame.req_id)
        if pushed is None:
            self._violate(found, "req-id-not-echoed", f"{frame.cmd} does not carry a pushed callback's req_id",
                          frame.req_id)
            return encode_ack(frame.req_id, ERRCODE_INVALID_REQ_ID, "invalid req_id")
        expected = {"enter_chat": Cmd.RESPOND_WELCOME, "template_card_event": Cmd.RESPOND_UPDATE}.get(
            pushed.kind, Cmd.RESPOND_MSG if pushed.cmd == Cmd.MSG_CALLBACK else None)
        if frame.cmd != expected:
            self._violate(found, "wrong-reply", f"{frame.cmd} cannot answer {pushed.kind!r}"
                          + (f" (expected {expected})" if expected else " (it takes no reply)"), frame.req_id)
            return encode_ack(frame.req_id, ERRCODE_INVALID_REQ_ID, "invalid req_id")
        refused = self._checked(frame, found)
        if refused is not None:
            return refused
        pushed.replies.append(frame)
        pushed.reply_times.append(now)
        body = frame.body or {}
        if frame.cmd in (Cmd.RESPOND_WELCOME, Cmd.RESPOND_UPDATE):
            if now - pushed.at > self.reply_window:
                self._violate(found, "late", f"{frame.cmd} came {now - pushed.at:.1f} s after the event; "
                              f"the window is {self.reply_window:.0f} s", frame.req_id)
            if len(pushed.replies) > 1:
                self._violate(found, "repeated", f"a second {frame.cmd} for one event", frame.req_id)
            if frame.cmd == Cmd.RESPOND_UPDATE:
                event = pushed.body.get("event", {}).get("template_card_event", {})
                card = body.get("template_card", {})
                if isinstance(card, dict) and card.get("task_id") != event.get("task_id"):
                    self._violate(found, "task-id", "the card update names another task_id than the event",
                                  frame.req_id)
        elif body.get("msgtype") in ("stream", "stream_with_template_card"):
            self._stream(frame.req_id, body.get("stream", {}), found)
        return encode_ack(frame.req_id)

    def _stream(self, req_id: str, stream: Mapping[str, Any], found: list[Violation]) -> None:
        current = self._streams.get(req_id)
        stream_id = str(stream.get("id"))
        content = str(stream.get("content", ""))
        finish = bool(stream.get("finish", False))
        if current is None or (current.finished and current.id != stream_id):
            current = self._streams[req_id] = _Stream(stream_id)
        elif current.id != stream_id:
            self._violate(found, "stream-id", f"stream id changed from {current.id!r} to {stream_id!r} "
                          "before the first stream finished", req_id)
            return
        elif current.finished:
            self._violate(found, "after-finish", f"a frame for stream {stream_id!r} after its finish", req_id)
            return
        if not content.startswith(current.content):
            self._violate(found, "not-cumulative", "stream content must be the whole text so far, "
                          "and it does not begin with the previous frame's", req_id)
        current.content = content
        current.finished = finish

    def _upload(self, frame: Frame, found: list[Violation]) -> str:
        body = dict(frame.body or {})
        if frame.cmd == Cmd.UPLOAD_INIT:
            media_type, size, count = body.get("type"), body.get("total_size"), body.get("total_chunks")
            if media_type not in ("file", "image", "voice", "video") or not isinstance(size, int) \
                    or not isinstance(count, int) or not 1 <= count <= 100:
                self._violate(found, "bad-upload", "upload init needs type, total_size, total_chunks 1..100",
                              frame.req_id)
                return encode_ack(frame.req_id, ERRCODE_INVALID_BODY, "invalid upload init")
            upload_id = "upload-" + secrets.token_hex(8)
            md5 = body.get("md5")
            self._upload_sessions[upload_id] = _Upload(str(media_type), size, count,
                                                       md5 if isinstance(md5, str) else None)
            return encode_ack(frame.req_id, body={"upload_id": upload_id})
        session = self._upload_sessions.get(str(body.get("upload_id")))
        if session is None:
            self._violate(found, "bad-upload", "unknown upload_id", frame.req_id)
            return encode_ack(frame.req_id, ERRCODE_INVALID_BODY, "invalid upload_id")
        if frame.cmd == Cmd.UPLOAD_CHUNK:
            index = body.get("chunk_index")
            try:
                data = base64.b64decode(str(body.get("base64_data", "")), validate=True)
            except (binascii.Error, ValueError):
                data = b""
            if not isinstance(index, int) or not 0 <= index < session.total_chunks or not data \
                    or len(data) > MAX_CHUNK_BYTES:
                self._violate(found, "bad-chunk", "a chunk needs an index 0..total_chunks-1 and 1..512 KB of base64",
                              frame.req_id)
                return encode_ack(frame.req_id, ERRCODE_INVALID_BODY, "invalid chunk")
            session.chunks[index] = data
            return encode_ack(frame.req_id)
        upload_id = str(body.get("upload_id"))
        whole = b"".join(session.chunks[i] for i in sorted(session.chunks))
        if sorted(session.chunks) != list(range(session.total_chunks)) or len(whole) != session.total_size \
                or (session.md5 is not None and hashlib.md5(whole).hexdigest() != session.md5):
            self._violate(found, "bad-upload", "finish with chunks missing, or size / md5 not matching",
                          frame.req_id)
            return encode_ack(frame.req_id, ERRCODE_INVALID_BODY, "upload incomplete")
        del self._upload_sessions[upload_id]
        media_id = "media-" + secrets.token_hex(12)
        self.uploads[media_id] = whole
        return encode_ack(frame.req_id, body={"type": session.media_type, "media_id": media_id,
                                              "created_at": str(int(time.time()))})

    # --- what the platform does ---------------------------------------------------------

    def _require_active(self) -> _Peer:
        if self._active is None:
            raise RuntimeError("no bot is subscribed to the fake platform")
        return self._active

    async def push(self, cmd: str, body: Mapping[str, Any]) -> Pushed:
        """Push a callback to the subscribed connection; returns its record (replies fill in)."""
        peer = self._require_active()
        req_id = secrets.token_hex(16)
        pushed = Pushed(req_id, cmd, dict(body), time.monotonic(), peer.number)
        self.pushed[req_id] = pushed
        await peer.ws.send(encode_callback(cmd, req_id, body))
        return pushed

    async def push_message(self, kind: str = "text", *, text: str = "hello", chat: str = "single",
                           userid: str = "zhangsan") -> Pushed:
        """Push a sample ``aibot_msg_callback``: text, image, mixed, voice, file, video or quote."""
        return await self.push(Cmd.MSG_CALLBACK, sample_message(self.bot_id, kind, text=text, chat=chat,
                                                                userid=userid))

    async def push_event(self, kind: str = "enter_chat", *, userid: str = "zhangsan",
                         task_id: str | None = None) -> Pushed:
        """Push a sample ``aibot_event_callback``: enter_chat, template_card_event, feedback_event."""
        return await self.push(Cmd.EVENT_CALLBACK, sample_event(self.bot_id, kind, userid=userid, task_id=task_id))

    async def push_raw(self, data: str | bytes) -> None:
        """Send anything (malformed frames) to the subscribed connection."""
        await self._require_active().ws.send(data)

    async def drop(self) -> None:
        """Cut the subscribed connection without a close frame, as a network failure does."""
        peer = self._require_active()
        self._active = None
        peer.ws.transport.abort()

    async def evict(self) -> None:
        """Subscribe a second connection for the same bot, which evicts the current one."""
        rival = await connect(self.url, ping_interval=None, logger=_WIRE_LOG)
        self._rivals.append(rival)
        await rival.send(subscribe_frame(self.bot_id, self._secret).to_json())
        await rival.recv()

    def replies(self, req_id: str) -> list[Frame]:
        return list(self.pushed[req_id].replies)

    def finished(self, req_id: str) -> bool:
        """Whether the bot's stream answer to ``req_id`` has reached its finishing frame."""
        stream = self._streams.get(req_id)
        return stream is not None and stream.finished


def sample_message(bot_id: str, kind: str, *, text: str = "hello", chat: str = "single",
                   userid: str = "zhangsan") -> dict[str, Any]:
    """A message body of the shape the platform pushes (the callback-URL plaintext, plus the
    per-file ``aeskey`` of this mode)."""
    body: dict[str, Any] = {"msgid": secrets.token_hex(16), "aibotid": bot_id, "chattype": chat,
                            "from": {"userid": userid}, "create_time": int(time.time()),
                            "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code="
                                            + secrets.token_urlsafe(24)}
    if chat == "group":
        body["chatid"] = "wrkSFfCgAAxxxxxx"
    media_url = "https://ww-aibot-img-1258476243.cos.ap-guangzhou.myqcloud.com/sample"
    aeskey = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    if kind in ("text", "quote"):
        body["msgtype"] = "text"
        body["text"] = {"content": text}
        if kind == "quote":
            body["quote"] = {"msgtype": "text", "text": {"content": "the quoted message"}}
    elif kind in ("image", "file", "video"):
        body["msgtype"] = kind
        body[kind] = {"url": f"{media_url}.{kind}", "aeskey": aeskey}
    elif kind == "voice":
        body["msgtype"] = "voice"
        body["voice"] = {"content": text}
    elif kind == "mixed":
        body["msgtype"] = "mixed"
        body["mixed"] = {"msg_item": [{"msgtype": "text", "text": {"content": text}},
                                      {"msgtype": "image", "image": {"url": f"{media_url}.jpg", "aeskey": aeskey}}]}
    else:
        raise ValueError(f"message kind must be one of {', '.join(MESSAGE_KINDS)}")
    return body


def sample_event(bot_id: str, kind: str, *, userid: str = "zhangsan", task_id: str | None = None) -> dict[str, Any]:
    """An event body of the shape the platform pushes: ``event.eventtype`` and ``event.<eventtype>``."""
    body: dict[str, Any] = {"msgid": secrets.token_hex(16), "create_time": int(time.time()), "aibotid": bot_id,
                            "chattype": "single", "from": {"userid": userid}, "msgtype": "event"}
    if kind == "enter_chat":
        body["event"] = {"eventtype": "enter_chat"}
    elif kind == "template_card_event":
        body["event"] = {"eventtype": kind, kind: {
            "card_type": "button_interaction", "event_key": "confirm",
            "task_id": task_id or "task_" + secrets.token_hex(6)}}
        body["response_url"] = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=" \
                               + secrets.token_urlsafe(24)
    elif kind == "feedback_event":
        body["event"] = {"eventtype": kind, kind: {"id": "feedback_" + secrets.token_hex(6), "type": 1}}
    else:
        raise ValueError(f"event kind must be one of {', '.join(EVENT_KINDS)}")
    return body
