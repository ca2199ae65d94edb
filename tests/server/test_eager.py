"""A handler or store call that never waits is answered in place; one that waits keeps every guarantee."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.platform_requests import APPID, KEY, TOKEN, wecom_text
from tests.platform_requests import Platform as SidePlatform
from wxcallback.messages import Platform, Router, parse_message
from wxcallback.server.dispatch import Channel, Dispatcher
from wxcallback.server.eager import start_eagerly
from wxcallback.server.stores import MemoryStore
from wxcallback.server.streams import StreamDriver


async def _tasks_started_by(call: Any) -> tuple[Any, int]:
    before = asyncio.all_tasks()
    future = call()
    return future, len(asyncio.all_tasks() - before)


def test_a_coroutine_that_never_waits_is_done_at_once_without_a_task() -> None:
    async def quick() -> str:
        return "done"

    async def main() -> None:
        future, started = await _tasks_started_by(lambda: start_eagerly(quick()))
        assert future.done() and future.result() == "done" and started == 0

    asyncio.run(main())


def test_an_exception_before_the_first_wait_is_held_in_the_future() -> None:
    async def broken() -> str:
        raise ValueError("bug")

    async def main() -> None:
        future = start_eagerly(broken())
        assert future.done()
        with pytest.raises(ValueError, match="bug"):
            future.result()

    asyncio.run(main())


def test_a_coroutine_that_waits_runs_on_as_a_task_through_every_wait() -> None:
    steps: list[str] = []

    async def waits() -> str:
        steps.append("first")
        await asyncio.sleep(0)           # a bare yield
        steps.append("second")
        await asyncio.sleep(0.01)        # a future
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(None, lambda: "from a thread")
        steps.append("third")
        return value

    async def main() -> None:
        future = start_eagerly(waits())
        assert steps == ["first"] and not future.done()
        assert await future == "from a thread"
        assert steps == ["first", "second", "third"]

    asyncio.run(main())


def test_cancelling_the_task_reaches_the_coroutine_where_it_waits() -> None:
    seen: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        future = start_eagerly(waits())
        await asyncio.sleep(0)
        future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await future
        assert seen == ["cancelled"]

    asyncio.run(main())


def _message(text: str) -> Any:
    return parse_message(wecom_text(text), Platform.WECOM_APP)


def _channel(router: Router, deadline: float = 0.2) -> Channel:
    return Channel("w", Platform.WECOM_APP, router.dispatch, None, deadline, 60.0)


def test_a_synchronous_handler_is_answered_inline_and_its_reply_cached() -> None:
    router = Router(sync_in_thread=False)
    router.fallback(lambda message: f"echo: {message.content}")

    async def main() -> None:
        store = MemoryStore()
        dispatcher = Dispatcher(store, StreamDriver(store))
        channel = _channel(router)
        message = _message("hi")
        dispatched, started = await _dispatch_counting_tasks(dispatcher, channel, message)
        assert dispatched.outcome == "ok" and "echo: hi" in (dispatched.answer.text if dispatched.answer else "")
        assert started == 0  # neither the handler nor the memory store's copy needed a task
        again = await dispatcher.dispatch(channel, message)
        assert again.outcome == "duplicate" and again.answer == dispatched.answer

    asyncio.run(main())


async def _dispatch_counting_tasks(dispatcher: Dispatcher, channel: Channel, message: Any) -> tuple[Any, int]:
    created = 0
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        dispatched = await dispatcher.dispatch(channel, message)
    finally:
        loop.set_task_factory(factory)
    return dispatched, created


def test_a_handler_that_waits_past_the_deadline_is_answered_no_reply_and_its_late_reply_kept() -> None:
    router = Router()

    @router.text
    async def slow(message: Any) -> str:
        await asyncio.sleep(0.3)
        return "late answer"

    assert "late answer" in asyncio.run(_late_then_retried(router, "slow"))


async def _late_then_retried(router: Router, text: str) -> str:
    """Dispatch one message under a 0.05 s deadline that its handler misses, let the handler
    finish, and return the text the platform's retry of the message is answered with."""
    store = MemoryStore()
    dispatcher = Dispatcher(store, StreamDriver(store))
    channel = _channel(router, deadline=0.05)
    message = _message(text)
    dispatched = await dispatcher.dispatch(channel, message)
    assert dispatched.outcome == "late" and dispatched.answer is not None and dispatched.answer.kind == "none"
    await dispatcher.drain(2.0)
    retry = await dispatcher.dispatch(channel, message)
    assert retry.outcome == "duplicate" and retry.answer is not None
    return retry.answer.text


