"""A minimal Django project for the adapter tests: settings made here, URLs in django_urls."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.integrations.support import config_mapping

# Below the callbacks' size: Django's own upload limit must not apply to the callback views.
DJANGO_UPLOAD_LIMIT = 4096


def configure() -> None:
    """Configure Django once per process (its settings are global)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    folder = Path(tempfile.mkdtemp(prefix="wxcallback-django-"))
    settings.configure(
        DEBUG=False,
        SECRET_KEY="wxcallback-tests-" + "x" * 40,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF="tests.integrations.django_urls",
        INSTALLED_APPS=[],
        # CSRF protection on, as in any project: the callback views must be exempt.
        MIDDLEWARE=["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
        DATA_UPLOAD_MAX_MEMORY_SIZE=DJANGO_UPLOAD_LIMIT,
        WXCALLBACK_CONFIG=config_mapping(f"sqlite:///{folder}/wxcallback.db"),
        WXCALLBACK_TEST_ASYNC_CONFIG=config_mapping("memory://"),
        LOGGING_CONFIG=None,
    )
    django.setup()
