"""The store contract: the same behaviour from the memory, SQLite and Redis stores."""

from __future__ import annotations

import asyncio

import pytest

from wxcallback.core.errors import ErrorCode, WXCallbackError
from wxcallback.server.stores import (
    MAX_STREAM_CONTENT_BYTES,
    CachedReply,
    ClaimState,
    Store,
    StoreError,
    StoreHealth,
    StreamStateError,
)

from .conftest import Backend


def assert_just_now(backend: Backend, stamp: float) -> None:
    """``stamp`` was taken from the store's clock during this test (exactly, on a fake clock)."""
    assert backend.clock() - 10 <= stamp <= backend.clock()


# -- replay guard --------------------------------------------------------------------------------


def test_a_nonce_is_accepted_once_and_refused_when_seen_again(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.remember_nonce("robot:nonce-1", 60) is True
        assert await store.remember_nonce("robot:nonce-1", 60) is False
        assert await store.remember_nonce("robot:nonce-2", 60) is True

    backend.run(scenario)


def test_a_nonce_is_accepted_again_once_its_ttl_has_passed(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.remember_nonce("n", 1) is True
        await backend.advance(1.3)
        assert await store.remember_nonce("n", 1) is True
        assert await store.remember_nonce("n", 1) is False

    backend.run(scenario)


def test_concurrent_sightings_of_one_nonce_accept_exactly_one(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        results = await asyncio.gather(*(store.remember_nonce("n", 60) for _ in range(10)))
        assert sorted(results) == [False] * 9 + [True]

    backend.run(scenario)


def test_a_nonce_keeps_the_fingerprint_of_its_first_use(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.record_nonce("oa:u:n1", b"first", 60) is None
        # the same request again, and another one, both see the first use, which stays
        assert await store.record_nonce("oa:u:n1", b"first", 60) == b"first"
        for _ in range(3):
            assert await store.record_nonce("oa:u:n1", b"other", 60) == b"first"
        assert await store.record_nonce("oa:u:n2", b"\x00\xff" * 16, 60) is None
        assert await store.record_nonce("oa:u:n2", b"", 60) == b"\x00\xff" * 16
        # remember_nonce is a record with no fingerprint: the two see each other's
        assert await store.remember_nonce("oa:u:n1", 60) is False
        assert await store.remember_nonce("oa:u:n3", 60) is True
        assert await store.record_nonce("oa:u:n3", b"x", 60) == b""

    backend.run(scenario)


def test_a_nonce_is_recorded_afresh_once_its_ttl_has_passed(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.record_nonce("n", b"old", 1) is None
        await backend.advance(1.3)
        assert await store.record_nonce("n", b"new", 1) is None
        assert await store.record_nonce("n", b"old", 1) == b"new"

    backend.run(scenario)


def test_concurrent_first_uses_of_one_nonce_have_exactly_one_winner(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        prints = [b"fp%d" % i for i in range(10)]
        results = await asyncio.gather(*(store.record_nonce("n", fp, 60) for fp in prints))
        winners = [fp for fp, first in zip(prints, results) if first is None]
        assert len(winners) == 1
        assert all(first == winners[0] for first in results if first is not None)

    backend.run(scenario)


def test_a_nonce_fingerprint_must_be_short_bytes(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        for bad in (b"x" * 65, "text"):
            with pytest.raises(StoreError):
                await store.record_nonce("n", bad, 60)  # type: ignore[arg-type]

    backend.run(scenario)


# -- dedup with cached replies -------------------------------------------------------------------


def test_the_first_claim_wins_and_later_ones_see_it_in_progress(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        first = await store.claim("oa:msg-1", 300)
        second = await store.claim("oa:msg-1", 300)
        assert first.claimed and first.state is ClaimState.CLAIMED and first.reply is None
        assert second.in_progress and second.reply is None
        assert (await store.claim("oa:msg-2", 300)).claimed

    backend.run(scenario)


def test_a_completed_claim_gives_every_retry_the_same_reply(backend: Backend) -> None:
    body = b"<xml><Encrypt><![CDATA[...]]></Encrypt></xml>\x00\xff"

    async def scenario(store: Store) -> None:
        assert (await store.claim("k", 300)).claimed
        await store.complete("k", body, "application/xml; charset=utf-8", 300)
        for _ in range(3):
            retry = await store.claim("k", 300)
            assert retry.done
            assert retry.reply == CachedReply(body, "application/xml; charset=utf-8")

    backend.run(scenario)


def test_an_empty_reply_is_cached_as_done_not_in_progress(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 300)
        await store.complete("k", b"", "text/plain", 300)
        retry = await store.claim("k", 300)
        assert retry.done and retry.reply == CachedReply(b"", "text/plain")

    backend.run(scenario)


def test_a_released_claim_can_be_claimed_again(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 300)
        await store.release("k")
        assert (await store.claim("k", 300)).claimed

    backend.run(scenario)


def test_release_keeps_a_completed_reply(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 300)
        await store.complete("k", b"ok", "text/plain", 300)
        await store.release("k")
        assert (await store.claim("k", 300)).done

    backend.run(scenario)


def test_an_in_progress_claim_lapses_after_its_ttl(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 1)  # the worker holding it crashed
        await backend.advance(1.3)
        assert (await store.claim("k", 300)).claimed

    backend.run(scenario)


def test_a_cached_reply_is_forgotten_after_its_ttl(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 300)
        await store.complete("k", b"ok", "text/plain", 1)
        await backend.advance(1.3)
        assert (await store.claim("k", 300)).claimed

    backend.run(scenario)


def test_concurrent_claims_of_one_key_have_exactly_one_winner(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        results = await asyncio.gather(*(store.claim("k", 300) for _ in range(10)))
        assert sorted(r.state.value for r in results) == ["claimed"] + ["in_progress"] * 9

    backend.run(scenario)


def test_wait_for_returns_the_reply_when_the_first_attempt_completes(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert (await store.claim("k", 300)).claimed
        assert (await store.claim("k", 300)).in_progress

        async def first_attempt() -> None:
            await asyncio.sleep(0.1)
            await store.complete("k", b"answer", "text/plain", 300)

        waited, _ = await asyncio.gather(store.wait_for("k", 30), first_attempt())
        assert waited == CachedReply(b"answer", "text/plain")

    backend.run(scenario)


def test_wait_for_gives_up_with_none_while_the_claim_is_still_in_progress(
    backend: Backend,
) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 300)
        assert await store.wait_for("k", 0.1) is None
        assert (await store.claim("k", 300)).in_progress

    backend.run(scenario)


def test_wait_for_returns_none_when_the_claim_is_released(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.claim("k", 300)

        async def failing_attempt() -> None:
            await asyncio.sleep(0.1)
            await store.release("k")

        waited, _ = await asyncio.gather(store.wait_for("k", 30), failing_attempt())
        assert waited is None
        assert (await store.claim("k", 300)).claimed

    backend.run(scenario)


def test_wait_for_an_unknown_key_returns_none(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.wait_for("never-claimed", 30) is None

    backend.run(scenario)


def test_wait_for_an_answered_key_returns_its_reply(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.complete("k", b"ok", "text/plain", 300)
        assert await store.wait_for("k", 0) == CachedReply(b"ok", "text/plain")

    backend.run(scenario)


# -- robot stream state --------------------------------------------------------------------------


def test_a_stored_stream_reads_back_with_defaults_and_extra_fields(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        images = [{"base64": "aGk=", "md5": "49f68a5c8493ec2c0bf489821c21fc3b"}]
        stored = await store.put_stream(
            "s-1", {"msgid": "m-1", "images": images, "feedback_id": "fb"}, 420
        )
        assert stored == {
            "id": "s-1",
            "content": "",
            "finish": False,
            "msgid": "m-1",
            "images": images,
            "feedback_id": "fb",
            "updated_at": stored["updated_at"],
        }
        assert_just_now(backend, stored["updated_at"])
        assert await store.get_stream("s-1") == stored

    backend.run(scenario)


def test_an_unknown_stream_reads_as_none_and_cannot_be_changed(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.get_stream("nope") is None
        assert await store.update_stream("nope", "text") is None
        assert await store.append_stream("nope", "text") is None
        assert await store.get_stream("nope") is None

    backend.run(scenario)


def test_appended_chunks_accumulate_into_the_full_content(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {"msgid": "m"}, 420)
        await store.append_stream("s", "Hello", ttl=420)
        await store.append_stream("s", ", 世界", ttl=420)
        state = await store.get_stream("s")
        assert state is not None
        assert state["content"] == "Hello, 世界" and state["finish"] is False
        assert state["msgid"] == "m"

    backend.run(scenario)


def test_update_replaces_the_content_and_can_finish_the_stream(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {"content": "1"}, 420)
        await backend.advance(0.01)
        updated = await store.update_stream("s", "123", finish=True)
        assert updated is not None
        assert updated["content"] == "123" and updated["finish"] is True
        assert_just_now(backend, updated["updated_at"])
        assert await store.get_stream("s") == updated

    backend.run(scenario)


def test_a_finished_stream_refuses_further_changes(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {}, 420)
        await store.append_stream("s", "done", finish=True)
        with pytest.raises(StreamStateError, match="finished"):
            await store.append_stream("s", " more")
        with pytest.raises(StreamStateError, match="finished"):
            await store.update_stream("s", "other")
        state = await store.get_stream("s")
        assert state is not None and state["content"] == "done"

    backend.run(scenario)


def test_stream_content_is_limited_to_20480_bytes_of_utf8(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {"content": "a" * MAX_STREAM_CONTENT_BYTES}, 420)
        with pytest.raises(StreamStateError, match="20480"):
            await store.append_stream("s", "b")
        # 6827 three-byte characters are 20481 bytes, though only 6827 characters.
        with pytest.raises(StreamStateError, match="20480"):
            await store.update_stream("s", "中" * 6827)
        with pytest.raises(StreamStateError, match="20480"):
            await store.put_stream("t", {"content": "中" * 6827}, 420)
        state = await store.get_stream("s")
        assert state is not None and state["content"] == "a" * MAX_STREAM_CONTENT_BYTES
        assert await store.get_stream("t") is None

    backend.run(scenario)


def test_a_stream_expires_after_its_ttl(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {}, 1)
        await backend.advance(1.3)
        assert await store.get_stream("s") is None

    backend.run(scenario)


def test_a_stream_update_renews_its_ttl(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {}, 1)
        await store.append_stream("s", "x", ttl=60)
        await backend.advance(1.3)
        state = await store.get_stream("s")
        assert state is not None and state["content"] == "x"

    backend.run(scenario)


def test_stream_state_must_be_plain_json_for_its_own_id(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        with pytest.raises(StreamStateError, match="JSON"):
            await store.put_stream("s", {"images": {1, 2}}, 420)
        with pytest.raises(StreamStateError, match="does not match"):
            await store.put_stream("s", {"id": "other"}, 420)
        with pytest.raises(StreamStateError, match="finish"):
            await store.put_stream("s", {"finish": "yes"}, 420)
        assert await store.get_stream("s") is None

    backend.run(scenario)


def test_concurrent_appends_lose_no_chunk(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.put_stream("s", {}, 420)
        await asyncio.gather(*(store.append_stream("s", str(i % 10)) for i in range(20)))
        state = await store.get_stream("s")
        assert state is not None
        assert sorted(state["content"]) == sorted("".join(str(i % 10) for i in range(20)))

    backend.run(scenario)


# -- durable outbox ------------------------------------------------------------------------------


def test_an_enqueued_item_is_claimed_with_everything_it_was_given(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        id = await store.enqueue("crm", b'{"msgid": "m-1"}\x00', "crm:m-1")
        [item] = await store.claim_batch("worker-a", 10, 30)
        assert item.id == id
        assert item.channel == "crm"
        assert item.payload == b'{"msgid": "m-1"}\x00'
        assert item.idempotency_key == "crm:m-1"
        assert item.attempts == 1
        assert_just_now(backend, item.enqueued_at)

    backend.run(scenario)


def test_enqueueing_an_idempotency_key_twice_makes_one_delivery(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        first = await store.enqueue("crm", b"payload", "m-1")
        again = await store.enqueue("crm", b"payload (platform retry)", "m-1")
        assert again == first
        assert await store.depth() == 1
        batch = await store.claim_batch("worker-a", 10, 30)
        assert [(item.id, item.payload) for item in batch] == [(first, b"payload")]

    backend.run(scenario)


def test_a_duplicate_arriving_after_delivery_is_still_absorbed(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        first = await store.enqueue("crm", b"payload", "m-1")
        [item] = await store.claim_batch("worker-a", 10, 30)
        await store.ack(item.id)
        assert await store.enqueue("crm", b"payload", "m-1") == first
        assert await store.depth() == 0
        assert await store.claim_batch("worker-a", 10, 30) == []

    backend.run(scenario)


def test_the_same_key_on_another_channel_is_another_delivery(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        crm = await store.enqueue("crm", b"a", "m-1")
        erp = await store.enqueue("erp", b"b", "m-1")
        assert crm != erp
        batch = await store.claim_batch("worker-a", 10, 30)
        assert sorted(item.channel for item in batch) == ["crm", "erp"]

    backend.run(scenario)


def test_items_are_claimed_oldest_first_up_to_count(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        ids = [await store.enqueue("crm", f"p{i}".encode(), f"k{i}") for i in range(5)]
        first = await store.claim_batch("worker-a", 3, 30)
        second = await store.claim_batch("worker-a", 3, 30)
        assert [item.id for item in first] == ids[:3]
        assert [item.id for item in second] == ids[3:]
        assert await store.claim_batch("worker-a", 3, 30) == []

    backend.run(scenario)


def test_an_unacked_item_returns_to_another_consumer_after_the_visibility_timeout(
    backend: Backend,
) -> None:
    async def scenario(store: Store) -> None:
        id = await store.enqueue("crm", b"p", "k")
        [taken] = await store.claim_batch("crashed-worker", 10, 1)
        assert await store.claim_batch("worker-b", 10, 1) == []
        await backend.advance(1.3)
        [again] = await store.claim_batch("worker-b", 10, 30)
        assert again.id == taken.id == id
        assert again.attempts == 2
        assert again.payload == b"p"

    backend.run(scenario)


def test_an_acked_item_is_gone_for_good(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.enqueue("crm", b"p", "k")
        [item] = await store.claim_batch("worker-a", 10, 1)
        await store.ack(item.id)
        assert await store.depth() == 0
        await backend.advance(1.3)
        assert await store.claim_batch("worker-a", 10, 1) == []

    backend.run(scenario)


def test_a_nacked_item_waits_until_its_retry_time(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.enqueue("crm", b"p", "k")
        [item] = await store.claim_batch("worker-a", 10, 300)
        await store.nack(item.id, retry_at=backend.clock() + 1)
        assert await store.claim_batch("worker-a", 10, 300) == []
        assert await store.depth() == 1
        await backend.advance(1.3)
        [retry] = await store.claim_batch("worker-b", 10, 300)
        assert retry.id == item.id and retry.attempts == 2

    backend.run(scenario)


def test_a_nack_with_a_past_retry_time_is_claimable_at_once(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.enqueue("crm", b"p", "k")
        [item] = await store.claim_batch("worker-a", 10, 300)
        await store.nack(item.id, retry_at=backend.clock() - 1)
        [retry] = await store.claim_batch("worker-a", 10, 300)
        assert retry.id == item.id and retry.attempts == 2

    backend.run(scenario)


def test_depth_counts_waiting_and_in_flight_items(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.depth() == 0
        for i in range(3):
            await store.enqueue("crm", b"p", f"k{i}")
        [first] = await store.claim_batch("worker-a", 1, 30)
        assert await store.depth() == 3
        await store.ack(first.id)
        assert await store.depth() == 2

    backend.run(scenario)


def test_concurrent_consumers_never_get_the_same_item(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        ids = {await store.enqueue("crm", b"p", f"k{i}") for i in range(10)}
        batches = await asyncio.gather(
            *(store.claim_batch(f"worker-{n}", 3, 30) for n in range(5))
        )
        handed_out = [item.id for batch in batches for item in batch]
        assert len(handed_out) == len(set(handed_out)) == 10
        assert set(handed_out) == ids

    backend.run(scenario)


def test_ack_and_nack_of_unknown_ids_change_nothing(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.enqueue("crm", b"p", "k")
        for unknown in ("999999", "not-an-id", "1-1", "٣"):
            await store.ack(unknown)
            await store.nack(unknown, retry_at=backend.clock() + 60)
        assert await store.depth() == 1
        assert len(await store.claim_batch("worker-a", 10, 30)) == 1

    backend.run(scenario)


def test_depth_is_the_stores_count_whatever_store_object_asks(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        for i in range(4):
            await store.enqueue(f"channel-{i}", b"p", "k")  # several channels: several shards
        [item] = await store.claim_batch("worker-that-dies", 1, 30)
        assert await store.depth() == 4
        if backend.name in ("sqlite", "redis", "redis-cluster"):
            async with backend.make() as other_worker:
                assert await other_worker.depth() == 4
                await other_worker.ack(item.id)
        else:
            await store.ack(item.id)
        assert await store.depth() == 3

    backend.run(scenario)


# -- dead letters --------------------------------------------------------------------------------


def test_a_dead_letter_leaves_delivery_and_keeps_everything_it_had(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        id = await store.enqueue("crm", b"payload\x00", "crm:m-1")
        await store.enqueue("crm", b"other", "crm:m-2")
        [item, _] = await store.claim_batch("worker-a", 10, 1)
        await store.nack(item.id, retry_at=backend.clock() - 1)
        [item] = await store.claim_batch("worker-a", 1, 30)
        assert item.id == id and item.attempts == 2
        assert await store.dead_letter(id, "HTTP 400 from the backend") is True
        assert await store.depth() == 1 and await store.dead_count() == 1
        [dead] = await store.list_dead()
        assert (dead.id, dead.channel, dead.payload, dead.idempotency_key) == (
            id, "crm", b"payload\x00", "crm:m-1")
        assert dead.attempts == 2 and dead.reason == "HTTP 400 from the backend"
        assert dead.enqueued_at == item.enqueued_at
        assert_just_now(backend, dead.dead_at)
        await backend.advance(1.3)  # past any visibility timeout: still never handed out
        assert [i.idempotency_key for i in await store.claim_batch("worker-b", 10, 30)] == ["crm:m-2"]

    backend.run(scenario)


def test_ack_and_nack_of_a_dead_letter_change_nothing(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        id = await store.enqueue("crm", b"p", "k")
        [item] = await store.claim_batch("worker-a", 1, 30)
        assert await store.dead_letter(item.id, "gave up")
        await store.ack(id)
        await store.nack(id, retry_at=backend.clock() - 1)
        assert await store.dead_count() == 1 and await store.depth() == 0
        assert await store.claim_batch("worker-a", 10, 30) == []
        assert await store.dead_letter(id, "twice") is False
        [dead] = await store.list_dead()
        assert dead.reason == "gave up"

    backend.run(scenario)


def test_a_duplicate_of_a_dead_letter_is_absorbed(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        id = await store.enqueue("crm", b"p", "k")
        assert await store.dead_letter(id, "gave up")  # a waiting item, never handed out
        assert await store.enqueue("crm", b"p (platform retry)", "k") == id
        assert await store.depth() == 0 and await store.dead_count() == 1

    backend.run(scenario)


def test_a_retried_dead_letter_is_delivered_again_from_attempt_one(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.enqueue("crm", b"p", "k")
        [item] = await store.claim_batch("worker-a", 1, 30)
        await store.dead_letter(item.id, "backend was down for a day")
        back = await store.retry_dead(item.id)
        assert back is not None
        assert await store.dead_count() == 0 and await store.list_dead() == []
        assert await store.depth() == 1
        [again] = await store.claim_batch("worker-a", 1, 30)
        assert again.id == back and again.attempts == 1
        assert (again.payload, again.idempotency_key) == (b"p", "k")
        assert again.enqueued_at == item.enqueued_at
        assert await store.enqueue("crm", b"p", "k") == back  # duplicates still absorbed
        await store.ack(back)
        assert await store.depth() == 0
        assert await store.retry_dead(item.id) is None

    backend.run(scenario)


def test_a_dropped_dead_letter_is_gone_but_its_key_still_absorbs_duplicates(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        id = await store.enqueue("crm", b"p", "k")
        await store.dead_letter(id, "poison message")
        assert await store.drop_dead(id) is True
        assert await store.dead_count() == 0 and await store.depth() == 0
        assert await store.drop_dead(id) is False
        assert await store.retry_dead(id) is None
        assert await store.enqueue("crm", b"p", "k") == id
        assert await store.depth() == 0 and await store.claim_batch("w", 10, 30) == []

    backend.run(scenario)


def test_dead_letters_are_listed_oldest_first_by_channel_up_to_limit(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        ids = {}
        for n, channel in enumerate(["crm", "erp", "crm", "crm", "erp"]):
            id = await store.enqueue(channel, f"p{n}".encode(), f"k{n}")
            await store.dead_letter(id, f"reason {n}")
            ids[n] = id
            await backend.advance(0.01)
        assert [d.id for d in await store.list_dead()] == [ids[n] for n in range(5)]
        assert [d.id for d in await store.list_dead("crm")] == [ids[0], ids[2], ids[3]]
        assert [d.id for d in await store.list_dead("crm", limit=2)] == [ids[0], ids[2]]
        assert [d.reason for d in await store.list_dead("erp")] == ["reason 1", "reason 4"]
        assert await store.list_dead("nobody") == []
        assert len(await store.list_dead(limit=1)) == 1
        assert await store.dead_count() == 5

    backend.run(scenario)


def test_dead_letter_calls_with_unknown_ids_change_nothing(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.enqueue("crm", b"p", "k")
        for unknown in ("999999", "not-an-id", "1-1", "0:1-1", "٣"):
            assert await store.dead_letter(unknown, "x") is False
            assert await store.retry_dead(unknown) is None
            assert await store.drop_dead(unknown) is False
        assert await store.depth() == 1 and await store.dead_count() == 0

    backend.run(scenario)


# -- lifecycle and bad input ---------------------------------------------------------------------


def test_a_working_store_reports_health_with_a_write(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.start() == [] or backend.name.startswith("redis")
        health = await store.health()
        assert health == StoreHealth(True, "") and health.ok
        ok, reason = health
        assert ok and reason == ""
        assert await store.healthy() is True

    backend.run(scenario)


def test_a_closed_store_reports_why_it_is_unhealthy(backend: Backend) -> None:
    async def main() -> None:
        store = backend.make()
        await store.close()
        assert await store.health() == StoreHealth(False, "the store is closed")
        with pytest.raises(StoreError, match="closed"):
            await store.start()

    asyncio.run(main())



def test_a_store_is_healthy_until_closed_and_refuses_work_after(backend: Backend) -> None:
    async def main() -> None:
        store = backend.make()
        assert await store.healthy() is True
        await store.close()
        assert await store.healthy() is False
        with pytest.raises(StoreError, match="closed"):
            await store.remember_nonce("n", 60)
        await store.close()  # twice is harmless

    asyncio.run(main())


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.remember_nonce("", 60),
        lambda s: s.remember_nonce(b"bytes-key", 60),
        lambda s: s.remember_nonce("n", 0),
        lambda s: s.remember_nonce("n", -1),
        lambda s: s.remember_nonce("n", float("nan")),
        lambda s: s.remember_nonce("n", True),
        lambda s: s.claim("k", float("inf")),
        lambda s: s.complete("k", "text, not bytes", "text/plain"),
        lambda s: s.complete("k", b"ok", None),
        lambda s: s.wait_for("k", -1),
        lambda s: s.put_stream("s", ["not", "a", "dict"]),
        lambda s: s.append_stream("s", b"bytes"),
        lambda s: s.enqueue("", b"p", "k"),
        lambda s: s.enqueue("crm", "str payload", "k"),
        lambda s: s.claim_batch("w", 0, 30),
        lambda s: s.claim_batch("w", 1.5, 30),
        lambda s: s.claim_batch("w", 10, 0),
        lambda s: s.nack("1", float("nan")),
        lambda s: s.dead_letter("", "reason"),
        lambda s: s.dead_letter("1", None),
        lambda s: s.list_dead(limit=0),
        lambda s: s.list_dead(""),
        lambda s: s.retry_dead(""),
        lambda s: s.drop_dead(b"1"),
    ],
)
def test_bad_arguments_raise_a_store_error(backend: Backend, call: object) -> None:
    async def scenario(store: Store) -> None:
        assert callable(call)
        with pytest.raises(StoreError):
            await call(store)
        assert await store.depth() == 0

    backend.run(scenario)


def test_store_errors_are_library_errors_outside_the_protocol_codes() -> None:
    error = StreamStateError("too long")
    assert isinstance(error, StoreError) and isinstance(error, WXCallbackError)
    assert error.code is ErrorCode.OK  # the official codes are for protocol failures only


# -- leases ---------------------------------------------------------------------------------------


def test_a_lease_has_one_holder_until_it_is_released(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.lease_owner("longconn:bot") is None
        assert await store.acquire_lease("longconn:bot", "a", 30) is True
        assert await store.acquire_lease("longconn:bot", "b", 30) is False
        assert await store.lease_owner("longconn:bot") == "a"
        assert await store.acquire_lease("longconn:bot", "a", 30) is True  # re-acquiring extends it
        await store.release_lease("longconn:bot", "b")  # not b's: nothing happens
        assert await store.lease_owner("longconn:bot") == "a"
        await store.release_lease("longconn:bot", "a")
        assert await store.lease_owner("longconn:bot") is None
        assert await store.acquire_lease("longconn:bot", "b", 30) is True
        assert await store.acquire_lease("longconn:other", "a", 30) is True

    backend.run(scenario)


def test_concurrent_acquires_of_one_lease_give_it_to_exactly_one(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        results = await asyncio.gather(*(store.acquire_lease("l", f"holder-{i}", 30) for i in range(10)))
        assert sorted(results) == [False] * 9 + [True]
        assert await store.lease_owner("l") == f"holder-{results.index(True)}"

    backend.run(scenario)


def test_a_lease_renewed_by_its_holder_outlives_its_first_ttl(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.acquire_lease("l", "a", 1)
        await backend.advance(0.6)
        assert await store.renew_lease("l", "a", 1) is True
        await backend.advance(0.6)
        assert await store.lease_owner("l") == "a"
        assert await store.acquire_lease("l", "b", 1) is False

    backend.run(scenario)


def test_an_expired_lease_is_taken_over_and_never_renewed_by_its_old_holder(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.acquire_lease("l", "a", 1)
        await backend.advance(1.3)
        assert await store.lease_owner("l") is None
        assert await store.renew_lease("l", "a", 1) is False  # lapsed: renewing does not take it back
        assert await store.acquire_lease("l", "b", 5) is True
        assert await store.renew_lease("l", "a", 5) is False
        await store.release_lease("l", "a")
        assert await store.lease_owner("l") == "b"

    backend.run(scenario)


def test_a_lease_is_handed_over_only_from_the_named_holder(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.acquire_lease("l", "a", 30)
        assert await store.acquire_lease("l", "marker", 30, replacing="someone-else") is False
        assert await store.acquire_lease("l", "marker", 30, replacing="a") is True
        assert await store.lease_owner("l") == "marker"
        assert await store.renew_lease("l", "a", 30) is False

    backend.run(scenario)


def test_lease_arguments_are_checked(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        with pytest.raises(StoreError):
            await store.acquire_lease("", "a", 30)
        with pytest.raises(StoreError):
            await store.acquire_lease("l", "a", 0)
        with pytest.raises(StoreError):
            await store.renew_lease("l", "", 30)

    backend.run(scenario)


# -- request queues -------------------------------------------------------------------------------


def test_requests_are_taken_oldest_first_each_by_one_taker(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.pop_requests("send:bot", 10) == []
        for i in range(5):
            await store.push_request("send:bot", f"r{i}".encode() + b"\x00\xff:", 60)
        await store.push_request("send:other", b"x", 60)
        assert await store.pop_requests("send:bot", 2) == [b"r0\x00\xff:", b"r1\x00\xff:"]
        takers = await asyncio.gather(store.pop_requests("send:bot", 10), store.pop_requests("send:bot", 10))
        assert sorted(takers[0] + takers[1]) == [b"r2\x00\xff:", b"r3\x00\xff:", b"r4\x00\xff:"]
        assert await store.pop_requests("send:bot", 10) == []
        assert await store.pop_requests("send:other", 10) == [b"x"]

    backend.run(scenario)


def test_a_request_left_past_its_ttl_is_dropped_unread(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.push_request("q", b"old", 1)
        await backend.advance(1.3)
        await store.push_request("q", b"new", 60)
        assert await store.pop_requests("q", 10) == [b"new"]
        with pytest.raises(StoreError):
            await store.pop_requests("q", 0)

    backend.run(scenario)


# -- named values ---------------------------------------------------------------------------------


def test_a_named_value_is_replaced_and_expires(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        assert await store.get_value("ticket:suite") is None
        await store.put_value("ticket:suite", b"first\x00\xff", 1)
        assert await store.get_value("ticket:suite") == b"first\x00\xff"
        await store.put_value("ticket:suite", b"second", 1)
        assert await store.get_value("ticket:suite") == b"second"
        await store.put_value("ticket:other", b"x", 60)
        await backend.advance(1.3)
        assert await store.get_value("ticket:suite") is None
        assert await store.get_value("ticket:other") == b"x"

    backend.run(scenario)


def test_named_value_arguments_are_checked(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        with pytest.raises(StoreError):
            await store.put_value("", b"x", 1)
        with pytest.raises(StoreError):
            await store.put_value("n", "text", 1)  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            await store.put_value("n", b"x", 0)

    backend.run(scenario)
