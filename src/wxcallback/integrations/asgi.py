"""Callbacks inside a FastAPI or Starlette app: mount the server's ASGI app.

::

    from fastapi import FastAPI
    from wxcallback.integrations.asgi import mount

    app = FastAPI()
    mount(app, "/wechat", "wxcallback.toml")

A mounted app gets no lifespan events of its own. It starts itself on its first request,
but nothing would stop it: :func:`mount` wraps the parent app's lifespan so the callback
server starts with the app and stops gracefully (late handlers and robot streams
finished) when it shuts down. Everything runs on the parent's event loop; no thread.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Router

from ..server.app import CallbackApp, create_app
from ..server.config import ServerConfig
from ..server.runtime import CallbackServer
from ..server.stores import Store
from .bridge import server_config

__all__ = ["mount", "server_of"]


def server_of(app: CallbackApp) -> CallbackServer:
    """The :class:`CallbackServer` behind an app made by ``create_app`` (or :func:`mount`)."""
    return app.server


def mount(app: Starlette | Router, prefix: str,
          config: ServerConfig | Mapping[str, Any] | str | os.PathLike[str], *,
          store: Store | None = None, name: str = "wxcallback") -> CallbackApp:
    """Serve every channel under ``prefix`` in ``app`` (FastAPI or Starlette), with its start
    and graceful stop tied to the app's lifespan. Returns the mounted app."""
    callbacks = create_app(server_config(config), store=store)
    server = server_of(callbacks)
    router = app.router if isinstance(app, Starlette) else app
    router.mount(prefix, app=callbacks, name=name)
    outer = router.lifespan_context

    @asynccontextmanager
    async def lifespan(parent: Any) -> AsyncIterator[Any]:
        await server.start()
        try:
            async with outer(parent) as state:
                yield state
        finally:
            await server.stop()

    router.lifespan_context = lifespan
    return callbacks
