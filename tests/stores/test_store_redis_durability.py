"""The Redis store checks, at start, that the Redis it is given would keep the outbox."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from wxcallback.server.stores import StoreNotDurableError, open_store
from wxcallback.server.stores.redis import durability_risks

from tests.conftest import _unavailable, free_port, start_redis_server, stop_servers, wait_for_redis


def _server(tmp_path: Path, *settings: str) -> Iterator[str]:
    executable = shutil.which("redis-server")
    if executable is None:
        _unavailable("redis-server is not on PATH")
    port = free_port()
    server = start_redis_server(executable, port, str(tmp_path), *settings)
    try:
        yield wait_for_redis(server, port)
    finally:
        stop_servers([server])


@pytest.fixture
def careless_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis that keeps nothing across a restart and evicts any key under memory pressure."""
    yield from _server(tmp_path, "--appendonly", "no", "--maxmemory", "100mb",
                       "--maxmemory-policy", "allkeys-lru")


@pytest.fixture
def locked_down_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis that does not allow CONFIG, as many managed services do."""
    yield from _server(tmp_path, "--rename-command", "CONFIG", "")


def _store_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "wxcallback.store"]


def test_a_redis_that_would_lose_the_outbox_is_reported_in_one_json_line(
    careless_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wxcallback.store")

    async def main() -> list[str]:
        async with open_store(careless_redis) as store:
            problems = await store.start()
            await store.enqueue("crm", b"p", "k")  # warned, not refused: it still serves
            return problems

    problems = asyncio.run(main())
    assert len(problems) == 2
    assert "no persistence" in problems[0] and "whole outbox" in problems[0]
    assert "allkeys-lru" in problems[1] and "outbox entries" in problems[1]
    [record] = _store_records(caplog)
    assert record["event"] == "store_not_durable" and record["refused"] is False
    [(node, settings)] = dict(record["settings"]).items()  # type: ignore[call-overload]
    assert settings["appendonly"] == "no" and settings["maxmemory-policy"] == "allkeys-lru"
    assert "noeviction" in str(record["needed"]) and "everysec" in str(record["needed"])


def test_require_durable_refuses_to_start_on_that_redis(
    careless_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wxcallback.store")
    async def main() -> None:
        async with open_store(f"{careless_redis}?require_durable=1") as store:
            with pytest.raises(StoreNotDurableError, match="appendonly no.*allkeys-lru"):
                await store.start()

    asyncio.run(main())
    [record] = _store_records(caplog)
    assert record["refused"] is True


def test_the_settings_a_deployment_needs_pass_the_check(careless_redis: str) -> None:
    import redis

    client = redis.Redis.from_url(careless_redis)
    try:
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", "everysec")
        client.config_set("maxmemory-policy", "noeviction")
    finally:
        client.close()

    async def main() -> None:
        async with open_store(f"{careless_redis}?require_durable=1") as store:
            assert await store.start() == []

    asyncio.run(main())


def test_a_redis_without_config_is_reported_as_unchecked_and_refused_when_required(
    locked_down_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wxcallback.store")
    async def main() -> None:
        async with open_store(locked_down_redis) as store:
            [problem] = await store.start()
            assert "cannot read the persistence settings" in problem
        async with open_store(f"{locked_down_redis}?require_durable=1") as store:
            with pytest.raises(StoreNotDurableError, match="cannot read"):
                await store.start()

    asyncio.run(main())
    assert len(_store_records(caplog)) == 2


@pytest.mark.parametrize(
    ("settings", "risks"),
    [
        ({"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}, []),
        ({"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}, []),
        ({"appendonly": "no", "save": "3600 1 300 100", "maxmemory-policy": "noeviction"},
         ["snapshots only"]),
        ({"appendonly": "yes", "appendfsync": "no", "maxmemory-policy": "noeviction"},
         ["appendfsync no"]),
        ({"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "volatile-lru"},
         ["volatile-lru: under memory pressure Redis deletes keys with a ttl"]),
    ],
)
def test_each_setting_names_what_it_puts_at_risk(settings: dict[str, str], risks: list[str]) -> None:
    found = durability_risks(settings)
    assert len(found) == len(risks)
    for sentence, expected in zip(found, risks):
        assert expected in sentence
