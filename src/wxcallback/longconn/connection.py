"""``LongConnection``: keep a smart robot's WebSocket to the platform up, and talk over it.

The bot opens the socket (default ``wss://openws.work.weixin.qq.com``; private deployments
have their own), sends ``aibot_subscribe`` with its bot_id and secret, then pings every
30 s; the platform pushes message and event callbacks and acknowledges every frame the
bot sends (WeCom doc 101463; the official Node SDK). This module adds what a server
needs around that:

- callbacks go to ``on_callback(callback)``, each in its own task, so a slow handler never
  holds up the reading of acks;
- replies and requests are serial per req_id: each frame waits for the ack of the one
  before it (5 s each), with a bounded queue, as the platform acknowledges them in order;
- two unanswered pings mean a dead connection; drops, refusals and dead connections are
  retried with backoff (1 s doubling to 30 s, with jitter) and a fresh subscribe;
- a refused subscribe (853000: wrong bot_id or secret) is a configuration error: after
  ``max_subscribe_failures`` tries in a row the connection stops for good and says so;
- ``disconnected_event`` means another connection took the bot: this one closes and stays
  down, since two that reconnect evict each other forever;
- with a :class:`~wxcallback.longconn.lease.Lease` it connects only while it holds the
  bot's lease, renews it while connected, and lets go on stop or eviction.

The secret is never logged and never shown by a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from wxcallback.messages import Reply, StreamImage, StreamReply
from wxcallback.messages.robot_replies import new_stream_id

from .errors import AckError, AckTimeout, FrameBuildError, FrameError, LongConnError, NotConnected, QueueFull
from .frames import (
    DEFAULT_URL,
    ERRCODE_AUTH_FAILED,
    MAX_CONTENT_BYTES,
    Ack,
    Callback,
    Cmd,
    Frame,
    chunk_media,
    markdown_body,
    parse_frame,
    ping_frame,
    reply_frame,
    respond_frame,
    send_msg_frame,
    subscribe_frame,
    template_card_body,
    upload_chunk_frame,
    upload_finish_frame,
    upload_init_frame,
)
from .lease import Lease, default_holder, lease_name

__all__ = ["ConnectionState", "LongConnSettings", "LongConnection", "Phase", "SecretFilter", "TerminalReason",
           "UploadedMedia", "backoff_delay"]

_LOG = logging.getLogger("wxcallback.longconn")
# websockets' own debug lines show a frame's head and tail, which would show the end of the
# subscribe secret; its connections log here, through SecretFilter
_WIRE_LOG = logging.getLogger("wxcallback.longconn.wire")


class SecretFilter(logging.Filter):
    """Withholds any log record that would show one of the registered secrets (or its frame)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        self._secrets.add(secret)

    def discard(self, secret: str) -> None:
        self._secrets.discard(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            data = getattr(arg, "data", None)
            if isinstance(data, (bytes, bytearray)) and any(s.encode() in data for s in self._secrets):
                record.msg, record.args = "frame withheld from the log: it carries a secret", None
                return True
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = "log line withheld: it carries a secret", None
        return True


WIRE_FILTER = SecretFilter()
_WIRE_LOG.addFilter(WIRE_FILTER)

OnCallback = Callable[[Callback], Awaitable[None]]

# a stream is accepted for about 6 minutes from its first frame (846608 after); finish before
STREAM_LIFETIME: Final = 6 * 60 - 15


@dataclass(frozen=True)
class LongConnSettings:
    """What a long connection needs; every duration is in seconds.

    Defaults follow the official Node SDK: heartbeat 30 s, dead after 2 unanswered pings,
    ack timeout 5 s, 500 frames queued per req_id, backoff 1 s doubling to 30 s, 5 refused
    subscribes before giving up. ``max_reconnects`` (failed attempts in a row after drops)
    is None, retry forever, as a server should. The secret is left out of the repr.
    """

    bot_id: str
    secret: str = field(repr=False)
    url: str = DEFAULT_URL
    heartbeat_interval: float = 30.0
    missed_pings: int = 2
    ack_timeout: float = 5.0
    max_queue: int = 500
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    backoff_jitter: float = 0.25
    max_subscribe_failures: int = 5
    max_reconnects: int | None = None
    open_timeout: float = 10.0
    subscribe_timeout: float = 10.0
    close_timeout: float = 2.0
    lease_ttl: float = 15.0
    stream_interval: float = 0.5
    subscribe_extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.bot_id, str) or not self.bot_id:
            raise ValueError("bot_id must be the robot's BotID")
        if not isinstance(self.secret, str) or not self.secret:
            raise ValueError("secret must be the robot's long-connection Secret")
        if not isinstance(self.url, str) or not self.url.startswith(("wss://", "ws://")):
            raise ValueError("url must be a ws:// or wss:// address")
        for name in ("heartbeat_interval", "ack_timeout", "backoff_base", "backoff_max", "open_timeout",
                     "subscribe_timeout", "close_timeout", "lease_ttl"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if not 0 <= self.backoff_jitter < 1:
            raise ValueError("backoff_jitter must be in [0, 1)")
        if self.stream_interval < 0:
            raise ValueError("stream_interval cannot be negative")
        for name in ("missed_pings", "max_queue", "max_subscribe_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise ValueError("max_reconnects must be None (forever) or >= 0")


class Phase(str, enum.Enum):
    IDLE = "idle"
    STANDBY = "standby"  # waiting for the lease held by another process
    CONNECTING = "connecting"
    CONNECTED = "connected"  # subscribed: callbacks flow, sends work
    BACKOFF = "backoff"
    STOPPED = "stopped"
    TERMINAL = "terminal"  # given up: see ConnectionState.terminal


class TerminalReason(str, enum.Enum):
    SUBSCRIBE_REFUSED = "subscribe_refused"
    EVICTED = "evicted"
    RECONNECTS_EXHAUSTED = "reconnects_exhausted"


@dataclass(frozen=True)
class ConnectionState:
    """A snapshot for health checks and metrics. Times are Unix seconds."""

    phase: Phase = Phase.IDLE
    since: float | None = None  # when the current connection was subscribed
    changed_at: float | None = None  # when the phase last changed
    last_error: str | None = None
    reconnects: int = 0  # connection attempts after the first one
    subscribe_failures: int = 0  # refused subscribes in a row
    terminal: TerminalReason | None = None
    terminal_message: str | None = None
    holds_lease: bool = False
    malformed_frames: int = 0

    @property
    def connected(self) -> bool:
        return self.phase is Phase.CONNECTED

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase.value, "connected": self.connected, "since": self.since,
                "changed_at": self.changed_at, "last_error": self.last_error, "reconnects": self.reconnects,
                "subscribe_failures": self.subscribe_failures,
                "terminal": self.terminal.value if self.terminal else None,
                "terminal_message": self.terminal_message, "holds_lease": self.holds_lease,
                "malformed_frames": self.malformed_frames}


@dataclass(frozen=True, slots=True)
class UploadedMedia:
    """A finished upload: the media_id (valid 3 days) to send or reply with."""

    media_id: str
    type: str
    created_at: str | None = None


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 30.0, jitter: float = 0.25,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …): base·2^(attempt-1), at most
    ``cap``, less up to ``jitter`` of it at random so many bots do not retry in step."""
    nominal = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 62))
    return nominal * (1.0 - jitter * rand())


class _Kind(enum.Enum):
    FAILED = "failed"  # could not connect, or no answer to the subscribe
    REFUSED = "refused"  # the subscribe was answered errcode != 0
    DROPPED = "dropped"  # was subscribed, then lost the connection
    EVICTED = "evicted"
    LEASE_LOST = "lease_lost"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: _Kind
    message: str = ""
    errcode: int | None = None


class _Lane:
    """The frames of one req_id: one at a time, each after the ack of the previous."""

    __slots__ = ("lock", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0


class LongConnection:
    """One robot's long connection: run it, answer its callbacks, send through it.

    ``await run()`` keeps it up until ``stop()`` or a terminal state and returns the final
    state; ``start()`` runs it in a task. ``on_callback`` gets every message and event
    callback except ``disconnected_event``, which the connection handles itself.
    """

    def __init__(
        self,
        settings: LongConnSettings,
        on_callback: OnCallback,
        *,
        lease: Lease | None = None,
        holder: str | None = None,
        on_state: Callable[[ConnectionState], None] | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._on_callback = on_callback
        self._lease = lease
        self.holder = holder or default_holder()
        self.lease_name = lease_name(settings.bot_id)
        self._on_state = on_state
        self._rand = rand
        self._clock = clock
        self._state = ConnectionState()
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[ConnectionState] | None = None
        self._running = False
        self._lanes: dict[str, _Lane] = {}
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._pings: set[str] = set()
        self._missed = 0
        self._evicted = False
        self._handlers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (f"LongConnection(bot_id={self.settings.bot_id!r}, url={self.settings.url!r}, "
                f"phase={self._state.phase.value!r})")

    # --- state ----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def _update(self, **changes: Any) -> None:
        if "phase" in changes and changes["phase"] is not self._state.phase:
            changes["changed_at"] = self._clock()
        self._state = replace(self._state, **changes)
        if self._on_state is not None:
            try:
                self._on_state(self._state)
            except Exception:  # noqa: BLE001 - an observer must not break the connection
                _LOG.exception("longconn bot_id=%s: the on_state observer failed", self.settings.bot_id)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once subscribed; raise NotConnected if the connection ends first, AckTimeout
        (a LongConnError) if ``timeout`` passes."""
        waiter = asyncio.ensure_future(self._connected.wait())
        ender = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({waiter, ender}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            ender.cancel()
        if self._connected.is_set():
            return
        if not done:
            raise AckTimeout(f"not subscribed within {timeout} s (last error: {self._state.last_error})")
        raise NotConnected(f"the connection ended: {self._state.terminal_message or self._state.last_error}")

    # --- running --------------------------------------------------------------------

    def start(self) -> asyncio.Task[ConnectionState]:
        """Run the connection in a task of the running loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"longconn:{self.settings.bot_id}")
        return self._task

    async def stop(self) -> ConnectionState:
        """Close the connection, release the lease, and return the final state."""
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self._state

    async def run(self) -> ConnectionState:
        """Connect, subscribe, serve, reconnect; until ``stop()`` or a terminal state."""
        if self._running:
            raise RuntimeError("this LongConnection is already running")
        self._running = True
        self._stopping.clear()
        WIRE_FILTER.add(self.settings.secret)
        failures = 0
        attempts = 0
        try:
            while not self._stopping.is_set():
                if self._lease is not None and not self._state.holds_lease:
                    if not await self._acquire_lease():
                        break
                if attempts:
                    self._update(reconnects=self._state.reconnects + 1)
                attempts += 1
                outcome = await self._session()
                if self._stopping.is_set() or outcome.kind is _Kind.STOPPED:
                    break
                if outcome.kind is _Kind.EVICTED:
                    self._terminate(TerminalReason.EVICTED, outcome.message)
                    break
                if outcome.kind is _Kind.LEASE_LOST:
                    self._update(holds_lease=False, last_error=outcome.message, phase=Phase.STANDBY)
                    continue
                if outcome.kind is _Kind.REFUSED:
                    refused = self._state.subscribe_failures + 1
                    self._update(subscribe_failures=refused, last_error=outcome.message)
                    if refused >= self.settings.max_subscribe_failures:
                        self._terminate(TerminalReason.SUBSCRIBE_REFUSED,
                                        f"{outcome.message}; gave up after {refused} refused subscribes")
                        break
                    attempt = refused
                else:
                    failures = 1 if outcome.kind is _Kind.DROPPED else failures + 1
                    self._update(last_error=outcome.message)
                    if self.settings.max_reconnects is not None and failures > self.settings.max_reconnects:
                        self._terminate(TerminalReason.RECONNECTS_EXHAUSTED,
                                        f"{outcome.message}; gave up after {failures - 1} reconnects")
                        break
                    attempt = failures
                delay = backoff_delay(attempt, base=self.settings.backoff_base, cap=self.settings.backoff_max,
                                      jitter=self.settings.backoff_jitter, rand=self._rand)
                _LOG.warning("longconn bot_id=%s: %s; reconnecting in %.1f s", self.settings.bot_id,
                             outcome.message, delay)
                self._update(phase=Phase.BACKOFF)
                await self._sleep_unless_stopped(delay)
        finally:
            await self._release_lease()
            for task in list(self._handlers):
                task.cancel()
            if self._state.phase is not Phase.TERMINAL:
                self._update(phase=Phase.STOPPED)
            self._stopping.set()
            self._running = False
            WIRE_FILTER.discard(self.settings.secret)
        return self._state

    def _terminate(self, reason: TerminalReason, message: str) -> None:
        _LOG.error("longconn bot_id=%s stopped for good (%s): %s", self.settings.bot_id, reason.value, message)
        self._update(phase=Phase.TERMINAL, terminal=reason, terminal_message=message, last_error=message)

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _acquire_lease(self) -> bool:
        assert self._lease is not None
        ttl = self.settings.lease_ttl
        while not self._stopping.is_set():
            try:
                if await self._lease.acquire(self.lease_name, self.holder, ttl):
                    self._update(holds_lease=True)
                    return True
            except Exception as exc:  # noqa: BLE001 - a store outage is retried, not fatal
                self._update(last_error=f"lease store: {type(exc).__name__}: {exc}")
            if self._state.phase is not Phase.STANDBY:
                _LOG.info("longconn bot_id=%s: another process holds the connection; standing by",
                          self.settings.bot_id)
                self._update(phase=Phase.STANDBY)
            await self._sleep_unless_stopped(ttl / 3)
        return False

    async def _release_lease(self) -> None:
        if self._lease is None or not self._state.holds_lease:
            return
        try:
            await self._lease.release(self.lease_name, self.holder)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            _LOG.warning("longconn bot_id=%s: releasing the lease failed: %s", self.settings.bot_id, exc)
        self._update(holds_lease=False)

    async def _keep_lease(self) -> _Outcome:
        if self._lease is None:
            await self._stopping.wait()
            return _Outcome(_Kind.STOPPED)
        ttl = self.settings.lease_ttl
        last_good = time.monotonic()
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                renewed: bool | None = await self._lease.renew(self.lease_name, self.holder, ttl)
            except Exception as exc:  # noqa: BLE001 - retried until the lease would have expired
                _LOG.warning("longconn bot_id=%s: renewing the lease failed: %s", self.settings.bot_id, exc)
                renewed = None
            if renewed:
                last_good = time.monotonic()
            elif renewed is False or time.monotonic() - last_good >= ttl:
                return _Outcome(_Kind.LEASE_LOST, "the lease was lost; closing so another process can hold the bot")

    # --- one connection ---------------------------------------------------------------

    async def _session(self) -> _Outcome:
        self._update(phase=Phase.CONNECTING)
        self._evicted = False
        try:
            ws = await connect(self.settings.url, open_timeout=self.settings.open_timeout, ping_interval=None,
                               close_timeout=self.settings.close_timeout, max_size=4 * 1024 * 1024,
                               logger=_WIRE_LOG)
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            return _Outcome(_Kind.FAILED, f"cannot connect to {self.settings.url}: {type(exc).__name__}: {exc}")
        tasks: list[asyncio.Task[_Outcome]] = []
        try:
            refused = await self._subscribe(ws)
            if refused is not None:
                return refused
            self._ws = ws
            self._missed = 0
            self._pings.clear()
            self._update(phase=Phase.CONNECTED, since=self._clock(), subscribe_failures=0, last_error=None)
            self._connected.set()
            _LOG.info("longconn bot_id=%s: subscribed", self.settings.bot_id)
            tasks = [asyncio.ensure_future(self._read(ws)), asyncio.ensure_future(self._heartbeat(ws)),
                     asyncio.ensure_future(self._keep_lease()), asyncio.ensure_future(self._until_stopped())]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            self._connected.clear()
            self._ws = None
            for task in tasks:
                task.cancel()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NotConnected("the connection was lost before the platform acknowledged"))
            self._pending.clear()
            if self._state.phase is Phase.CONNECTED:
                self._update(phase=Phase.CONNECTING, since=None)
            with contextlib.suppress(Exception):
                await ws.close()

    async def _until_stopped(self) -> _Outcome:
        await self._stopping.wait()
        return _Outcome(_Kind.STOPPED)

    async def _subscribe(self, ws: ClientConnection) -> _Outcome | None:
        settings = self.settings
        frame = subscribe_frame(settings.bot_id, settings.secret, extra=settings.subscribe_extra)
        early: list[Callback] = []

        async def answer() -> Ack | None:
            async for data in ws:
                try:
                    parsed = parse_frame(data)
                except FrameError as exc:
                    self._malformed(exc)
                    continue
                if isinstance(parsed, Ack):
                    if parsed.req_id == frame.req_id:
                        return parsed
                else:
                    early.append(parsed)
            return None

        try:
            await ws.send(frame.to_json())
            ack = await asyncio.wait_for(answer(), settings.subscribe_timeout)
        except asyncio.TimeoutError:
            return _Outcome(_Kind.FAILED, f"no answer to the subscribe within {settings.subscribe_timeout} s")
        except ConnectionClosed as exc:
            return _Outcome(_Kind.FAILED, f"the connection closed during the subscribe: {exc}")
        if ack is None:
            return _Outcome(_Kind.FAILED, "the connection closed during the subscribe")
        if not ack.ok:
            hint = ": check the bot_id and secret" if ack.errcode == ERRCODE_AUTH_FAILED else ""
            return _Outcome(_Kind.REFUSED, f"subscribe refused: errcode {ack.errcode} {ack.errmsg}{hint}",
                            ack.errcode)
        for callback in early:
            self._dispatch(callback)
        return None

    async def _read(self, ws: ClientConnection) -> _Outcome:
        try:
            async for data in ws:
                self._on_frame(data)
                if self._evicted:
                    return _Outcome(_Kind.EVICTED, "another connection subscribed this bot (disconnected_event); "
                                                   "staying down so the two do not evict each other")
        except ConnectionClosed as exc:
            return _Outcome(_Kind.DROPPED, f"connection lost: {exc}")
        return _Outcome(_Kind.DROPPED, f"the platform closed the connection (code {ws.close_code})")

    async def _heartbeat(self, ws: ClientConnection) -> _Outcome:
        limit = self.settings.missed_pings
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            if self._missed >= limit:
                return _Outcome(_Kind.DROPPED, f"{self._missed} pings unanswered: the connection is dead")
            frame = ping_frame()
            self._pings.add(frame.req_id)
            self._missed += 1
            try:
                await ws.send(frame.to_json())
            except ConnectionClosed as exc:
                return _Outcome(_Kind.DROPPED, f"connection lost: {exc}")

    def _malformed(self, exc: FrameError) -> None:
        self._update(malformed_frames=self._state.malformed_frames + 1)
        _LOG.warning("longconn bot_id=%s: ignored a malformed frame (%d %s): %s", self.settings.bot_id,
                     int(exc.code), exc.reason, exc)

    def _on_frame(self, data: str | bytes) -> None:
        try:
            parsed = parse_frame(data)
        except FrameError as exc:
            self._malformed(exc)
            return
        if isinstance(parsed, Ack):
            if parsed.req_id in self._pings:
                if parsed.ok:
                    self._pings.clear()
                    self._missed = 0
                else:
                    _LOG.warning("longconn bot_id=%s: ping answered errcode %d %s", self.settings.bot_id,
                                 parsed.errcode, parsed.errmsg)
                return
            future = self._pending.get(parsed.req_id)
            if future is not None and not future.done():
                future.set_result(parsed)
            else:
                _LOG.debug("longconn bot_id=%s: ack for no waiting frame (req_id %s)", self.settings.bot_id,
                           parsed.req_id)
            return
        if parsed.eventtype == "disconnected_event":
            _LOG.warning("longconn bot_id=%s: disconnected_event: another connection subscribed this bot",
                         self.settings.bot_id)
            self._evicted = True
            return
        self._dispatch(parsed)

    def _dispatch(self, callback: Callback) -> None:
        task = asyncio.ensure_future(self._handle(callback))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, callback: Callback) -> None:
        try:
            await self._on_callback(callback)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one failing handler must not end the connection
            _LOG.exception("longconn bot_id=%s: the callback handler failed (req_id %s, msgid %s)",
                           self.settings.bot_id, callback.req_id, callback.msgid)

    # --- sending ----------------------------------------------------------------------

    async def request(self, frame: Frame) -> Ack:
        """Send ``frame`` and return the platform's ack.

        Frames sharing a req_id go one at a time, each after the previous one's ack (at
        most ``max_queue`` waiting). Raises AckError (errcode != 0), AckTimeout, NotConnected
        or QueueFull, all LongConnErrors.
        """
        req_id = frame.req_id
        lane = self._lanes.get(req_id)
        if lane is None:
            lane = self._lanes[req_id] = _Lane()
        if lane.waiting >= self.settings.max_queue:
            raise QueueFull(f"{lane.waiting} frames already wait on req_id {req_id}")
        lane.waiting += 1
        try:
            async with lane.lock:
                ack = await self._send_and_wait(frame)
        finally:
            lane.waiting -= 1
            if lane.waiting == 0 and self._lanes.get(req_id) is lane:
                del self._lanes[req_id]
        if not ack.ok:
            raise AckError(f"{frame.cmd} answered errcode {ack.errcode} {ack.errmsg}", errcode=ack.errcode,
                           errmsg=ack.errmsg, req_id=req_id)
        return ack

    async def _send_and_wait(self, frame: Frame) -> Ack:
        ws = self._ws
        if ws is None:
            raise NotConnected(f"not subscribed ({self._state.phase.value}); {frame.cmd} not sent")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[frame.req_id] = future
        try:
            await ws.send(frame.to_json())
            return await asyncio.wait_for(future, self.settings.ack_timeout)
        except ConnectionClosed:
            raise NotConnected(f"the connection was lost while sending {frame.cmd}") from None
        except asyncio.TimeoutError:
            raise AckTimeout(f"no ack for {frame.cmd} within {self.settings.ack_timeout} s "
                             f"(req_id {frame.req_id})") from None
        finally:
            if self._pending.get(frame.req_id) is future:
                del self._pending[frame.req_id]

    async def respond(self, callback: Callback, reply: Reply) -> Ack | None:
        """Answer a callback with a Reply (one frame on its req_id); None for an empty reply."""
        frame = reply_frame(reply, callback)
        if frame is None:
            return None
        return await self.request(frame)

    async def respond_body(self, callback: Callback, body: Mapping[str, Any], cmd: str = Cmd.RESPOND_MSG) -> Ack:
        """Answer a callback with a body as the platform documents it (checked first)."""
        return await self.request(respond_frame(cmd, callback.req_id, body))

    async def respond_stream(
        self,
        callback: Callback,
        chunks: AsyncIterable[str],
        *,
        stream_id: str | None = None,
        feedback_id: str | None = None,
        images: Sequence[StreamImage] = (),
        placeholder: str | None = None,
        interval: float | None = None,
    ) -> StreamReply:
        """Answer a message with a stream: each text chunk is appended, and the whole text so
        far is pushed at most every ``interval`` seconds (default ``stream_interval``), then a
        last frame with ``finish: true`` (and ``images``). Returns the final state.

        The first frame goes out as soon as there is text (or ``placeholder`` at once) and
        carries ``feedback_id``. Text past 20480 bytes is cut there and the stream finished;
        it is finished too before the platform's ~6-minute limit. If ``chunks`` raises, the
        stream is finished with the text so far and the error re-raised.
        """
        if callback.is_event:
            raise FrameBuildError(f"a {callback.eventtype!r} event takes no stream; streams answer messages")
        every = self.settings.stream_interval if interval is None else interval
        sid = stream_id or new_stream_id()
        deadline = time.monotonic() + STREAM_LIFETIME
        text = ""
        changed = asyncio.Event()
        ended = asyncio.Event()
        truncated = False

        async def pull() -> None:
            nonlocal text, truncated
            try:
                async for piece in chunks:
                    if not isinstance(piece, str):
                        raise FrameBuildError(f"a stream yields str, got {type(piece).__name__}")
                    text += piece
                    if len(text) * 4 > MAX_CONTENT_BYTES and len(text.encode("utf-8")) > MAX_CONTENT_BYTES:
                        text = text.encode("utf-8")[:MAX_CONTENT_BYTES].decode("utf-8", "ignore")
                        truncated = True
                        break
                    changed.set()
            finally:
                ended.set()
                changed.set()

        first = True

        def frame_for(content: str, finish: bool = False) -> Frame:
            nonlocal first
            state = StreamReply(sid, content, finish, images if finish else (), feedback_id if first else None)
            first = False
            return respond_frame(Cmd.RESPOND_MSG, callback.req_id,
                                 {"msgtype": "stream", "stream": state.stream_object()})

        puller = asyncio.ensure_future(pull())
        sent: str | None = None
        try:
            if placeholder is not None:
                await self.request(frame_for(placeholder))
                sent = placeholder
            while not ended.is_set() and time.monotonic() < deadline:
                await changed.wait()
                changed.clear()
                if ended.is_set():
                    break
                if text != sent:
                    snapshot = text
                    await self.request(frame_for(snapshot))
                    sent = snapshot
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(ended.wait(), every)
        finally:
            if not puller.done():
                puller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await puller
        if truncated:
            _LOG.warning("longconn bot_id=%s: stream %s reached %d bytes; cut and finished", self.settings.bot_id,
                         sid, MAX_CONTENT_BYTES)
        error = puller.exception() if not puller.cancelled() else None
        await self.request(frame_for(text, finish=True))
        if error is not None:
            raise error
        return StreamReply(sid, text, True, images)

    async def send_message(self, chatid: str, body: Mapping[str, Any]) -> Ack:
        """Push a message to a chat (a userid for a single chat, a group's chatid)."""
        return await self.request(send_msg_frame(chatid, body))

    async def send_markdown(self, chatid: str, content: str) -> Ack:
        return await self.send_message(chatid, markdown_body(content))

    async def send_template_card(self, chatid: str, card: Mapping[str, Any]) -> Ack:
        return await self.send_message(chatid, template_card_body(card))

    async def upload_media(self, data: bytes, *, media_type: str, filename: str, concurrency: int = 2,
                           chunk_retries: int = 2, retry_delay: float = 0.5) -> UploadedMedia:
        """Upload a temporary media file in chunks (init, chunks ≤ 512 KB, finish).

        At most ``concurrency`` chunks are in flight (the platform answers many parallel
        chunks with a system error); a refused or unanswered chunk is tried again up to
        ``chunk_retries`` times.
        """
        chunks = chunk_media(data)
        init = await self.request(upload_init_frame(media_type, filename, data, chunks))
        upload_id = (init.body or {}).get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise LongConnError("the upload init ack carries no upload_id")
        gate = asyncio.Semaphore(max(1, concurrency))

        async def send_chunk(index: int, chunk: bytes) -> None:
            for attempt in range(chunk_retries + 1):
                try:
                    async with gate:
                        await self.request(upload_chunk_frame(upload_id, index, chunk))
                    return
                except (AckError, AckTimeout):
                    if attempt == chunk_retries:
                        raise
                    await asyncio.sleep(retry_delay * (attempt + 1))

        results = await asyncio.gather(*(send_chunk(i, c) for i, c in enumerate(chunks)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        finish = await self.request(upload_finish_frame(upload_id))
        body = finish.body or {}
        media_id = body.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise LongConnError("the upload finish ack carries no media_id")
        created = body.get("created_at")
        return UploadedMedia(media_id, str(body.get("type") or media_type),
                             None if created is None else str(created))
