"""What only the memory store promises: bounded by entries and bytes, never losing work silently."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from wxcallback.server.stores import MemoryStore, StoreError, StoreFullError, StoreUnavailableError
from wxcallback.server.stores.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES

from .conftest import FakeClock


def run(store: MemoryStore, scenario: object) -> None:
    async def main() -> None:
        async with store:
            assert callable(scenario)
            await scenario(store)

    asyncio.run(main())


def test_the_defaults_bound_the_store() -> None:
    store = MemoryStore()
    assert (store.max_entries, store.max_bytes) == (DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    assert DEFAULT_MAX_ENTRIES == 200_000 and DEFAULT_MAX_BYTES == 128 * 1024 * 1024


def test_when_full_of_nonces_the_oldest_go_and_the_bound_holds(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.WARNING, "wxcallback.store")

    async def scenario(store: MemoryStore) -> None:
        for n in range(250):
            assert await store.remember_nonce(f"n{n}", 7200)
            clock.now += 1
            assert store._entries() <= 100
        assert not await store.remember_nonce("n249", 7200)  # the newest are all remembered
        assert not await store.remember_nonce("n170", 7200)
        assert await store.remember_nonce("n0", 7200)  # the oldest were evicted

    run(MemoryStore(clock=clock, max_entries=100), scenario)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "wxcallback.store"]
    assert records and all(r["event"] == "store_evicted" for r in records)
    assert len(records) < 20  # down to 90% each time: not one eviction per new entry


def test_expired_entries_are_dropped_before_any_live_one(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.WARNING, "wxcallback.store")

    async def scenario(store: MemoryStore) -> None:
        assert await store.remember_nonce("long-lived", 7200)
        for n in range(9):
            await store.remember_nonce(f"short-{n}", 1)
        clock.now += 2
        for n in range(9):
            assert await store.remember_nonce(f"new-{n}", 60)
        assert not await store.remember_nonce("long-lived", 7200)

    run(MemoryStore(clock=clock, max_entries=10), scenario)
    assert not [r for r in caplog.records if r.name == "wxcallback.store"]  # nothing live evicted


def test_outbox_items_are_never_evicted_new_work_is_refused_instead() -> None:
    async def scenario(store: MemoryStore) -> None:
        ids = [await store.enqueue("crm", b"p", f"k{n}") for n in range(5)]  # 2 entries each
        with pytest.raises(StoreFullError, match="memory store is full") as refused:
            await store.enqueue("crm", b"p", "one-too-many")
        assert isinstance(refused.value, StoreUnavailableError)
        with pytest.raises(StoreFullError):
            await store.remember_nonce("n", 60)
        assert await store.depth() == 5
        assert [item.id for item in await store.claim_batch("w", 10, 30)] == ids
        await store.ack(ids[0])
        await store.ack(ids[1])
        # Delivered keys are a cache: they make way for new work.
        assert await store.enqueue("crm", b"p", "after-delivery")
        assert await store.depth() == 4

    run(MemoryStore(max_entries=10), scenario)


def test_in_progress_claims_are_never_evicted_completed_ones_may_be() -> None:
    async def scenario(store: MemoryStore) -> None:
        for n in range(4):
            assert (await store.claim(f"running-{n}", 300)).claimed
        with pytest.raises(StoreFullError):
            await store.claim("one-too-many", 300)
        for n in range(4):
            assert (await store.claim(f"running-{n}", 300)).in_progress
            await store.complete(f"running-{n}", b"reply", "text/plain", 300)
        assert (await store.claim("now-there-is-room", 300)).claimed

    run(MemoryStore(max_entries=4), scenario)


def test_the_byte_bound_counts_payloads_and_replies() -> None:
    async def scenario(store: MemoryStore) -> None:
        await store.enqueue("crm", b"x" * 40_000, "big-1")
        with pytest.raises(StoreFullError, match="100000 bytes"):
            await store.enqueue("crm", b"x" * 70_000, "big-2")
        [item] = await store.claim_batch("w", 1, 30)
        await store.ack(item.id)  # its payload is released
        await store.enqueue("crm", b"x" * 70_000, "big-2")
        await store.claim("k", 300)
        await store.complete("k", b"r" * 20_000, "text/plain", 1)
        assert store._bytes < 100_000

    run(MemoryStore(max_bytes=100_000), scenario)


@pytest.mark.parametrize("bounds", [{"max_entries": 0}, {"max_bytes": -1}, {"max_entries": 1.5}])
def test_bounds_must_be_positive_ints(bounds: dict[str, object]) -> None:
    with pytest.raises(StoreError, match="positive int"):
        MemoryStore(**bounds)  # type: ignore[arg-type]


def test_a_full_store_drops_the_oldest_cache_entries_of_every_kind_first() -> None:
    clock = FakeClock()

    async def scenario(store: MemoryStore) -> None:
        assert (await store.claim("running", 300)).claimed  # in progress from the start: never dropped
        made: list[str] = []
        for n in range(60):
            clock.now += 1
            if n % 3 == 0:
                assert await store.remember_nonce(f"nonce-{n}", 300)
            elif n % 3 == 1:
                await store.claim(f"reply-{n}", 300)
                await store.complete(f"reply-{n}", b"r", "text/plain", 300)
            else:
                item = await store.enqueue("crm", b"p", f"key-{n}")
                [claimed] = await store.claim_batch("w", 1, 30)
                assert claimed.id == item
                await store.ack(item)  # delivered: its key is a cache now
            made.append(str(n))
            assert store._entries() <= 40
        kept = {name.rsplit("-", 1)[1] for name in store._nonces} | {
            key.rsplit("-", 1)[1] for key, (reply, _) in store._claims.items() if reply is not None} | {
            pair[1].rsplit("-", 1)[1] for pair in store._outbox_keys}
        # what is left is the newest of each kind, whichever table it was in
        assert kept == set(made[-len(kept):]) and len(kept) >= 30
        assert (await store.claim("running", 300)).in_progress

    run(MemoryStore(clock=clock, max_entries=40, outbox_key_ttl=300), scenario)  # one ttl for every kind


def test_a_reply_cached_late_counts_from_when_it_was_cached() -> None:
    clock = FakeClock()

    async def scenario(store: MemoryStore) -> None:
        assert (await store.claim("slow", 300)).claimed  # claimed first, its handler slow
        for n in range(8):
            clock.now += 1
            await store.claim(f"fast-{n}", 300)
            await store.complete(f"fast-{n}", b"r", "text/plain", 300)
        clock.now += 1
        await store.complete("slow", b"late reply", "text/plain", 300)  # now the newest entry
        for n in range(8, 12):
            clock.now += 1
            await store.claim(f"fast-{n}", 300)
            await store.complete(f"fast-{n}", b"r", "text/plain", 300)
        slow = await store.claim("slow", 300)
        assert slow.done and slow.reply is not None and slow.reply.body == b"late reply"
        assert (await store.claim("fast-0", 300)).claimed  # the oldest went, not the late one

    run(MemoryStore(clock=clock, max_entries=10), scenario)


def test_claim_now_and_complete_now_are_claim_and_complete_done_before_they_return() -> None:
    async def scenario(store: MemoryStore) -> None:
        assert store.claim_now("k", 300).claimed
        assert (await store.claim("k", 300)).in_progress  # the same claim the async call sees
        assert store.claim_now("k", 300).in_progress
        store.complete_now("k", bytearray(b"reply"), "text/plain", 300)  # type: ignore[arg-type]
        done = store.claim_now("k", 300)
        assert done.done and done.reply is not None and (done.reply.body, done.reply.content_type) == (
            b"reply", "text/plain")
        assert type(done.reply.body) is bytes
        assert (await store.claim("k", 300)).reply == done.reply
        await store.complete("async", b"a", "text/plain", 300)
        assert store.claim_now("async", 300).done
        for bad in (lambda: store.claim_now("", 300), lambda: store.claim_now("k", 0),
                    lambda: store.complete_now("k", "text", "text/plain", 300),  # type: ignore[arg-type]
                    lambda: store.complete_now("k", b"r", None, 300),  # type: ignore[arg-type]
                    lambda: store.complete_now("k", b"r", "text/plain", -1)):
            with pytest.raises(StoreError):
                bad()
        assert store.claim_now("k", 300).reply == done.reply  # a refused call changed nothing

    run(MemoryStore(), scenario)


def test_claim_now_keeps_the_bounds_and_refuses_once_closed() -> None:
    async def scenario(store: MemoryStore) -> None:
        for n in range(3):
            assert store.claim_now(f"running-{n}", 300).claimed
        with pytest.raises(StoreFullError):
            store.claim_now("one-too-many", 300)

    store = MemoryStore(max_entries=3)
    run(store, scenario)
    with pytest.raises(StoreError, match="closed"):
        store.claim_now("after", 300)
    with pytest.raises(StoreError, match="closed"):
        store.complete_now("after", b"r", "text/plain", 300)
