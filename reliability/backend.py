"""A business backend that acknowledges every delivery and records its Idempotency-Key.

    python reliability/backend.py --port 9000 --record deliveries.txt

Each acknowledged ``POST`` appends ``<unix time> <Idempotency-Key>`` to the record file and
flushes it *before* answering 200, so the file holds every delivery the server may count as
done, also across a stop and a restart (the file is appended to, never truncated).
``GET /healthz`` answers 200 once the socket is listening.
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO


def serve(port: int, record: BinaryIO) -> None:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as a real backend behind httpx's pool would.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            key = self.headers.get("idempotency-key", "-") or "-"
            with lock:
                record.write(f"{time.time():.3f} {key}\n".encode())
                record.flush()
            self._answer(b"{}")

        def do_GET(self) -> None:
            self._answer(b'{"status": "ok"}')

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True, help="file to append '<time> <Idempotency-Key>' lines to")
    args = parser.parse_args()
    with open(args.record, "ab") as record:
        serve(args.port, record)


if __name__ == "__main__":
    main()
