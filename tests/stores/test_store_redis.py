"""What only the Redis store promises: many store objects (hosts) acting as one, keyed by prefix."""

from __future__ import annotations

import asyncio

import pytest

from wxcallback.server.stores import StoreUnavailableError, open_store
from wxcallback.server.stores import redis as redis_module
from wxcallback.server.stores.redis import RedisStore

from tests.conftest import free_port


def test_two_store_objects_racing_for_one_claim_have_exactly_one_winner(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with (
            RedisStore.from_url(redis_url, prefix=redis_prefix) as host_a,
            RedisStore.from_url(redis_url, prefix=redis_prefix) as host_b,
        ):
            claims = await asyncio.gather(
                *(host.claim("oa:msg-1", 300) for host in (host_a, host_b) * 5)
            )
            assert [c.state.value for c in claims].count("claimed") == 1
            ids = await asyncio.gather(
                *(host.enqueue("crm", b"p", "oa:msg-1") for host in (host_a, host_b) * 5)
            )
            assert len(set(ids)) == 1
            assert await host_a.depth() == await host_b.depth() == 1

    asyncio.run(main())


def test_an_item_left_unacked_is_redelivered_to_a_consumer_on_another_host(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with (
            RedisStore.from_url(redis_url, prefix=redis_prefix) as host_a,
            RedisStore.from_url(redis_url, prefix=redis_prefix) as host_b,
        ):
            id = await host_a.enqueue("crm", b"p", "k")
            [taken] = await host_a.claim_batch("host-a", 10, 1)
            assert await host_b.claim_batch("host-b", 10, 30) == []
            await asyncio.sleep(1.3)  # host-a died holding the item
            [again] = await host_b.claim_batch("host-b", 10, 30)
            assert again.id == taken.id == id and again.attempts == 2
            await host_b.ack(again.id)
            assert await host_a.depth() == 0

    asyncio.run(main())


def test_stores_with_different_prefixes_do_not_see_each_other(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with (
            RedisStore.from_url(redis_url, prefix=f"{redis_prefix}a:") as one,
            RedisStore.from_url(redis_url, prefix=f"{redis_prefix}b:") as two,
        ):
            assert await one.remember_nonce("n", 60)
            assert await two.remember_nonce("n", 60)
            await one.enqueue("crm", b"p", "k")
            assert (await one.depth(), await two.depth()) == (1, 0)

    asyncio.run(main())


def test_every_key_the_store_writes_starts_with_its_prefix(
    redis_url: str, redis_prefix: str
) -> None:
    import redis

    async def main() -> None:
        async with open_store(f"{redis_url}?prefix={redis_prefix}") as store:
            assert isinstance(store, RedisStore) and store.prefix == redis_prefix
            await store.remember_nonce("n", 60)
            await store.claim("k", 60)
            await store.put_stream("s", {}, 60)
            await store.enqueue("crm", b"p", "k")
            [item] = await store.claim_batch("w", 1, 60)
            await store.nack(item.id, retry_at=0)

    asyncio.run(main())
    names = ["nonce:n", "claim:k", "stream:s", "outbox", "outbox:hidden", "outbox:attempts"]
    client = redis.Redis.from_url(redis_url)
    try:
        under_prefix = {key.decode() for key in client.scan_iter(match=f"{redis_prefix}*")}
        unprefixed = [name for name in names if client.exists(name)]
    finally:
        client.close()
    assert {f"{redis_prefix}{name}" for name in names} <= under_prefix
    assert unprefixed == []


def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    async def main() -> None:
        async with RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0") as store:
            assert await store.healthy() is False
            with pytest.raises(StoreUnavailableError, match="RedisStore"):
                await store.remember_nonce("n", 60)

    asyncio.run(main())


def test_claims_of_one_loop_turn_share_one_pipeline_and_each_still_answers_alone(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            sent: list[int] = []
            pipeline = store._redis.pipeline

            def counting(**options: object) -> object:
                pipe = pipeline(**options)
                execute = pipe.execute

                async def counted(**kwargs: object) -> object:
                    sent.append(len(pipe.command_stack))
                    return await execute(**kwargs)

                pipe.execute = counted
                return pipe

            store._redis.pipeline = counting
            await store.complete("oa:done", b"reply", "text/plain", 300)
            claims = await asyncio.gather(*(store.claim(key, 300) for key in ("oa:a", "oa:b", "oa:a", "oa:done")))
            assert [c.state.value for c in claims] == ["claimed", "claimed", "in_progress", "done"]
            assert claims[3].reply is not None and claims[3].reply.body == b"reply"
            assert sent == [1, 4]

    asyncio.run(main())


def test_a_script_redis_does_not_know_is_loaded_and_run(redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            # As after a Redis restart: the script cache is empty (here, for this script only).
            store._claim_script = store._redis.register_script(
                "-- not loaded yet " + redis_prefix + "\n" + redis_module._CLAIM
            )
            first, again = await asyncio.gather(store.claim("oa:x", 300), store.claim("oa:x", 300))
            assert (first.state.value, again.state.value) == ("claimed", "in_progress")

    asyncio.run(main())
