"""What the reliability runs share: real processes on loopback, platform-signed callbacks, /proc readings.

Everything here starts real processes (``wxcallback serve``, ``redis-server``, the recording
backend in ``backend.py``) on 127.0.0.1 and free ports, and stops only what it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from wxcallback.core import MessageCrypto, generate_encoding_aes_key, sign

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
CORP_ID = "wwreliability0001"
CHANNEL = "wecom"
CALLBACK_PATH = "/wecom"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the platform side -----------------------------------------------------------------------


@dataclass
class WeComSender:
    """Builds WeCom app text callbacks as the platform sends them: encrypted, signed, fresh nonce."""

    token: str = field(default_factory=lambda: secrets.token_hex(8))
    key: str = field(default_factory=generate_encoding_aes_key)
    crypto: MessageCrypto = field(init=False)

    def __post_init__(self) -> None:
        self.crypto = MessageCrypto(self.token, self.key, CORP_ID)

    @staticmethod
    def text(msg_id: int, content: str) -> str:
        return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[loaduser]]>"
                f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>")

    def callback(self, plaintext: str) -> tuple[str, bytes]:
        """(path with query, body) for one send; a resend calls this again (new timestamp and nonce)."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        encrypt = self.crypto.encrypt_reply(plaintext, nonce, timestamp=timestamp).encrypt
        query = urlencode({"msg_signature": sign(self.token, timestamp, nonce, encrypt), "timestamp": timestamp,
                           "nonce": nonce})
        body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return f"{CALLBACK_PATH}?{query}", body.encode()

    def channel_config(self) -> dict[str, Any]:
        return {"path": CALLBACK_PATH, "platform": "wecom-app", "token": self.token, "encoding_aes_key": self.key,
                "receive_id": CORP_ID}


def idempotency_key(msg_id: int) -> str:
    """The key the backend sees for a text message (channel + the message's dedup key)."""
    return f"{CHANNEL}:msgid:{msg_id}"


def write_config(path: Path, store: str, channel: dict[str, Any]) -> Path:
    lines = ["[server]", f"store = {json.dumps(store)}", "", f"[channels.{CHANNEL}]"]
    for name, value in channel.items():
        lines.append(f"{name} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- a poolless HTTP client -------------------------------------------------------------------


class SendError(Exception):
    """No HTTP answer: the connection failed or closed, or the answer was not HTTP."""


async def post_once(host: str, port: int, target: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """POST on a fresh connection, as the platform sends each callback; (status, body).

    httpx's pool walks every waiting request on every change, which starves the event
    loop once a fault leaves a thousand sends waiting; a connection per send keeps the
    generator's cost flat whatever the server does. Raises asyncio.TimeoutError or SendError.
    """
    connection = Connection(host, port, keep_alive=False)
    try:
        return await connection.post(target, body, timeout)
    finally:
        connection.close()


class Connection:
    """One HTTP/1.1 connection for POSTs, opened on first use and reopened after any failure.

    A fraction of httpx's cost per request, which matters when the load generator shares
    two cores with the server it measures.
    """

    def __init__(self, host: str, port: int, *, keep_alive: bool = True) -> None:
        self.host = host
        self.port = port
        self.keep_alive = keep_alive
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, target: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """(status, body); raises asyncio.TimeoutError or SendError, and then drops the connection."""
        try:
            return await asyncio.wait_for(self._post(target, body), timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def _post(self, target: str, body: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            try:
                self._streams = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise SendError(f"connect: {exc.strerror or exc}") from None
        reader, writer = self._streams
        try:
            writer.write(f"POST {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: text/xml\r\n"
                         f"Content-Length: {len(body)}\r\n"
                         f"Connection: {'keep-alive' if self.keep_alive else 'close'}\r\n\r\n".encode() + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            length, closing = 0, not self.keep_alive
            for line in header_lines:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value == "close":
                    closing = True
            data = await reader.readexactly(length) if length else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        if closing:
            self.close()
        return status, data


# -- processes -------------------------------------------------------------------------------


def _wait_until(check: Any, timeout: float, what: str, process: subprocess.Popen[bytes] | None = None,
                log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"{what} exited early (code {process.returncode}):\n{tail}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {timeout:g} s")


class ServerProcess:
    """One ``wxcallback serve`` (its own log file); can be stopped, SIGKILLed and started again."""

    def __init__(self, config: Path, port: int, workers: int, log_dir: Path, name: str) -> None:
        self.config = config
        self.port = port
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"
        self.log = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wxcallback", "serve", "--config", str(self.config), "--port",
                 str(self.port), "--workers", str(self.workers), "--log-level", "warning"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200, timeout,
                    f"server on port {self.port}", self.process, self.log)

    def kill(self) -> None:
        """SIGKILL the server and every worker it started, as a crash or the OOM killer would."""
        if self.process is None:
            return
        pids = descendants(self.process.pid)
        for pid in [self.process.pid, *pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.process = None

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def pids(self) -> list[int]:
        """The server process and its workers (uvicorn runs them as children)."""
        if self.process is None:
            return []
        return [self.process.pid, *descendants(self.process.pid)]


class RedisServer:
    """A ``redis-server`` of our own, persisting every write (AOF, fsync always) in a temp dir."""

    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        self.data_dir = data_dir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = data_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", str(self.log),
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_until(self._ping, 20.0, f"redis-server on port {self.port}", self.process, self.log)

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class BackendProcess:
    """The recording business backend (``backend.py``) as a process that can be stopped and restarted."""

    def __init__(self, port: int, record: Path, log_dir: Path) -> None:
        self.port = port
        self.record = record
        self.url = f"http://127.0.0.1:{port}/hook"
        self.log = log_dir / "backend.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "backend.py"), "--port", str(self.port), "--record", str(self.record)],
                stdout=log, stderr=subprocess.STDOUT)
        _wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200,
                    20.0, "backend", self.process, self.log)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def deliveries(self) -> list[str]:
        """Every Idempotency-Key the backend has acknowledged, in arrival order (repeats kept)."""
        if not self.record.exists():
            return []
        return [line.split(" ", 1)[1] for line in self.record.read_text().splitlines() if " " in line]


# -- /proc readings --------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren …), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name may hold spaces and parentheses: the ppid follows the last ')'.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return sorted(found)


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# -- figures ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def other_load() -> list[str]:
    """What else used the CPU just before the run (top's second frame: CPU over the last second)."""
    try:
        frames = subprocess.run(["top", "-b", "-n", "2", "-d", "1", "-w", "200"], capture_output=True, text=True, check=False,
                                timeout=10).stdout.split("\ntop - ")
    except (OSError, subprocess.SubprocessError):
        return []
    lines = frames[-1].splitlines()
    header = next((i for i, line in enumerate(lines) if line.strip().startswith("PID")), None)
    if header is None:
        return []
    busy = []
    for line in lines[header + 1:]:
        fields = line.split(None, 11)
        if len(fields) == 12 and int(fields[0]) != os.getpid() and float(fields[8]) >= 1.0:
            busy.append(f"{fields[8]}% nice {fields[3]} {command_of(int(fields[0]))[:120] or fields[11]}")
    return busy[:6]


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
