"""Handlers the server tests configure by 'tests.server.handlers:NAME'."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from wxcallback.messages import Router, TextReply

calls: Counter[str] = Counter()
finished: Counter[str] = Counter()

router = Router()


@router.text
def echo(message: Any) -> str:
    calls[message.content] += 1
    return f"echo: {message.content}"


async def slow(message: Any) -> str:
    calls["slow"] += 1
    await asyncio.sleep(0.4)
    finished["slow"] += 1
    return "late answer"


def broken(message: Any) -> str:
    raise RuntimeError("handler bug")


def bad_reply(message: Any) -> TextReply:
    return TextReply("x" * 5000)  # over the WeCom 2048-byte limit: the reply cannot be sent


async def streaming(message: Any) -> AsyncIterator[str]:
    for word in ("one ", "two ", "three"):
        await asyncio.sleep(0.05)
        yield word


# set by a test once it has seen other channels answered while a blocking handler runs
release_blocking = threading.Event()


def blocking(message: Any) -> str:
    calls["blocking"] += 1
    release_blocking.wait(timeout=10)  # a handler stuck in a blocking call (DB, sleep)
    finished["blocking"] += 1
    return "blocked answer"


async def long_stream(message: Any) -> AsyncIterator[str]:
    for _ in range(30):  # 30 x 1000 bytes: past the 20480-byte stream limit
        await asyncio.sleep(0)
        yield "é" * 500


tenants = Router()


@tenants.text
def tenant_echo(message: Any) -> str:
    """Answers with the account the templated path named, so each tenant sees its own replies."""
    calls[f"{message.tenant}:{message.content}"] += 1
    return f"{message.tenant or '-'}: {message.content}"


def app_a(message: Any) -> str:
    calls[f"a:{getattr(message, 'content', message.msg_type)}"] += 1
    return f"a: {getattr(message, 'content', '')}"


def app_b(message: Any) -> str:
    calls[f"b:{getattr(message, 'content', message.msg_type)}"] += 1
    return f"b: {getattr(message, 'content', '')}"


async def late_llm(message: Any) -> str:
    """An LLM-like handler: thinks past the deadline, then answers in text."""
    await asyncio.sleep(0.3)
    return f"thought about: {getattr(message, 'content', '')}"


async def late_unsendable(message: Any) -> Any:
    from wxcallback.messages import TransferCustomerServiceReply

    await asyncio.sleep(0.3)
    return TransferCustomerServiceReply()


async def proactive(message: Any) -> str:
    """Answers passively, and sends one more message itself through the channel's API."""
    from wxcallback.server.reply_sender import current_sender

    await current_sender().send("oa", message.source, TextReply(f"and one more about {message.content}"))
    return "passive answer"


async def late_markdown(message: Any) -> Any:
    """Thinks past the deadline, then answers in markdown (sent through the message API only)."""
    from wxcallback.messages import MarkdownReply

    await asyncio.sleep(0.3)
    return MarkdownReply(f"**late** about `{getattr(message, 'content', '')}`")


def markdown_in_time(message: Any) -> Any:
    from wxcallback.messages import MarkdownReply

    return MarkdownReply(f"**in time** about `{getattr(message, 'content', '')}`")
