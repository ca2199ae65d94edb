"""Callbacks inside the web app you already run: Flask, Django, FastAPI / Starlette.

Each adapter is a thin layer over the same :class:`~wxcallback.server.runtime.CallbackServer`
that ``wxcallback serve`` runs: same channels configuration, handlers, stores, limits,
access log and metrics. Import the one for your framework (each needs that framework):

- :mod:`wxcallback.integrations.flask`: ``make_blueprint(config, url_prefix=...)``
- :mod:`wxcallback.integrations.django`: ``include("wxcallback.integrations.django.urls")``
- :mod:`wxcallback.integrations.asgi`: ``mount(app, "/wechat", config)``

:mod:`wxcallback.integrations.bridge` holds the blocking front the WSGI adapters share.
"""

from __future__ import annotations

from .bridge import BlockingCallbackServer, server_config

__all__ = ["BlockingCallbackServer", "server_config"]
