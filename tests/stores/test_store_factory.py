"""open_store(): which store each URL names, and clear errors for URLs it cannot use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from wxcallback.core.errors import ErrorCode, WXCallbackError
from wxcallback.server.stores import MemoryStore, SQLiteStore, Store, StoreURLError, open_store
from wxcallback.server.stores.redis import DEFAULT_PREFIX, RedisStore

from .conftest import FakeClock


def close(store: Store) -> None:
    asyncio.run(store.close())


def test_memory_url_opens_a_memory_store() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    close(store)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///state.db", "state.db"),
        ("sqlite:///var/state.db", "var/state.db"),
        ("sqlite:////var/lib/wxcallback/state.db", "/var/lib/wxcallback/state.db"),
        ("sqlite:///with%20space.db", "with space.db"),
        ("sqlite://:memory:", ":memory:"),
        ("SQLITE:///state.db", "state.db"),
    ],
)
def test_sqlite_urls_name_a_path_as_sqlalchemy_does(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore) and store.path == path
    close(store)


def test_redis_url_carries_the_key_prefix() -> None:
    store = open_store("redis://127.0.0.1:6379/2?prefix=shop-a:&socket_timeout=5")
    assert isinstance(store, RedisStore) and store.prefix == "shop-a:"
    close(store)
    default = open_store("redis://127.0.0.1:6379/0")
    assert isinstance(default, RedisStore) and default.prefix == DEFAULT_PREFIX
    close(default)


def test_options_reach_the_store(tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(f"sqlite:///{tmp_path}/state.db", clock=clock)
    assert isinstance(store, SQLiteStore) and store.clock is clock

    async def main() -> None:
        async with store:
            await store.enqueue("crm", b"p", "k")
            [item] = await store.claim_batch("w", 1, 30)
            assert item.enqueued_at == clock.now

    asyncio.run(main())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/state", "unknown store URL scheme"),
        ("state.db", "no scheme"),
        ("", "no scheme"),
        ("memory://somewhere", "takes no location"),
        ("sqlite://", "cannot use SQLite URL"),
        ("sqlite:///", "cannot use SQLite URL"),
        ("sqlite://state.db", "cannot use SQLite URL"),
        ("sqlite:///state.db?mode=ro", "cannot use SQLite URL"),
        ("redis://h/0?prefix=a&prefix=b", "more than one prefix"),
        ("redis://h/not-a-db", "cannot use Redis URL"),
        ("redis://h:port/0", "cannot use Redis URL"),
        ("redis://h/0?socket_timeout=soon", "cannot use Redis URL"),
    ],
)
def test_an_unusable_url_raises_a_clear_store_url_error(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message) as raised:
        open_store(url)
    assert isinstance(raised.value, WXCallbackError)
    assert raised.value.code == ErrorCode.OK


def test_a_url_that_is_not_a_str_is_refused() -> None:
    with pytest.raises(StoreURLError, match="must be a str"):
        open_store(b"memory://")  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["redis://:s3cr%40t-pw@h:bad/0", "redis://user:s3cr%40t-pw@h/notanumber",
                                 "redis://h/0?password=s3cr%40t-pw&prefix=a&prefix=b",
                                 "redis+cluster://u:s3cr%40t-pw@h1:1,h2:x/0"])
def test_an_unusable_url_never_shows_its_password(url: str) -> None:
    # the message is printed at start ("store error: …") and may be logged
    with pytest.raises(StoreURLError) as raised:
        open_store(url)
    assert "s3cr" not in str(raised.value) and "***" in str(raised.value)
