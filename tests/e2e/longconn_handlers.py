"""A smart robot for the long-connection tests: streams, a welcome, a card update; each message
handled is recorded in the file WXCALLBACK_E2E_CALLS names (shared by every process), when set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from wxcallback.messages import MarkdownReply, Router, TextReply, UpdateTemplateCardReply

router = Router()


def _record(message: Any) -> None:
    path = os.environ.get("WXCALLBACK_E2E_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as calls:
            calls.write(f"{os.getpid()} {message.msg_type} {message.raw.get('msgid', '')}\n")


@router.text(keyword="slow")
async def slow(message: Any) -> str:
    _record(message)
    await asyncio.sleep(float(os.environ.get("WXCALLBACK_E2E_SLOW", "1.5")))  # past the channel's deadline
    return "late answer"


@router.text(keyword=("markdown", "markdown slow"))
async def markdown_back(message: Any) -> MarkdownReply:
    _record(message)
    if message.content.endswith("slow"):
        await asyncio.sleep(float(os.environ.get("WXCALLBACK_E2E_SLOW", "1.5")))  # past the channel's deadline
    return MarkdownReply(f"**you said** {message.content}")


@router.text
async def stream_back(message: Any) -> AsyncIterator[str]:
    _record(message)
    for word in ("you ", "said: ", message.content):
        await asyncio.sleep(0.05)
        yield word


@router.enter_chat
def welcome(message: Any) -> TextReply:
    _record(message)
    return TextReply("welcome!")


@router.event("template_card_event")
def card_clicked(message: Any) -> UpdateTemplateCardReply:
    _record(message)
    return UpdateTemplateCardReply({"card_type": "text_notice", "main_title": {"title": "done"},
                                    "card_action": {"type": 1, "url": "https://example.com"}})
