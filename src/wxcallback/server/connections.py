"""uvicorn's HTTP protocol, guarded for the public internet, with TCP_NODELAY on every connection.

The platforms require a public callback URL, so anyone can open a connection. uvicorn
bounds neither the request head nor the time a client may take to send it: one 100 MiB
header was accepted (19 s, +100 MB RSS, URL checks on other channels delayed 4-6 s), and
1,100 sockets that send nothing kept every legitimate request out under ``ulimit -n
1024``. This protocol adds what a server facing the internet needs, per connection:

- the request head (request line and headers) is at most ``max_header_bytes`` (counted as
  the bytes arrive, before the parser buffers them) and ``max_headers`` fields, else 431
  and close;
- the head must arrive within ``header_timeout`` of the connection opening or of the
  previous response: an idle or trickling connection is closed (408 if it sent anything);
- at most ``max_connections`` are open per worker: beyond it the connection that has
  waited longest for a request is closed to make room (an idle keep-alive connection
  costs its client one reconnect), and only when none is idle is the new one refused
  with 503.

The body has its own bounds in the app (``max_body_bytes``, ``body_timeout``). Every
refusal is counted in ``STATS`` for /healthz and the metrics.

TCP_NODELAY: with several workers uvicorn binds the listening socket itself, with protocol
number 0, and asyncio only sets TCP_NODELAY on sockets whose protocol is IPPROTO_TCP.
Without it, Nagle's algorithm holds the response's last segment until the client's delayed
ACK: about 40 ms added to most callbacks (measured here: 48 ms instead of 3 ms per request).

One write per response: uvicorn writes the status line and headers on
``http.response.start`` and the body on ``http.response.body``; with TCP_NODELAY that is two
send() calls and two segments, which the client reads one at a time. The response cycle
writes through ``_HeadWithBody``, which holds the head until the body joins it (the app
sends both in one turn of the loop) or the loop's next turn.

Callbacks answered by the protocol: a GET or POST to a callback path whose whole body came
in the read that ended its head (what a platform sends) skips the ASGI cycle, its task, its
event, its message dicts and header checks: ``CallbackApp.respond_now`` runs the request up
to its first wait, in the read's own callback, and the response leaves in one write as soon
as it is there. Anything else (a body still on its way, which ``body_timeout`` bounds, HEAD,
100-continue, /healthz and /metrics, a path to refuse, a request pipelined behind one in
flight) takes the ASGI path. Both give the same status, headers and body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .worker_counts import WorkerCounts

__all__ = ["LIMITS_ENV", "STATS", "ConnectionLimits", "ConnectionStats", "GuardedHTTPProtocol",
           "raise_open_file_limit", "set_limits", "set_nodelay"]

_LOG = logging.getLogger("wxcallback.server")
#: how ``wxcallback serve`` hands the limits to its workers (spawned processes)
LIMITS_ENV = "WXCALLBACK_HTTP_LIMITS"
_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may cost a worker."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 5.0
    max_connections: int = 1000

    def to_environment(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_environment(cls) -> ConnectionLimits:
        raw = os.environ.get(LIMITS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


@dataclass
class ConnectionStats:
    """Connections the server closed or refused to protect itself, by reason.

    Under ``wxcallback serve --workers N`` each worker's counts also go to its file in the
    runtime directory (``worker_counts``), and ``snapshot`` sums every worker's: /healthz
    says the same whichever worker answers.
    """

    header_too_large: int = 0
    too_many_headers: int = 0
    header_timeout: int = 0
    evicted_idle: int = 0
    refused_full: int = 0

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        shared: WorkerCounts | None = self.__dict__.get("_shared")
        if shared is not None:
            shared.write([getattr(self, field) for field in shared.names])

    def share(self, counts: WorkerCounts) -> None:
        """Keep the counts in ``counts`` too (a file a dead worker with this pid left is carried on)."""
        for field, value in zip(counts.names, counts.mine()):
            object.__setattr__(self, field, getattr(self, field) + value)
        object.__setattr__(self, "_shared", counts)
        counts.write([getattr(self, field) for field in counts.names])

    def snapshot(self) -> dict[str, int] | None:
        """The counts (every worker's, summed), or None where this protocol does not serve
        (mounted in another framework)."""
        if not _serving:
            return None
        shared: WorkerCounts | None = self.__dict__.get("_shared")
        return shared.total() if shared is not None else asdict(self)


def _share_across_workers() -> None:
    counts = WorkerCounts.from_environment("connections", [f.name for f in fields(ConnectionStats)])
    if counts is not None:
        STATS.share(counts)


_serving = False


STATS = ConnectionStats()
_limits: ConnectionLimits | None = None


def _current_limits() -> ConnectionLimits:
    global _limits
    if _limits is None:
        _limits = ConnectionLimits.from_environment()
    return _limits


def set_limits(limits: ConnectionLimits) -> None:
    """Use ``limits`` in this process (tests, embedded servers); serve passes them by environment."""
    global _limits
    _limits = limits


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (at most the hard limit).

    Returns the soft limit now in force. Each connection is a file descriptor: under the
    usual default of 1,024 a few hundred idle sockets would starve the listener.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no RLIMIT_NOFILE
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - a sandbox that refuses
            pass
    return wanted if soft == resource.RLIM_INFINITY else soft


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock: Any = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - a socket already closed by the peer
            pass


class _HeadWithBody:
    """A response cycle's transport: its first write (the head) waits for the next one (the body).

    The head held goes out at the latest on the loop's next turn, or before a close.
    """

    __slots__ = ("_transport", "_loop", "_held", "_first")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# One sweep per worker and second, rather than a timer per connection and request: a
# connection still waiting for its head past header_timeout is closed (within a second).
_SWEEP_INTERVAL = 1.0
_sweepers: set[asyncio.AbstractEventLoop] = set()


def _ensure_sweeper(loop: asyncio.AbstractEventLoop, connections: set[Any], timeout: float) -> None:
    if loop in _sweepers:
        return
    _sweepers.add(loop)

    def sweep() -> None:
        if loop.is_closed():
            _sweepers.discard(loop)
            return
        deadline = time.monotonic() - timeout
        for connection in list(connections):
            waiting_since = getattr(connection, "_waiting_since", None)
            if (waiting_since is not None and waiting_since < deadline and connection._refusal is None
                    and not connection.transport.is_closing()):
                connection._head_timed_out()
        if connections:
            loop.call_later(min(_SWEEP_INTERVAL, timeout), sweep)
        else:
            _sweepers.discard(loop)  # restarted by the next connection

    loop.call_later(min(_SWEEP_INTERVAL, timeout), sweep)


class _DirectCycle:
    """A callback answered by the protocol itself: what uvicorn's connection code reads of a cycle.

    uvicorn asks a cycle whether its response is complete (to queue a pipelined request,
    to close at shutdown), turns keep-alive off at shutdown, marks it disconnected and sets
    its ``message_event`` when the client goes.
    """

    __slots__ = ("method", "path", "query", "keep_alive", "body", "response_complete", "disconnected")

    def __init__(self, method: str, path: str, query: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.keep_alive = keep_alive
        self.body = b""
        self.response_complete = False
        self.disconnected = False

    @property
    def message_event(self) -> _DirectCycle:
        return self

    def set(self) -> None:  # the message event: nobody waits on it here
        pass


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


class GuardedHTTPProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with bounds on the request head, its arrival time and connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        global _serving
        super().__init__(*args, **kwargs)
        if not _serving:
            _share_across_workers()
            _serving = True
        self._limits = _current_limits()
        self._in_head = True
        self._head_bytes = 0
        self._head_fields = 0
        self._tail = b""
        # when the connection began to wait for a request head; None while a request is in
        # flight (its body being read, its handler running, its response being written)
        self._waiting_since: float | None = time.monotonic()
        self._refusal: int | None = None
        # The app's direct answer (CallbackApp.respond_now), where uvicorn's access log, which
        # only the ASGI cycle writes, is off.
        self._direct: Any = getattr(self.app, "respond_now", None) if not self.access_log else None
        self._body_here = 0  # body bytes that came in the read that ended the head

    # --- connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections and not self._evict_idle():
            STATS.refused_full += 1
            self._refuse(503, "too many connections")
            return
        _ensure_sweeper(self.loop, self.connections, self._limits.header_timeout)

    def _evict_idle(self) -> bool:
        # A real client sends its head in one go: a connection still waiting for one is
        # idle or trickling, and the longest waiting is the first to go.
        idle = [c for c in self.connections
                if isinstance(c, GuardedHTTPProtocol) and c is not self and c._waiting_since is not None
                and not c.transport.is_closing()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._waiting_since or 0.0)
        STATS.evicted_idle += 1
        oldest.transport.close()
        return True

    # --- the request head -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._in_head:
            # Count the head's bytes as they arrive: the parser buffers an unfinished
            # header whole, so waiting for its callback would let it grow without bound.
            # The usual head arrives whole in one read: one find, no copy. Only a head split
            # across reads looks at the joint of the previous read's last bytes and this one.
            tail = self._tail
            joint = (tail + data[:3]).find(_HEAD_END) if tail else -1
            if joint >= 0:
                counted = joint + len(_HEAD_END) - len(tail)
            else:
                end = data.find(_HEAD_END)
                counted = len(data) if end < 0 else end + len(_HEAD_END)
            self._head_bytes += counted
            if self._head_bytes > self._limits.max_header_bytes:
                STATS.header_too_large += 1
                self._refuse(431, f"the request head is over {self._limits.max_header_bytes} bytes")
                return
            self._tail = data[-3:] if len(data) >= 3 else (tail + data)[-3:]
            self._body_here = len(data) - counted
        super().data_received(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self._limits.max_headers:
            self._refusal = 431
            # stops the parser; uvicorn answers through send_400_response, which says 431
            raise ValueError("too many header fields")
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._refusal == 431:
            STATS.too_many_headers += 1
            self._refusal = None
            self._refuse(431, f"more than {self._limits.max_headers} header fields")
            return
        super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._waiting_since = None  # a request is in flight until its response is complete
        if self._direct is not None and self._answers_directly():
            return
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:  # a new request: its response leaves in one write
            self.cycle.transport = _HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle) is _DirectCycle:
            cycle.body += body
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        if type(cycle) is _DirectCycle:
            answer: asyncio.Future[Any] = self._direct(cycle.method, cycle.path, cycle.query, cycle.body, self.loop)
            if answer.done():
                self._send_direct(cycle, answer)
            else:
                # among uvicorn's tasks, as an ASGI cycle's would be: a graceful shutdown waits
                # for it, and cancels it past timeout_graceful_shutdown
                tasks = self.tasks
                tasks.add(answer)  # type: ignore[arg-type]

                def answered(done: asyncio.Future[Any]) -> None:  # one callback: one call_soon
                    tasks.discard(done)
                    self._send_direct(cycle, done)

                answer.add_done_callback(answered)
        else:
            super().on_message_complete()
        # the next bytes on this connection are the next request's head; what came with this
        # one's says nothing of the next body (a head later in the same read is not measured)
        self._in_head = True
        self._body_here = 0
        self._head_bytes = self._head_fields = 0
        self._tail = b""

    def on_response_complete(self) -> None:
        if self.pipeline:  # a queued request already has its head: uvicorn starts it
            super().on_response_complete()
            return
        # uvicorn's own steps for the usual case, without the keep-alive timer it arms per
        # response (a TimerHandle made, then cancelled by the next request: ~1.7 µs): the
        # sweeper closes a connection that waits for its next head past header_timeout.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        self._waiting_since = time.monotonic()  # the next head's time starts now

    # --- callbacks answered without the ASGI cycle -------------------------------------------

    def _answers_directly(self) -> bool:
        """Take this request past the ASGI cycle (its task, messages and header checks):
        a GET or POST to a callback path whose whole body came with its head, nothing
        else in flight on this connection, no upgrade and no 100-continue."""
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.expect_100_continue:
            return False
        method = self.parser.get_method()
        if method != b"POST" and method != b"GET":
            return False
        length = 0
        for name, value in self.headers:
            if name == b"content-length":
                if not value.isdigit():
                    return False
                length = int(value)
            elif name == b"transfer-encoding" or name == b"upgrade":
                return False
        if length > self._body_here:
            return False  # the rest is on its way: the ASGI path reads it within body_timeout
        url = httptools.parse_url(self.url)
        path = self.app.direct_path(url.path)
        if path is None:
            return False
        http_version = self.parser.get_http_version()
        self.cycle = _DirectCycle(method.decode(), path, url.query or b"",  # type: ignore[assignment]
                                  http_version != "1.0" and self.parser.should_keep_alive())
        return True

    def _send_direct(self, cycle: _DirectCycle, answer: asyncio.Future[Any]) -> None:
        if answer.cancelled():  # the worker is stopping
            cycle.response_complete = True
            self.transport.close()
            return
        exc = answer.exception()
        if exc is not None:
            _LOG.error("unexpected error answering %s %s", cycle.method, cycle.path[:200], exc_info=exc)
            status, content_type, body = 500, b"text/plain; charset=utf-8", b"internal error"
            cycle.keep_alive = False
        else:
            response = answer.result()
            status, content_type, body = response.status, response.content_type.encode("latin-1"), response.body
        cycle.response_complete = True
        if cycle.disconnected or self.transport.is_closing():
            return
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += (name, b": ", value, b"\r\n")
        # an echoed echostr or an error text is never to be read as HTML
        head.append(b"content-type: %s\r\ncontent-length: %d\r\nx-content-type-options: nosniff\r\n%s\r\n"
                    % (content_type, len(body), b"" if cycle.keep_alive else b"connection: close\r\n"))
        head.append(body)
        self.transport.write(b"".join(head))
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    # --- the head timeout and refusals ----------------------------------------------------

    def _head_timed_out(self) -> None:
        STATS.header_timeout += 1
        if self._head_bytes:
            self._refuse(408, f"the request head did not arrive within {self._limits.header_timeout:g} s")
        else:
            self.transport.close()  # idle: nothing to answer

    def _refuse(self, status: int, detail: str) -> None:
        self._refusal = status
        body = detail.encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                             % (status, _REASONS[status], len(body), body))
        self.transport.close()
        client = self.client
        _LOG.warning(json.dumps({"outcome": "connection_refused", "status": status, "detail": detail,
                                 "client": f"{client[0]}:{client[1]}" if client else None}))

