"""Handlers for the end-to-end server processes; each call is recorded in a file (shared across processes)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any


def _record(line: str) -> None:
    with open(os.environ["WXCALLBACK_E2E_CALLS"], "a", encoding="utf-8") as calls:
        calls.write(line + "\n")


def counting_echo(message: Any) -> str:
    _record(message.dedup_key)
    return f"echo: {getattr(message, 'content', '')}"


async def slow_stream(message: Any) -> AsyncIterator[str]:
    _record(message.dedup_key)
    for word in ("alpha ", "beta ", "gamma"):
        await asyncio.sleep(0.3)
        yield word


async def slow_echo(message: Any) -> str:
    await asyncio.sleep(1.0)
    return f"slow: {getattr(message, 'content', '')}"


def blocking_until_released(message: Any) -> str:
    """A sync handler stuck in a blocking call (a database, a sleep) until the test creates the file
    WXCALLBACK_E2E_RELEASE."""
    _record(message.dedup_key)
    release = os.environ["WXCALLBACK_E2E_RELEASE"]
    for _ in range(1000):  # 20 s at most
        if os.path.exists(release):
            break
        time.sleep(0.02)
    _record(f"finished {message.dedup_key}")
    return "blocked answer"


async def late_llm(message: Any) -> str:
    """Thinks past the channel's deadline (like an LLM), then answers in text."""
    _record(message.dedup_key)
    await asyncio.sleep(float(os.environ.get("WXCALLBACK_E2E_THINK", "0.8")))
    return f"after thinking: {getattr(message, 'content', '')}"
