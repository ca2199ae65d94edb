"""Real processes on loopback: `wxcallback serve` instances and a recording business backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def write_config(path: Path, store: str, channels: dict[str, dict[str, Any]], **server: Any) -> Path:
    lines = ["[server]", f"store = {toml_value(store)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in server.items()]
    for name, channel in channels.items():
        lines.append(f"\n[channels.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in channel.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds; fail the test, naming ``what``, after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class ServerProcess:
    def __init__(self, config: Path, port: int, workers: int = 1, env: dict[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None, ready_path: str | None = "/healthz",
                 cwd: Path = ROOT) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="wxcallback-e2e-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wxcallback", "serve", "--config", str(config), "--port", str(port),
             "--workers", str(workers)],
            cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,
        )
        self.wait_ready(ready_path=ready_path)

    def wait_ready(self, timeout: float = 20.0, ready_path: str | None = "/healthz") -> None:
        """Wait for ``ready_path`` to answer 200 (None: for any HTTP answer at all)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                status = httpx.get(f"{self.url}{ready_path or '/'}", timeout=0.5).status_code
                if ready_path is None or status == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@contextmanager
def serve(config: Path, workers: int = 1, env: dict[str, str] | None = None,
          ready_path: str | None = "/healthz") -> Iterator[ServerProcess]:
    server = ServerProcess(config, free_port(), workers, env, ready_path=ready_path)
    try:
        yield server
    finally:
        server.stop()


class Backend:
    """A business backend that records every delivery (body and Idempotency-Key)."""

    def __init__(self, port: int | None = None, reply: dict[str, Any] | None = None,
                 slow_inline: float = 0.0, slow_first_retry: float = 0.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self.reply = reply
        # Seconds an inline delivery waits before its answer (a backend slower than forward_timeout).
        self.slow_inline = slow_inline
        # Seconds the first retried delivery waits (a backend still thinking when the worker asks).
        self.slow_first_retry = slow_first_retry
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                delivery = json.loads(body)
                backend.deliveries.append((self.headers.get("idempotency-key", ""), delivery))
                if delivery.get("delivery") == "inline" and backend.slow_inline:
                    time.sleep(backend.slow_inline)
                retries = [d for _, d in backend.deliveries if d.get("delivery") == "retry"]
                if len(retries) == 1 and delivery.get("delivery") == "retry" and backend.slow_first_retry:
                    time.sleep(backend.slow_first_retry)
                data = json.dumps({"reply": backend.reply} if backend.reply else {}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
