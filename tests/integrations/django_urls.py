"""The test project's URLconf: the packaged include (WSGI) and async views (ASGI) side by side."""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path

from wxcallback.integrations.django import callback_view, urlpatterns_for

urlpatterns = [
    path("wechat/", include("wxcallback.integrations.django.urls")),
    path("wechat-async/", include(urlpatterns_for(settings.WXCALLBACK_TEST_ASYNC_CONFIG, asynchronous=True))),
    # A single view on a route of its own: the channel is the request's own path.
    path("wecom", callback_view(settings.WXCALLBACK_TEST_ASYNC_CONFIG)),
]
