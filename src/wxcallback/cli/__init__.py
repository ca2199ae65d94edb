"""The ``wxcallback`` command line.

``main`` is the click group behind the ``wxcallback`` console script; each module below
adds its commands to it.
"""

from __future__ import annotations

import click

from . import init, keys, messages, signature, url  # noqa: F401 - importing registers the commands
from .app import main


def _add_server_commands() -> None:
    # serve and simulate need the [server] extra (Starlette, uvicorn, httpx); the crypto
    # commands do not, so without it they explain what to install instead of failing to start.
    try:
        from ..server.command import serve
        from ..server.outbox_command import outbox, tickets
        from ..server.send_command import send
        from ..simulator.command import simulate
        from ..simulator.longconn_command import fake_platform
        from ..simulator.platform_api_command import fake_api
    except ImportError as exc:
        missing = exc.name or "a server dependency"
        for name in ("serve", "simulate", "fake-platform", "fake-api", "outbox", "send", "tickets"):
            _unavailable(name, missing)
        return
    main.add_command(serve)
    main.add_command(simulate)
    main.add_command(fake_platform)
    main.add_command(fake_api)
    main.add_command(outbox)
    main.add_command(send)
    main.add_command(tickets)


def _unavailable(name: str, missing: str) -> None:
    @main.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"{missing} is not installed: pip install 'wxcallback[server]'")

    command.help = f"Needs the server extra: pip install 'wxcallback[server]'."


_add_server_commands()

__all__ = ["main"]
