"""What only the Redis store promises: many store objects (hosts) acting as one, keyed by prefix."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wxcallback.server.stores import StoreError, StoreUnavailableError, open_store
from wxcallback.server.stores.base import IN_PROGRESS, CachedReply
from wxcallback.server.stores import redis as redis_module
from wxcallback.server.stores.redis import RedisStore

from tests.conftest import free_port
from tests.stores.conftest import claims_one_per_turn


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


def test_calls_made_while_a_batch_is_on_the_wire_leave_together_and_each_still_answers_alone(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            assert store._batches is not None
            sent: list[int] = []
            send = store._batches._send

            async def counted(batch: list[redis_module._Call]) -> None:
                sent.append(len(batch))
                await send(batch)

            store._batches._send = counted  # type: ignore[method-assign]
            await store.complete("oa:done", b"reply", "text/plain", 300)
            claims = await asyncio.gather(*(store.claim(key, 300) for key in ("oa:a", "oa:b", "oa:a", "oa:done")))
            assert [c.state.value for c in claims] == ["claimed", "claimed", "in_progress", "done"]
            assert claims[3].reply is not None and claims[3].reply.body == b"reply"
            # A new message's claim is one SET NX; the two that found a claim read it after.
            assert sent == [1, 4, 2]

            # Calls made while a batch waits for Redis go in the next one, in the order made.
            sent.clear()
            first = asyncio.ensure_future(store.claim("oa:c", 300))
            while not sent:  # the batch with the first claim is on its way
                await asyncio.sleep(0)
            later = await asyncio.gather(
                store.complete("oa:c", b"c", "text/plain", 300), store.claim("oa:c", 300),
                store.remember_nonce("n1", 60), store.remember_nonce("n1", 60),
            )
            assert (await first).state.value == "claimed"
            assert later[1].state.value == "done" and later[2:] == [True, False]
            assert sent == [1, 4, 1]

    asyncio.run(main())


def test_calls_of_the_turns_that_follow_join_a_batch_while_each_adds_some(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "_HOLD", 60.0)  # only the quiet turn ends the batch, however slow the machine

    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            assert store._batches is not None
            await store.claim("oa:warm-up", 300)  # connected
            sent: list[int] = []
            send = store._batches._send

            async def counted(batch: list[redis_module._Call]) -> None:
                sent.append(len(batch))
                await send(batch)

            store._batches._send = counted  # type: ignore[method-assign]
            claims = await claims_one_per_turn(lambda key: store.claim(f"oa:{key}", 300), 5)
            assert all(result.claimed for result in claims)
            assert sent == [5]  # one batch, where each turn sent its own before

            # A lone call leaves after one quiet turn: the only timer is the batch's time limit.
            sent.clear()
            timers: list[float] = []
            loop = asyncio.get_running_loop()
            call_at = loop.call_at

            def recorded(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
                timers.append(when - loop.time())
                return call_at(when, *args, **kwargs)

            monkeypatch.setattr(loop, "call_at", recorded)
            assert (await store.claim("oa:alone", 300)).claimed
            assert sent == [1] and timers and min(timers) > 1.0

    asyncio.run(main())


def test_a_connection_redis_closed_is_opened_again_and_a_failed_one_fails_only_its_calls(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            assert store._batches is not None
            client_id = await store._batches.call(redis_module._command(b"CLIENT", b"ID"))
            await store._redis.client_kill_filter(_id=client_id)
            await asyncio.sleep(0.05)  # Redis closed it while idle (as after a restart)
            assert (await store.claim("oa:k", 300)).claimed
            assert (await store.claim("oa:k", 300)).in_progress

            # A batch whose connection breaks fails with the store's error; the next one reconnects.
            connection = store._batches._connection
            assert connection is not None
            read = connection.read_response

            async def broken(*args: object, **kwargs: object) -> object:
                raise redis_module.RedisError("connection lost")

            connection.read_response = broken  # type: ignore[method-assign]
            failed = await asyncio.gather(store.claim("oa:l", 300), store.remember_nonce("n2", 60),
                                          return_exceptions=True)
            assert [type(exc) for exc in failed] == [StoreUnavailableError] * 2
            assert "connection lost" in str(failed[0])
            connection.read_response = read  # type: ignore[method-assign]
            assert (await store.claim("oa:l", 300)).in_progress  # it ran: Redis had the command
            assert await store.remember_nonce("n3", 60) is True

    asyncio.run(main())


def test_a_batch_redis_does_not_answer_in_time_fails_and_the_next_one_goes_through(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            assert store._batches is not None
            assert await store.remember_nonce("n1", 60) is True  # connected
            assert store._batches._timeout == 5  # redis-py's socket_timeout, for a whole batch
            store._batches._timeout = 0.05
            connection = store._batches._connection
            assert connection is not None
            read = connection.read_response

            async def stuck(*args: object, **kwargs: object) -> object:
                await asyncio.sleep(10)
                raise AssertionError("not cut short")

            connection.read_response = stuck  # type: ignore[method-assign]
            with pytest.raises(StoreUnavailableError, match="did not answer within 0.05 s"):
                await store.claim("oa:t", 300)
            connection.read_response = read  # type: ignore[method-assign]
            assert await store.remember_nonce("n1", 60) is False
            assert (await store.claim("oa:t", 300)).in_progress

    asyncio.run(main())


def test_closing_the_store_fails_the_calls_still_waiting_for_redis(redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        store = RedisStore.from_url(redis_url, prefix=redis_prefix)
        assert store._batches is not None
        assert await store.remember_nonce("n1", 60) is True
        connection = store._batches._connection
        assert connection is not None

        async def stuck(*args: object, **kwargs: object) -> object:
            await asyncio.sleep(10)
            raise AssertionError("not cut short")

        connection.read_response = stuck  # type: ignore[method-assign]
        waiting = asyncio.ensure_future(store.claim("oa:w", 300))
        await asyncio.sleep(0.01)
        await store.close()
        with pytest.raises(StoreError, match="cut short"):
            await waiting
        assert store._batches._pump is None

    asyncio.run(main())


def test_a_script_redis_does_not_know_is_loaded_and_run(redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            # As after a Redis restart: the script cache is empty (here, for this script only).
            store._release_script = store._redis.register_script(
                "-- not loaded yet " + redis_prefix + "\n" + redis_module._RELEASE
            )
            store._release_head = redis_module._evalsha_head(store._release_script, 0)
            assert (await store.claim("oa:x", 300)).claimed and (await store.claim("oa:y", 300)).claimed
            await asyncio.gather(store.release("oa:x"), store.release("oa:y"))
            assert (await store.claim("oa:x", 300)).claimed and (await store.claim("oa:y", 300)).claimed

    asyncio.run(main())


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "plain client"])
def test_a_claim_is_one_string_and_a_cached_reply_reads_back_exactly(
    redis_url: str, redis_prefix: str, batched: bool
) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            if not batched:
                store._batches = None  # as on a cluster: redis-py's own calls
            name = f"{redis_prefix}claim:oa:s"
            assert (await store.claim("oa:s", 300)).claimed
            assert await store._redis.get(name) == b"p"
            assert 0 < await store._redis.pttl(name) <= 300_000
            # A content type with the separator and digits in it, a body that starts with some.
            await store.complete("oa:s", b"12:\x00body", "text/plain; q=1:2", 60)
            assert await store._redis.get(name) == b"d17:text/plain; q=1:212:\x00body"
            assert 0 < await store._redis.pttl(name) <= 60_000
            done = await store.claim("oa:s", 300)
            assert done.done and done.reply == CachedReply(b"12:\x00body", "text/plain; q=1:2")
            assert await store._peek_claim("oa:s") == done

            for bad in (b"dx:", b"d:", b"d9:text", b"d2:\xff\xfe"):  # not digits, none, too long, not UTF-8
                await store._redis.set(f"{redis_prefix}claim:oa:bad", bad)
                with pytest.raises(StoreError, match="not one this store wrote"):
                    await store.claim("oa:bad", 300)

    asyncio.run(main())


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "plain client"])
def test_a_claim_an_older_version_left_as_a_hash_is_read_and_not_released(
    redis_url: str, redis_prefix: str, batched: bool
) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            if not batched:
                store._batches = None  # as on a cluster: redis-py's own calls
            # What versions before claims were strings wrote (a rolling upgrade meets them).
            done = f"{redis_prefix}claim:oa:old-done"
            await store._redis.hset(done, mapping={"state": "d", "body": b"<xml/>", "type": "application/xml"})
            running = f"{redis_prefix}claim:oa:old-running"
            await store._redis.hset(running, mapping={"state": "p"})
            found = await store.claim("oa:old-done", 300)
            assert found.done and found.reply == CachedReply(b"<xml/>", "application/xml")
            assert (await store.claim("oa:old-running", 300)).in_progress
            assert (await store._peek_claim("oa:old-running")) == IN_PROGRESS
            await store.release("oa:old-running")  # not this worker's claim
            assert await store._redis.hget(running, "state") == b"p"
            # A reply cached now replaces the hash with the string form.
            await store.complete("oa:old-running", b"r", "text/plain", 60)
            assert (await store.claim("oa:old-running", 300)).reply == CachedReply(b"r", "text/plain")

    asyncio.run(main())


def test_a_claim_that_lapses_before_it_is_read_is_taken(redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        async with RedisStore.from_url(redis_url, prefix=redis_prefix) as store:
            assert (await store.claim("oa:lapse", 300)).claimed
            read = store._read_claim
            looks: list[str] = []

            async def lapsed_first(name: str) -> object:
                looks.append(name)
                if len(looks) == 1:
                    await store._redis.delete(name)  # released or expired between SET NX and GET
                return await read(name)

            store._read_claim = lapsed_first  # type: ignore[assignment]
            assert (await store.claim("oa:lapse", 300)).claimed  # the second SET NX took it
            assert len(looks) == 1
            assert (await store.claim("oa:lapse", 300)).in_progress

            async def always_gone(name: str) -> None:
                looks.append(name)
                await store._redis.set(name, b"p", px=300_000)  # taken again by another worker
                return None

            looks.clear()
            store._read_claim = always_gone  # type: ignore[assignment]
            assert (await store.claim("oa:lapse", 300)).in_progress
            assert len(looks) == redis_module._CLAIM_LOOKS

    asyncio.run(main())
