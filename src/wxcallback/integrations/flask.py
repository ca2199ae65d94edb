"""Callbacks inside a Flask app: a blueprint serving every configured channel.

::

    from flask import Flask
    from wxcallback.integrations.flask import make_blueprint

    app = Flask(__name__)
    app.register_blueprint(make_blueprint("wxcallback.toml", url_prefix="/wechat"))

Each channel answers at ``url_prefix + channel.path`` exactly as ``wxcallback serve``
would: the requests go through the same pipeline, store and handlers (see
:mod:`wxcallback.integrations.bridge`). Flask has no CSRF protection of its own; with
Flask-WTF's ``CSRFProtect``, exempt the blueprint (``csrf.exempt(blueprint)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request

from ..server.config import ServerConfig
from ..server.stores import Store
from .bridge import BlockingCallbackServer, server_config

__all__ = ["make_blueprint"]

# Every method reaches the server, which answers a wrong one (405) as the standalone app
# does; Flask adds HEAD to every GET rule and answers it without a body.
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def make_blueprint(
    config: ServerConfig | Mapping[str, Any] | str | os.PathLike[str] | BlockingCallbackServer,
    *,
    name: str = "wxcallback",
    url_prefix: str = "",
    health: bool = True,
    metrics: bool = True,
    store: Store | None = None,
) -> Blueprint:
    """A blueprint answering each channel's path under ``url_prefix``, plus ``/healthz`` and ``/metrics``.

    ``config`` is a :class:`ServerConfig`, the TOML file's path, the TOML document as a
    mapping, or a :class:`BlockingCallbackServer` to share with other views. The server
    behind the blueprint is reachable as ``blueprint.wxcallback`` (``.close()`` stops it
    gracefully; that also happens at interpreter exit).
    """
    bridge = config if isinstance(config, BlockingCallbackServer) else \
        BlockingCallbackServer(server_config(config), store)
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix or None)

    def callback(channel_path: str) -> Response:
        answer = bridge.respond(request.method, channel_path, request.query_string, request.stream,
                                request.content_length)
        return Response(answer.body, answer.status, content_type=answer.content_type)

    for channel in bridge.config.channels:
        blueprint.add_url_rule(channel.path, f"channel_{channel.name}", callback, methods=_METHODS,
                               defaults={"channel_path": channel.path}, provide_automatic_options=False)

    if health:
        def healthz() -> Response:
            status, body = bridge.health()
            return Response(body, status, content_type="application/json")

        blueprint.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    if metrics:
        def metrics_view() -> Response:
            return Response(bridge.metrics_text(), 200, content_type="text/plain; version=0.0.4")

        blueprint.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    blueprint.wxcallback = bridge  # type: ignore[attr-defined]
    return blueprint
