"""Run ``uvicorn`` or ``wxcallback serve`` with a listener that keeps TCP_NODELAY on.

    python bench/server/nodelay.py uvicorn ARGS...
    python bench/server/nodelay.py wxcallback serve ARGS...

With more than one worker, uvicorn binds the listening socket itself and creates it
with protocol 0; asyncio only sets TCP_NODELAY on accepted sockets whose protocol is
IPPROTO_TCP, so every response written in two parts (headers, then body) waits ~40 ms
for the client's delayed ACK (uvicorn issue #3149). This wrapper re-creates that one
socket with IPPROTO_TCP and changes nothing else, so the benchmark can show both the
server as shipped and what it does without the stall.
"""

from __future__ import annotations

import socket
import sys

import uvicorn.config

_bind_socket = uvicorn.config.Config.bind_socket


def _bind_socket_tcp(self: uvicorn.config.Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)
    return sock


uvicorn.config.Config.bind_socket = _bind_socket_tcp  # type: ignore[method-assign]

if __name__ == "__main__":
    program, *arguments = sys.argv[1:]
    sys.argv = [program, *arguments]
    if program == "uvicorn":
        from uvicorn.main import main as uvicorn_main

        uvicorn_main()
    elif program == "wxcallback":
        from wxcallback.cli import main as wxcallback_main

        sys.exit(wxcallback_main())
    else:
        sys.exit(f"nodelay.py: run 'uvicorn' or 'wxcallback', not {program!r}")
