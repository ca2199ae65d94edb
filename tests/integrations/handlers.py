"""Handlers the adapter tests configure by 'tests.integrations.handlers:NAME'.

The adapters under test run in this process, so the counters see every call.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

calls: Counter[str] = Counter()
streams_finished: Counter[str] = Counter()


def echo(message: Any) -> str:
    content = str(getattr(message, "content", ""))
    calls[content] += 1
    return f"echo: {content[:40]}"


async def stream(message: Any) -> AsyncIterator[str]:
    content = str(getattr(message, "content", ""))
    calls[content] += 1
    for word in ("one ", "two ", "three"):
        await asyncio.sleep(0.15)
        yield word
    streams_finished[content] += 1


async def recorded_stream(message: Any) -> AsyncIterator[str]:
    """A stream that notes in the file named by $WXCALLBACK_TEST_RECORD when it has finished."""
    for word in ("one ", "two ", "three"):
        await asyncio.sleep(0.15)
        yield word
    await asyncio.to_thread(_note, f"finished {getattr(message, 'content', '')}\n")


def _note(line: str) -> None:
    with open(os.environ["WXCALLBACK_TEST_RECORD"], "a", encoding="utf-8") as record:
        record.write(line)
