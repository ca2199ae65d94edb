"""State shared by the callback server's workers, behind one interface with three backends.

``open_store(url)`` picks the backend from the URL:

- ``memory://`` -- this process only (tests, single-process development);
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite://:memory:`` --
  one file shared by the worker processes of one host;
- ``redis://host:port/db?prefix=wxcallback:`` (also ``rediss://``, ``unix://``) -- shared by
  every host; needs the ``redis`` package;
- ``redis+cluster://host:port,host:port/?prefix=wxcallback:`` (also ``rediss+cluster://``) --
  the same on a Redis Cluster, the hosts being startup nodes.

Redis URLs also take ``require_durable=1`` (refuse to start on a Redis that could lose the
outbox) and ``outbox_shards=N``; every other query option goes to redis-py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .base import (
    DEFAULT_DEDUP_TTL,
    DEFAULT_NONCE_TTL,
    DEFAULT_OUTBOX_KEY_TTL,
    DEFAULT_STREAM_TTL,
    MAX_STREAM_CONTENT_BYTES,
    CachedReply,
    ClaimResult,
    ClaimState,
    DeadLetter,
    OutboxItem,
    Store,
    StoreError,
    StoreFullError,
    StoreHealth,
    StoreNotDurableError,
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
    "DeadLetter",
    "MemoryStore",
    "OutboxItem",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreHealth",
    "StoreNotDurableError",
    "StoreURLError",
    "StoreUnavailableError",
    "StreamState",
    "StreamStateError",
    "open_store",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def open_store(url: str, **options: Any) -> Store:
    """The store named by ``url``; ``options`` go to the store's constructor (e.g. ``clock``).

    Connections are made on first use, so this never blocks. A URL that cannot be used is
    a StoreURLError whose message shows the URL with its password masked: it is printed at
    start and may be logged.
    """
    try:
        return _open_store(url, **options)
    except StoreURLError as exc:
        if not isinstance(url, str):
            raise
        raise StoreURLError(_masked(str(exc), url)) from exc.__cause__


def _masked(text: str, url: str) -> str:
    """``text`` with the URL's secrets (userinfo password, password= in the query) as ``***``."""
    secrets = []
    location = url.partition("://")[2].split("/", 1)[0]
    userinfo = location.rpartition("@")[0]
    if ":" in userinfo:
        secrets.append(userinfo.split(":", 1)[1])
    for name, value in parse_qsl(url.partition("?")[2], keep_blank_values=True):
        if name.lower() in ("password", "pass", "passwd") and value:
            secrets.append(value)
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


def _open_store(url: str, **options: Any) -> Store:
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
    if scheme in _REDIS_SCHEMES or scheme in _CLUSTER_SCHEMES:
        return _open_redis(url, **options)
    raise StoreURLError(
        f"unknown store URL scheme {scheme!r} in {url!r}: use memory://, sqlite://, redis:// "
        "or redis+cluster://"
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
    scheme, _, rest = url.partition("://")
    cluster_scheme = _CLUSTER_SCHEMES.get(scheme.lower())
    nodes: list[tuple[str, int]] = []
    if cluster_scheme is not None:
        # redis-py's URL parser takes one host: keep the first, pass the others as startup nodes.
        rest, _, query_text = rest.partition("?")
        location, _, db = rest.partition("/")
        userinfo, at, hosts = location.rpartition("@")
        nodes = [_host_port(url, host) for host in hosts.split(",")]
        if db not in ("", "0"):
            raise StoreURLError(f"cannot use Redis URL {url!r}: a cluster has database 0 only")
        first = hosts.split(",")[0]
        parts = urlsplit(f"{cluster_scheme}://{userinfo}{at}{first}/0?{query_text}")
    else:
        parts = urlsplit(url)
    # redis-py silently ignores a database that is not a number; a typo must not pick db 0.
    if parts.scheme.lower() != "unix" and not (parts.path in ("", "/") or _is_number(parts.path[1:])):
        raise StoreURLError(f"cannot use Redis URL {url!r}: the database must be a number")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {"prefix", "require_durable", "outbox_shards"}
    for name in ours:
        if len([value for key, value in query if key == name]) > 1:
            raise StoreURLError(f"Redis URL {url!r} names more than one {name}")
    given = {name: value for name, value in query if name in ours}
    prefix = given.get("prefix", DEFAULT_PREFIX)
    if "require_durable" in given:
        options.setdefault("require_durable", _flag(url, "require_durable", given["require_durable"]))
    if "outbox_shards" in given:
        if not _is_number(given["outbox_shards"]):
            raise StoreURLError(f"cannot use Redis URL {url!r}: outbox_shards must be a number")
        options.setdefault("outbox_shards", int(given["outbox_shards"]))
    rest_query = urlencode([(name, value) for name, value in query if name not in ours])
    client_url = urlunsplit(parts._replace(query=rest_query))
    try:
        return RedisStore.from_url(
            client_url, prefix=prefix, cluster=bool(nodes), cluster_nodes=nodes[1:], **options
        )
    except StoreError as exc:
        raise StoreURLError(str(exc)) from exc


def _host_port(url: str, text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = text, "6379"
    host = host.strip("[]")
    if not host or not _is_number(port) or not 0 < int(port) < 65536:
        raise StoreURLError(f"cannot use Redis URL {url!r}: {text!r} is not host:port")
    return host, int(port)


def _flag(url: str, name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise StoreURLError(f"cannot use Redis URL {url!r}: {name} must be 1 or 0, not {value!r}")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
