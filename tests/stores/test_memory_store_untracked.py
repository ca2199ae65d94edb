"""Cached replies in the memory store add nothing to the garbage collector's work."""

from __future__ import annotations

import asyncio
import gc

from wxcallback.server.stores import ClaimState, MemoryStore


def test_cached_replies_are_not_tracked_objects_and_read_back_whole() -> None:
    async def main() -> None:
        store = MemoryStore()
        await store.start()
        for index in range(2000):
            await store.claim(f"c:dedup:{index}", 60)
            await store.complete(f"c:dedup:{index}", b'{"kind":"reply","text":"%d"}' % index, "application/json", 60)
        gc.collect()
        before = len(gc.get_objects())
        for index in range(2000, 4000):
            await store.claim(f"c:dedup:{index}", 60)
            await store.complete(f"c:dedup:{index}", b"x", "application/json", 60)
        gc.collect()
        assert len(gc.get_objects()) - before < 1000  # not 2 per reply (4,000), as CachedReply objects were
        seen = await store.claim("c:dedup:7", 60)
        assert seen.state is ClaimState.DONE and seen.reply is not None
        assert (seen.reply.body, seen.reply.content_type) == (b'{"kind":"reply","text":"7"}', "application/json")
        await store.close()

    asyncio.run(main())
