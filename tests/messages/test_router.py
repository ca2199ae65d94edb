"""Router: handlers declare what they handle; results become checked replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from itertools import count

import pytest

from wxcallback.messages import (
    EmptyReply,
    ImageReply,
    InvalidReplyError,
    Message,
    Platform,
    ReplyNotAllowedError,
    Router,
    StreamingReply,
    StreamReply,
    SuccessReply,
    TextReply,
    parse_message,
    render_reply,
)

OA = Platform.OFFICIAL_ACCOUNT


def oa_text(content: str) -> Message:
    return parse_message(f"<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
                         f"<MsgType>text</MsgType><Content>{content}</Content><MsgId>1</MsgId></xml>", OA)


def oa_event(name: str, key: str = "", platform: Platform = OA) -> Message:
    return parse_message(f"<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
                         f"<MsgType>event</MsgType><Event>{name}</Event><EventKey>{key}</EventKey></xml>", platform)


def robot(msgtype: str, **payload: object) -> Message:
    return parse_message(json.dumps({"msgid": "M", "aibotid": "B", "from": {"userid": "U"}, "msgtype": msgtype,
                                     **payload}), Platform.WECOM_ROBOT)


def ids() -> Router:
    counter = count(1)
    return Router(stream_id_factory=lambda: f"stream-{next(counter)}")


def test_handlers_are_chosen_by_type_keyword_regex_and_event() -> None:
    router = Router()

    @router.text(keyword=["help", "帮助"])
    def help_(message: Message) -> str:
        return "help"

    @router.text(regex=r"^order (\d+)$")
    def order(message: Message) -> str:
        return "order"

    @router.text
    def any_text(message: Message) -> str:
        return "text"

    @router.event("SCAN", "subscribe")
    def scanned(message: Message) -> str:
        return "scan"

    @router.click("BUY")
    def buy(message: Message) -> str:
        return "buy"

    @router.event()
    def any_event(message: Message) -> str:
        return "event"

    assert router.dispatch_sync(oa_text(" help ")) == TextReply("help")
    assert router.dispatch_sync(oa_text("帮助")) == TextReply("help")
    assert router.dispatch_sync(oa_text("order 42")) == TextReply("order")
    assert router.dispatch_sync(oa_text("hello")) == TextReply("text")
    assert router.dispatch_sync(oa_event("scan")) == TextReply("scan")
    assert router.dispatch_sync(oa_event("subscribe")) == TextReply("scan")
    assert router.dispatch_sync(oa_event("CLICK", "BUY")) == TextReply("buy")
    assert router.dispatch_sync(oa_event("CLICK", "OTHER")) == TextReply("event")


def test_platform_filters_and_fallback() -> None:
    router = Router()

    @router.message(platform="wecom-app")
    def wecom_only(message: Message) -> str:
        return "wecom"

    @router.fallback
    def fallback(message: Message) -> str:
        return "fallback"

    assert router.dispatch_sync(oa_event("click", platform=Platform.WECOM_APP)) == TextReply("wecom")
    assert router.dispatch_sync(oa_event("click")) == TextReply("fallback")


def test_no_handler_gives_none_and_a_none_result_gives_the_no_reply_answer() -> None:
    router = Router()
    assert router.dispatch_sync(oa_text("x")) is None

    @router.text
    def silent(message: Message) -> None:
        return None

    assert router.dispatch_sync(oa_text("x")) == SuccessReply()
    assert router.dispatch_sync(robot("text", text={"content": "x"})) == EmptyReply()


def test_included_routers_run_after_the_parents_handlers_and_fallbacks_come_last() -> None:
    parent, child = Router("parent"), Router("child")
    parent.include(child)

    @child.text
    def child_text(message: Message) -> str:
        return "child"

    @parent.fallback
    def parent_fallback(message: Message) -> str:
        return "parent fallback"

    @child.image
    def child_image(message: Message) -> ImageReply:
        return ImageReply("m")

    assert parent.dispatch_sync(oa_text("x")) == TextReply("child")
    assert parent.dispatch_sync(oa_event("click")) == TextReply("parent fallback")

    @parent.text
    def parent_text(message: Message) -> str:  # registered later, still tried first
        return "parent"

    assert parent.dispatch_sync(oa_text("x")) == TextReply("parent")
    with pytest.raises(ValueError):
        child.include(parent)


def test_async_and_sync_handlers_work_in_both_dispatchers() -> None:
    router = Router()

    @router.text
    async def answer(message: Message) -> str:
        await asyncio.sleep(0)
        return "async"

    @router.subscribe
    def welcome(message: Message) -> str:
        return "sync"

    assert asyncio.run(router.dispatch(oa_text("x"))) == TextReply("async")
    assert asyncio.run(router.dispatch(oa_event("subscribe"))) == TextReply("sync")
    assert router.dispatch_sync(oa_text("x")) == TextReply("async")

    async def inside_a_loop() -> None:
        with pytest.raises(RuntimeError, match="await router.dispatch"):
            router.dispatch_sync(oa_text("x"))

    asyncio.run(inside_a_loop())


def test_strings_become_the_right_reply_for_each_robot_callback() -> None:
    router = ids()

    @router.message()
    def echo(message: Message) -> str:
        return "hi"

    assert router.dispatch_sync(robot("text", text={"content": "x"})) == StreamReply("stream-1", "hi", True)
    assert router.dispatch_sync(robot("event", event={"eventtype": "enter_chat", "enter_chat": {}})) == TextReply("hi")
    assert router.dispatch_sync(robot("stream", stream={"id": "S7"})) == StreamReply("S7", "hi", True)
    with pytest.raises(ReplyNotAllowedError, match="feedback_event"):
        router.dispatch_sync(robot("event", event={"eventtype": "feedback_event", "feedback_event": {}}))


def test_a_reply_the_callback_cannot_take_is_refused_where_it_is_rendered() -> None:
    router = Router()

    @router.message()
    def wrong(message: Message) -> ImageReply:
        return ImageReply("m")

    message = robot("text", text={"content": "x"})
    reply = router.dispatch_sync(message)
    assert reply == ImageReply("m")
    with pytest.raises(ReplyNotAllowedError):
        render_reply(reply, message)


def test_an_unsupported_return_value_is_a_library_error() -> None:
    router = Router()

    @router.text
    def bad(message: Message) -> int:
        return 42

    with pytest.raises(InvalidReplyError, match="returned int"):
        router.dispatch_sync(oa_text("x"))


def test_an_async_iterator_becomes_a_streaming_reply_the_server_can_drive() -> None:
    router = ids()

    @router.text
    async def stream(message: Message) -> AsyncIterator[str]:
        for piece in ("你", "好", "！"):
            yield piece

    async def drive() -> list[StreamReply]:
        streaming = await router.dispatch(robot("text", text={"content": "x"}))
        assert isinstance(streaming, StreamingReply)
        state = streaming.first_reply()
        states = [state]
        while not state.finish:
            state = await streaming.next_state(state)
            states.append(state)
        return states

    states = asyncio.run(drive())
    assert states[0] == StreamReply("stream-1", "", False)
    assert [s.content for s in states] == ["", "你", "你好", "你好！", "你好！"]
    assert states[-1].finish and not states[-2].finish


def test_streaming_is_only_for_robot_user_messages() -> None:
    router = Router()

    @router.text
    async def stream(message: Message) -> AsyncIterator[str]:
        yield "x"

    with pytest.raises(ReplyNotAllowedError, match="stream of text"):
        router.dispatch_sync(oa_text("x"))


def test_begin_dispatch_answers_a_plain_function_at_once_and_hands_anything_else_over() -> None:
    calls: list[str] = []
    router = Router(sync_in_thread=False)

    @router.text
    def plain(message: Message) -> str:
        calls.append(message.content)
        return f"echo: {message.content}"

    begun = router.begin_dispatch(oa_text("hi"))
    assert isinstance(begun, TextReply) and begun.content == "echo: hi"
    assert calls == ["hi"]  # called here, before anything was awaited
    assert Router().begin_dispatch(oa_text("no handler")) is None

    threaded = Router()  # sync_in_thread: the function runs in a thread, so a coroutine to await
    threaded.text(plain)
    waiting = Router(sync_in_thread=False)

    @waiting.text
    async def later(message: Message) -> str:
        return "async"

    async def awaitable(message: Message) -> str:
        return "awaited"

    returns_awaitable = Router(sync_in_thread=False)
    returns_awaitable.text(lambda message: awaitable(message))

    async def main() -> list[str]:
        texts = []
        for router_, expected_calls in ((threaded, 2), (waiting, 1), (returns_awaitable, 1)):
            begun = router_.begin_dispatch(oa_text("hi"))
            assert asyncio.iscoroutine(begun)
            assert len(calls) == 1  # nothing called yet: the thread's function runs when awaited
            reply = await begun
            assert isinstance(reply, TextReply)
            texts.append(reply.content)
            assert len(calls) == expected_calls
            calls[1:] = []
        return texts

    assert asyncio.run(main()) == ["echo: hi", "async", "awaited"]