def test_a_synchronous_handler_that_raises_is_a_handler_error_answered_no_reply() -> None:
    router = Router(sync_in_thread=False)

    @router.text
    def broken(message: Any) -> str:
        raise RuntimeError("handler bug")

    async def main() -> None:
        store = MemoryStore()
        dispatcher = Dispatcher(store, StreamDriver(store))
        dispatched = await dispatcher.dispatch(_channel(router), _message("x"))
        assert dispatched.outcome == "handler_error"
        assert dispatched.answer is not None and dispatched.answer.kind == "none"

    asyncio.run(main())


def test_a_synchronous_handler_in_a_thread_still_has_its_deadline() -> None:
    import threading

    release = threading.Event()
    router = Router()  # sync handlers run in a thread: the first step waits on it

    @router.text
    def blocking(message: Any) -> str:
        release.wait(5)
        return "blocked answer"

    async def main() -> None:
        store = MemoryStore()
        dispatcher = Dispatcher(store, StreamDriver(store))
        channel = _channel(router, deadline=0.05)
        message = _message("stuck")
        dispatched = await dispatcher.dispatch(channel, message)
        assert dispatched.outcome == "late"
        release.set()
        await dispatcher.drain(5.0)
        retry = await dispatcher.dispatch(channel, message)
        assert retry.answer is not None and "blocked answer" in retry.answer.text

    asyncio.run(main())


CHANNELS = {"wecom": {"path": "/wecom", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY,
                      "receive_id": APPID}}


async def _call_app(app: Any, url: str, chunks: list[bytes], delay: float) -> tuple[int, bytes]:
    path, _, query = url.partition("?")
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "headers": [], "root_path": ""}
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(delay)  # the body is not there yet when the app first asks
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def test_a_body_still_on_its_way_is_read_as_a_stream_within_the_body_timeout() -> None:
    from wxcallback.server.app import create_app
    from wxcallback.server.config import parse_config

    side = SidePlatform("wecom-app", "/wecom")

    async def main() -> None:
        app = create_app(parse_config({"server": {"body_timeout": 0.3}, "channels": CHANNELS}), store=MemoryStore())
        url, body = side.callback(wecom_text("in two parts"))
        status, reply = await _call_app(app, url, [body[:40], body[40:]], 0.01)
        assert status == 200 and "echo: in two parts" in side.open_reply(reply)
        url, body = side.callback(wecom_text("too slow"))
        status, _ = await _call_app(app, url, [body[:10], body[10:20], body[20:]], 0.2)
        assert status == 408
        await app.state.wxcallback.stop()

    asyncio.run(main())


def test_an_async_handler_runs_in_a_task_of_its_own_so_its_timeouts_and_scopes_hold() -> None:
    router = Router()

    @router.text
    async def careful(message: Any) -> str:
        outer = asyncio.current_task()
        async with asyncio.timeout(5):  # bound to the task that enters it
            await asyncio.sleep(0.01)
            assert asyncio.current_task() is outer
        return "answered in time"

    async def main() -> None:
        store = MemoryStore()
        dispatcher = Dispatcher(store, StreamDriver(store))
        channel = _channel(router, deadline=2.0)
        request_task = asyncio.current_task()
        dispatched = await dispatcher.dispatch(channel, _message("careful"))
        assert dispatched.outcome == "ok" and dispatched.answer is not None
        assert "answered in time" in dispatched.answer.text
        assert asyncio.current_task() is request_task and not request_task.cancelling()

    asyncio.run(main())


def test_a_synchronous_handler_that_returns_an_awaitable_still_has_its_deadline() -> None:
    router = Router(sync_in_thread=False)

    async def slowly(message: Any) -> str:
        await asyncio.sleep(0.3)
        return "awaited answer"

    router.fallback(lambda message: slowly(message))  # a plain function, returning a coroutine

    # the function is called in place, its awaitable runs as a task, under the deadline
    assert "awaited answer" in asyncio.run(_late_then_retried(router, "await me"))
