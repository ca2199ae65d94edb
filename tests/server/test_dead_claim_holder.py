"""A retry that finds a claim left by an instance that died: never acknowledged and lost."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text
from wxcallback.messages import parse_message
from wxcallback.server.config import parse_config
from wxcallback.server.dispatch import CLAIM_LEASE_MARGIN
from wxcallback.server.runtime import CallbackServer
from wxcallback.server.stores import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _server(channel: dict[str, Any], clock: Clock) -> tuple[CallbackServer, MemoryStore]:
    base = {"path": "/w", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID,
            "deadline": 0.1}
    store = MemoryStore(clock=clock)
    return CallbackServer(parse_config({"channels": {"w": base | channel}}), store), store


def _request(side: Platform, plaintext: str) -> tuple[str, bytes, bytes]:
    # a retry is the same plaintext encrypted again
    url, body = side.callback(plaintext)
    path, _, query = url.partition("?")
    return path, query.encode(), body


def _claim_key(plaintext: str) -> str:
    return "w:dedup:" + parse_message(plaintext, "wecom-app").dedup_key


def test_handler_channel_answers_503_then_takes_over_after_the_lease() -> None:
    clock = Clock()
    server, store = _server({}, clock)
    side = Platform("wecom-app", "/w")

    async def main() -> None:
        await server.start()
        # Another instance claimed this message and died before answering it.
        plaintext = wecom_text("orphaned", msg_id=4242)
        await store.claim(_claim_key(plaintext), 300)
        path, query, body = _request(side, plaintext)
        first = await server.respond("POST", path, query, body)
        assert first.status == 503 and first.outcome == "in_progress_elsewhere"
        clock.now += 400  # the dead holder's claim has run out by the platform's next retry
        path, query, body = _request(side, plaintext)
        retry = await server.respond("POST", path, query, body)
        assert retry.status == 200 and "echo: orphaned" in side.open_reply(retry.body)
        await server.stop()

    asyncio.run(main())


def test_claims_are_leases_not_the_whole_dedup_ttl() -> None:
    clock = Clock()
    server, store = _server({}, clock)
    side = Platform("wecom-app", "/w")

    async def main() -> None:
        await server.start()
        answered, other = wecom_text("orphaned", msg_id=5151), wecom_text("orphaned", msg_id=6161)
        path, query, body = _request(side, answered)
        assert (await server.respond("POST", path, query, body)).status == 200
        assert server.pipeline is not None
        await server.pipeline.drain(1)  # the answer's copy for retries is written just after it
        # The answered message stays cached for dedup_ttl...
        clock.now += 100
        assert (await store.claim(_claim_key(answered), 1)).done
        # ...while a fresh claim (another message) would expire after deadline + margin.
        assert (await store.claim(_claim_key(other), 0.1 + CLAIM_LEASE_MARGIN)).claimed
        clock.now += 0.1 + CLAIM_LEASE_MARGIN + 0.01
        assert (await store.claim(_claim_key(other), 1)).claimed
        await server.stop()

    asyncio.run(main())


def test_a_retry_racing_the_cached_copy_gets_the_same_answer() -> None:
    server, store = _server({}, Clock())
    side = Platform("wecom-app", "/w")

    async def main() -> None:
        await server.start()
        path, query, body = _request(side, wecom_text("twice", msg_id=4242))
        first = await server.respond("POST", path, query, body)
        # At once, before the copy is written: the claim is still in progress, the retry waits for it.
        retry = await server.respond("POST", path, query, body)
        assert (first.status, first.outcome, retry.status, retry.outcome) == (200, "ok", 200, "duplicate")
        nonce = query.decode().split("nonce=")[1].split("&")[0]
        assert side.open_reply(retry.body, nonce) == side.open_reply(first.body, nonce)
        await server.stop()

    asyncio.run(main())


def test_forwarding_channel_persists_before_claiming() -> None:
    clock = Clock()
    server, store = _server({"forward": "http://127.0.0.1:9/unreachable", "forward_timeout": 0.1}, clock)
    side = Platform("wecom-app", "/w")

    async def main() -> None:
        await server.start()
        plaintext = wecom_text("orphaned", msg_id=7373)
        await store.claim(_claim_key(plaintext), 300)  # a holder that died before its enqueue
        path, query, body = _request(side, plaintext)
        response = await server.respond("POST", path, query, body)
        # Acknowledged only because the message is now in the outbox.
        assert response.status == 200 and response.outcome == "duplicate_in_progress"
        assert await store.depth() == 1
        await server.stop()

    asyncio.run(main())
