"""What only the Redis Cluster store promises: the outbox spread over the masters, one slot per script."""

from __future__ import annotations

import asyncio

import pytest

from wxcallback.server.stores import StoreURLError, open_store
from wxcallback.server.stores.redis import DEFAULT_CLUSTER_SHARDS, RedisStore


def test_a_cluster_url_opens_a_cluster_store_with_every_startup_node(redis_cluster_url: str) -> None:
    store = open_store(f"{redis_cluster_url}/?prefix=shop-a:&socket_timeout=5")
    assert isinstance(store, RedisStore) and store.cluster and store.prefix == "shop-a:"
    assert repr(store) == "RedisStore(cluster, prefix='shop-a:')"
    asyncio.run(store.close())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://h:1,h:2/3", "database 0 only"),
        ("redis+cluster://h:1,h:port", "is not host:port"),
        ("redis+cluster://h:1,:2", "is not host:port"),
        ("redis+cluster://h:1/?prefix={tag}:", "braces"),
        ("redis+cluster://h:1/?outbox_shards=0", "outbox_shards"),
        ("redis+cluster://h:1/?outbox_shards=many", "outbox_shards"),
        ("redis+cluster://h:1/?require_durable=perhaps", "require_durable"),
    ],
)
def test_an_unusable_cluster_url_raises_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message):
        open_store(url)


def test_the_outbox_shards_are_spread_over_every_master(
    redis_cluster_url: str, redis_cluster_prefix: str, redis_cluster_ports: list[int]
) -> None:
    import redis

    async def main() -> set[str]:
        async with open_store(f"{redis_cluster_url}/?prefix={redis_cluster_prefix}") as store:
            ids = {await store.enqueue(f"channel-{n}", b"p", "k") for n in range(64)}
            assert len(ids) == 64 and await store.depth() == 64
            claimed = []
            while batch := await store.claim_batch("w", 16, 30):
                claimed.extend(batch)
            assert {item.id for item in claimed} == ids
            return ids

    ids = asyncio.run(main())
    assert {id.partition(":")[0] for id in ids} == {str(n) for n in range(DEFAULT_CLUSTER_SHARDS)}
    holding = []
    for port in redis_cluster_ports:
        node = redis.Redis(host="127.0.0.1", port=port)
        try:
            holding.append(len(list(node.scan_iter(match=f"{redis_cluster_prefix}outbox{{*}}"))))
        finally:
            node.close()
    assert all(count > 0 for count in holding), holding


def test_two_hosts_on_one_cluster_behave_as_one_store(
    redis_cluster_url: str, redis_cluster_prefix: str
) -> None:
    url = f"{redis_cluster_url}/?prefix={redis_cluster_prefix}"

    async def main() -> None:
        async with open_store(url) as host_a, open_store(url) as host_b:
            claims = await asyncio.gather(*(h.claim("oa:msg-1", 300) for h in (host_a, host_b) * 5))
            assert [c.state.value for c in claims].count("claimed") == 1
            ids = await asyncio.gather(*(h.enqueue("crm", b"p", "oa:msg-1") for h in (host_a, host_b) * 5))
            assert len(set(ids)) == 1
            [item] = await host_b.claim_batch("host-b", 10, 30)
            await host_a.dead_letter(item.id, "refused")
            assert [d.id for d in await host_b.list_dead("crm")] == [item.id]
            assert await host_a.retry_dead(item.id) is not None
            assert await host_b.depth() == 1 and await host_b.dead_count() == 0

    asyncio.run(main())
