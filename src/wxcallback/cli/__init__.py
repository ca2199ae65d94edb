"""The ``wxcallback`` command line.

``main`` is the click group behind the ``wxcallback`` console script; each module below
adds its commands to it.
"""

from __future__ import annotations

import click

from . import keys, messages, signature, url  # noqa: F401 - importing registers the commands
from .app import main


def _add_server_commands() -> None:
    # The server needs the [server] extra (Starlette, uvicorn, httpx); the crypto commands do not.
    try:
        from ..server.command import serve
    except ImportError as exc:
        missing = exc.name or "a server dependency"

        @main.command("serve", context_settings={"ignore_unknown_options": True})
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        def serve_unavailable(args: tuple[str, ...]) -> None:
            """Run the callback server (needs: pip install 'wxcallback[server]')."""
            raise click.ClickException(f"{missing} is not installed: pip install 'wxcallback[server]'")

        return
    main.add_command(serve)


_add_server_commands()

__all__ = ["main"]
