"""``path("wechat/", include("wxcallback.integrations.django.urls"))``.

Reads ``settings.WXCALLBACK_CONFIG`` (the TOML file's path, or the TOML document as a
dict) once, when Django first loads the URLconf, and ``settings.WXCALLBACK_ASYNC_VIEWS``
(default False: sync views for WSGI; True for ASGI deployments).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings  # type: ignore[import-untyped, import-not-found, unused-ignore]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped, import-not-found, unused-ignore]

from ...server.config import ConfigError
from . import urlpatterns_for


def _patterns() -> list[Any]:
    config = getattr(settings, "WXCALLBACK_CONFIG", None)
    if config is None:
        raise ImproperlyConfigured("WXCALLBACK_CONFIG is not set: give the path of the wxcallback TOML "
                                   "file or the configuration as a dict")
    try:
        return urlpatterns_for(config, asynchronous=bool(getattr(settings, "WXCALLBACK_ASYNC_VIEWS", False)))
    except ConfigError as exc:
        raise ImproperlyConfigured(f"WXCALLBACK_CONFIG: {exc}") from None


urlpatterns = _patterns()
