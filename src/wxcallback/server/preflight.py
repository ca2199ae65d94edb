"""What ``wxcallback serve`` checks and says before it binds: the address, and demo channels.

The listening socket is uvicorn's; this only tries the same bind first, so a port already in
use is reported with its address before any "listening" banner, instead of after it.
"""

from __future__ import annotations

import socket

from .config import ServerConfig

__all__ = ["ListenError", "check_can_listen", "echo_warnings"]


class ListenError(OSError):
    """The server cannot listen on the configured address; the message names it."""


def check_can_listen(host: str, port: int) -> None:
    """Bind (and release) every address ``host`` resolves to, as uvicorn will."""
    where = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: the host does not resolve ({exc.strerror})") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # uvicorn sets SO_REUSEADDR too: a port in TIME_WAIT is free, one with a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address[:2] if family == socket.AF_INET else address)
            except OSError as exc:
                hint = " (another process listens there: stop it or choose --port)" if exc.errno in (
                    98, 48, 10048) else ""
                raise ListenError(f"cannot listen on {where}: {exc.strerror}{hint}") from None


def echo_warnings(config: ServerConfig) -> list[tuple[str, str]]:
    """(channel, sentence) for each channel with neither handler nor forward: it answers real users' texts."""
    return [(c.name, f"channels.{c.name} ({f'bot {c.bot_id}' if c.websocket else c.path}) has no handler and no "
                     "forward: it answers every text "
                     f"message by echoing it back (a demo). Set handler = \"module:attribute\" or "
                     f"forward = \"http://…\".")
            for c in config.channels if c.handler is None and c.forward is None]
