"""Smart-robot streams, kept in the shared store so any instance answers any refresh.

A handler that returns an async iterator of text gets a stream: the server answers
the user's message at once with ``{"msgtype": "stream", "stream": {"id", "finish":
false}}``, then pulls the iterator in the background and writes the cumulative
content to the store. WeCom polls with stream refresh callbacks (msgtype "stream",
the same id) for up to 6 minutes from the user's message (doc 101031); whichever
instance receives a refresh answers it from the store. A stream is finished when the
iterator ends, when its content reaches the 20480-byte limit (the chunk that would
pass it is cut to fit), or at the 6-minute mark.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ..messages import MAX_STREAM_CONTENT_BYTES, StreamReply, StreamingReply
from .stores import Store

__all__ = ["STREAM_LIFETIME", "StreamDriver", "state_to_reply"]

STREAM_LIFETIME = 6 * 60
_LOG = logging.getLogger("wxcallback.streams")


def state_to_reply(state: dict[str, Any] | None, stream_id: str) -> StreamReply:
    """The StreamReply for a stored state; an unknown or expired id is a finished empty stream
    (so WeCom stops polling it)."""
    if state is None:
        return StreamReply(stream_id, "", True)
    return StreamReply(stream_id, str(state.get("content", "")), bool(state.get("finish", False)),
                       feedback_id=state.get("feedback_id"))


class StreamDriver:
    """Starts streams and pumps their iterators into the store."""

    def __init__(self, store: Store, lifetime: float = STREAM_LIFETIME) -> None:
        self._store = store
        self._lifetime = lifetime
        self._tasks: set[asyncio.Task[None]] = set()

    def _key(self, channel: str, stream_id: str) -> str:
        return f"{channel}:{stream_id}"

    async def start(self, channel: str, streaming: StreamingReply) -> StreamReply:
        first = streaming.first_reply()
        key = self._key(channel, first.id)
        await self._store.put_stream(key, {
            "id": key, "content": "", "finish": False, "feedback_id": first.feedback_id,
            "started_at": time.time(),
        }, ttl=self._lifetime + 60)
        limited = StreamingReply(_within_limit(streaming.source, first.id), streaming.stream_id, streaming.message,
                                 streaming.feedback_id)
        task = asyncio.create_task(self._pump(channel, limited, first))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return first

    async def state(self, channel: str, stream_id: str) -> StreamReply:
        return state_to_reply(await self._store.get_stream(self._key(channel, stream_id)), stream_id)

    async def _pump(self, channel: str, streaming: StreamingReply, state: StreamReply) -> None:
        key = self._key(channel, state.id)
        deadline = time.monotonic() + self._lifetime
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    following = await asyncio.wait_for(streaming.next_state(state), max(remaining, 0.0))
                except asyncio.TimeoutError:
                    break  # 6 minutes: WeCom stops polling, so close what was said
                state = following
                await self._store.update_stream(key, state.content, state.finish, ttl=self._lifetime + 60)
                if state.finish:
                    return
        except Exception as exc:  # the handler's iterator failed: end the stream, keep what it said
            _LOG.error('{"stream": "%s", "outcome": "handler_error", "detail": "%s: %s"}', state.id,
                       type(exc).__name__, str(exc)[:200])
        try:
            await self._store.update_stream(key, state.content, True, ttl=self._lifetime + 60)
        except Exception as exc:
            _LOG.error('{"stream": "%s", "outcome": "store_error", "detail": "%s"}', state.id, type(exc).__name__)

    async def drain(self, timeout: float) -> None:
        """Let running streams finish (graceful shutdown), cancelling what is left at the timeout."""
        if not self._tasks:
            return
        done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()


async def _within_limit(source: AsyncIterator[Any], stream_id: str) -> AsyncIterator[Any]:
    """The handler's chunks, the one that would pass the content limit cut to fit, then the end."""
    size = 0
    async for chunk in source:
        if not isinstance(chunk, str):
            yield chunk  # StreamingReply.next_state refuses it, naming the type
            return
        data = chunk.encode()
        if size + len(data) >= MAX_STREAM_CONTENT_BYTES:
            # Cut at a character boundary: the content must stay valid UTF-8.
            yield data[: MAX_STREAM_CONTENT_BYTES - size].decode("utf-8", "ignore")
            _LOG.warning('{"stream": "%s", "outcome": "truncated", "detail": "content reached %d bytes"}',
                         stream_id, MAX_STREAM_CONTENT_BYTES)
            return
        size += len(data)
        yield chunk
