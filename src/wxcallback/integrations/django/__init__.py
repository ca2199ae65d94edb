"""Callbacks inside a Django project: views and URL patterns over the callback server.

With ``WXCALLBACK_CONFIG`` in the settings (the TOML file's path, or the TOML document
as a dict) one line in the project's ``urls.py`` serves every channel::

    path("wechat/", include("wxcallback.integrations.django.urls"))

The views are CSRF-exempt (the platforms sign their requests; they send no CSRF token).
Under WSGI they wait on the server's own event-loop thread
(:class:`~wxcallback.integrations.bridge.BlockingCallbackServer`); the async views, for
ASGI deployments (``WXCALLBACK_ASYNC_VIEWS = True``), await the same thread without
blocking Django's loop. Either way one server runs per process, on one loop, so robot
streams and late handlers outlive the request that started them.

The body is read through the request stream, never ``request.body``: the declared
``CONTENT_LENGTH`` is checked against ``max_body_bytes`` first (413 without reading),
then at most that many bytes are read. Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` guards
``request.body`` and form data, so it does not limit these views; ``max_body_bytes`` does.
Under ASGI Django itself receives the whole body (into a spooled file) before any view
runs: put a body limit in the ASGI server or proxy in front as well.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped, import-not-found, unused-ignore]
from django.urls import re_path  # type: ignore[import-untyped, import-not-found, unused-ignore]

from ...server.config import ServerConfig
from ...server.inbound import Handled
from ...server.stores import Store
from ..bridge import BlockingCallbackServer, server_config

__all__ = ["async_callback_view", "callback_view", "health_view", "metrics_view", "urlpatterns_for"]

ConfigSource = ServerConfig | Mapping[str, Any] | str | os.PathLike[str] | BlockingCallbackServer
SyncView = Callable[..., HttpResponse]
AsyncView = Callable[..., Awaitable[HttpResponse]]
ViewT = TypeVar("ViewT", SyncView, AsyncView)

_METRICS_TYPE = "text/plain; version=0.0.4"


def _bridge(config: ConfigSource, store: Store | None = None) -> BlockingCallbackServer:
    if isinstance(config, BlockingCallbackServer):
        return config
    return BlockingCallbackServer(server_config(config), store)


def _channel_path(request: HttpRequest, path: str | None) -> str:
    # Under include("wechat/") the captured rest ("wecom") names the channel ("/wecom");
    # a pattern that captures nothing serves the channel at the request's own path.
    if path is None:
        return str(request.path_info)
    return "/" + path.lstrip("/")


def _content_length(request: HttpRequest) -> int | None:
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    return int(declared) if declared.isdigit() else None


def _query_string(request: HttpRequest) -> bytes:
    # WSGI gives the query as latin-1 decoded bytes, Django's ASGI handler as UTF-8: undo
    # either. The pipeline refuses any byte that is not ASCII, whichever way it came back.
    query = str(request.META.get("QUERY_STRING", ""))
    try:
        return query.encode("latin-1")
    except UnicodeEncodeError:
        return query.encode("utf-8", "surrogatepass")


def _http_response(request: HttpRequest, answer: Handled) -> HttpResponse:
    body = b"" if request.method == "HEAD" else answer.body
    return HttpResponse(body, status=answer.status, content_type=answer.content_type)


def _exempt(view: ViewT, bridge: BlockingCallbackServer) -> ViewT:
    # The platforms sign their requests and send no CSRF token. The flag is what
    # @csrf_exempt sets; the decorator itself wraps async views correctly only from Django 5.0.
    view.__dict__.update(csrf_exempt=True, wxcallback=bridge)  # .wxcallback: the server, for shutdown hooks
    return view


def callback_view(config: ConfigSource, *, store: Store | None = None) -> SyncView:
    """A sync view (WSGI) answering the channel named by the ``path`` URL kwarg or the request path."""
    bridge = _bridge(config, store)

    def callback(request: HttpRequest, path: str | None = None) -> HttpResponse:
        answer = bridge.respond(str(request.method), _channel_path(request, path), _query_string(request),
                                request, _content_length(request))
        return _http_response(request, answer)

    return _exempt(callback, bridge)


def async_callback_view(config: ConfigSource, *, store: Store | None = None) -> AsyncView:
    """The async view (ASGI): same answers, awaited without blocking Django's event loop."""
    bridge = _bridge(config, store)

    async def callback(request: HttpRequest, path: str | None = None) -> HttpResponse:
        answer = await bridge.respond_async(str(request.method), _channel_path(request, path),
                                            _query_string(request), request, _content_length(request))
        return _http_response(request, answer)

    return _exempt(callback, bridge)


def health_view(config: ConfigSource, *, asynchronous: bool = False) -> SyncView | AsyncView:
    """``/healthz``: 200 when the store answers, else 503 (JSON)."""
    bridge = _bridge(config)
    if asynchronous:
        async def healthz_async(request: HttpRequest) -> HttpResponse:
            status, body = await bridge.health_async()
            return HttpResponse(body, status=status, content_type="application/json")

        return healthz_async

    def healthz(request: HttpRequest) -> HttpResponse:
        status, body = bridge.health()
        return HttpResponse(body, status=status, content_type="application/json")

    return healthz


def metrics_view(config: ConfigSource, *, asynchronous: bool = False) -> SyncView | AsyncView:
    """``/metrics`` in the Prometheus text format."""
    bridge = _bridge(config)
    if asynchronous:
        async def metrics_async(request: HttpRequest) -> HttpResponse:
            return HttpResponse(await bridge.metrics_text_async(), content_type=_METRICS_TYPE)

        return metrics_async

    def metrics(request: HttpRequest) -> HttpResponse:
        return HttpResponse(bridge.metrics_text(), content_type=_METRICS_TYPE)

    return metrics


def urlpatterns_for(config: ConfigSource, *, asynchronous: bool = False, health: bool = True,
                    metrics: bool = True, store: Store | None = None) -> list[Any]:
    """URL patterns for an ``include()``: ``healthz``, ``metrics``, then every channel path.

    Paths under the include that name no channel are answered 404 by the server, as the
    standalone server does.
    """
    bridge = _bridge(config, store)
    patterns = []
    if health:
        patterns.append(re_path(r"^healthz$", health_view(bridge, asynchronous=asynchronous),
                                name="wxcallback-healthz"))
    if metrics:
        patterns.append(re_path(r"^metrics$", metrics_view(bridge, asynchronous=asynchronous),
                                name="wxcallback-metrics"))
    view = async_callback_view(bridge) if asynchronous else callback_view(bridge)
    patterns.append(re_path(r"^(?P<path>.*)$", view, name="wxcallback-callback"))
    return patterns
