"""State shared by the callback server's workers, behind one interface with three backends.

``open_store(url)`` picks the backend from the URL:

- ``memory://`` -- this process only (tests, single-process development);
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite://:memory:`` --
  one file shared by the worker processes of one host;
- ``redis://host:port/db?prefix=wxcallback:`` (also ``rediss://``, ``unix://``) -- shared by
  every host; needs the ``redis`` package.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .base import (
    DEFAULT_DEDUP_TTL,
    DEFAULT_NONCE_TTL,
    DEFAULT_OUTBOX_KEY_TTL,
    DEFAULT_STREAM_TTL,
    MAX_STREAM_CONTENT_BYTES,
    CachedReply,
    ClaimResult,
    ClaimState,
    OutboxItem,
    Store,
    StoreError,
    StoreUnavailableError,
    StoreURLError,
    StreamState,
    StreamStateError,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_DEDUP_TTL",
    "DEFAULT_NONCE_TTL",
    "DEFAULT_OUTBOX_KEY_TTL",
    "DEFAULT_STREAM_TTL",
    "MAX_STREAM_CONTENT_BYTES",
    "CachedReply",
    "ClaimResult",
    "ClaimState",
    "MemoryStore",
    "OutboxItem",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreURLError",
    "StoreUnavailableError",
    "StreamState",
    "StreamStateError",
    "open_store",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_store(url: str, **options: Any) -> Store:
    """The store named by ``url``; ``options`` go to the store's constructor (e.g. ``clock``).

    Connections are made on first use, so this never blocks.
    """
    if not isinstance(url, str):
        raise StoreURLError(f"store URL must be a str, not {type(url).__name__}")
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if not _:
        raise StoreURLError(f"store URL {url!r} has no scheme: use memory://, sqlite:// or redis://")
    if scheme == "memory":
        if rest.strip("/"):
            raise StoreURLError(f"memory:// takes no location, got {url!r}")
        return MemoryStore(**options)
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url, rest), **options)
    if scheme in _REDIS_SCHEMES:
        return _open_redis(url, **options)
    raise StoreURLError(
        f"unknown store URL scheme {scheme!r} in {url!r}: use memory://, sqlite:// or redis://"
    )


def _sqlite_path(url: str, rest: str) -> str:
    # As in SQLAlchemy: after "sqlite://", "/" starts a path ("///x.db" relative, "////x.db"
    # absolute) and ":memory:" names a private in-memory database.
    if rest == ":memory:" or rest == "/:memory:":
        return ":memory:"
    if not rest.startswith("/") or not rest[1:] or "?" in rest or "#" in rest:
        raise StoreURLError(
            f"cannot use SQLite URL {url!r}: write sqlite:///relative.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:"
        )
    return unquote(rest[1:])


def _open_redis(url: str, **options: Any) -> Store:
    try:
        from .redis import DEFAULT_PREFIX, RedisStore
    except ImportError as exc:
        raise StoreURLError(
            f"{url!r} needs the redis package: pip install 'redis>=5.0.1'"
        ) from exc
    parts = urlsplit(url)
    # redis-py silently ignores a database that is not a number; a typo must not pick db 0.
    if parts.scheme.lower() != "unix" and not (parts.path in ("", "/") or _is_number(parts.path[1:])):
        raise StoreURLError(f"cannot use Redis URL {url!r}: the database must be a number")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    if len(prefixes) > 1:
        raise StoreURLError(f"Redis URL {url!r} names more than one prefix")
    prefix = prefixes[0] if prefixes else DEFAULT_PREFIX
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    client_url = urlunsplit(parts._replace(query=rest))
    try:
        return RedisStore.from_url(client_url, prefix=prefix, **options)
    except StoreError as exc:
        raise StoreURLError(str(exc)) from exc


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
