"""``Router``: handlers that say what they handle, in the style of aiogram / WeRoBot.

A handler receives the typed Message and returns a Reply, a plain string (a text reply
of the right kind for the platform), None or ``""`` (the platform's "no reply" answer,
as in every peer framework: an empty text reply would show the user an empty bubble, or be
refused) or, for a
robot user message, an async iterator of text chunks (a streamed answer, handed back as
a ``StreamingReply`` for the server to drive). The router knows nothing of HTTP or
crypto, so every server and framework adapter can share one.

``await router.dispatch(message)`` awaits async handlers on the event loop and runs
sync handlers in a bounded thread pool, so a handler that blocks (a database call, a
``time.sleep``) delays neither other callbacks nor its own deadline: the server answers
"no reply" in time and keeps the late result for a retry. A CPU-bound sync handler still
competes for the interpreter (the GIL) with the event loop; give it its own process.
``Router(sync_in_thread=False)`` calls sync handlers directly on the loop, for handlers
known to be quick. ``router.dispatch_sync`` is for WSGI code: it calls sync handlers and
runs async ones with ``asyncio.run`` when no loop is running in the thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, overload

from .base import Message
from .errors import InvalidReplyError, ReplyNotAllowedError
from .platform import Platform
from .replies import Reply, TextReply
from .robot import EnterChatEvent, StreamRefresh
from .robot_replies import StreamReply, new_stream_id
from .xml_events import XmlEvent

__all__ = ["Handler", "Router", "StreamingReply"]

Handler = Callable[[Any], Any]
H = TypeVar("H", bound=Handler)
Predicate = Callable[[Message], bool]
PlatformFilter = Platform | str | Iterable[Platform | str] | None


class StreamingReply:
    """A robot answer still being written: the handler's async iterator of text chunks.

    Each chunk is *added* to the text; the stream's content is cumulative (what WeCom
    shows). The server replies ``first_reply()`` at once, then keeps a state and calls
    ``await next_state(state)`` to pull more text, answering every stream refresh with the
    latest state until one has ``finish=True``.
    """

    __slots__ = ("source", "stream_id", "message", "feedback_id")

    def __init__(self, source: AsyncIterator[str], stream_id: str, message: Message,
                 feedback_id: str | None = None) -> None:
        self.source = source
        self.stream_id = stream_id
        self.message = message
        self.feedback_id = feedback_id

    def first_reply(self) -> StreamReply:
        """The placeholder that starts the stream (empty content, not finished)."""
        return StreamReply(self.stream_id, "", False, (), self.feedback_id)

    async def next_state(self, state: StreamReply) -> StreamReply:
        """``state`` with the next chunk appended, or finished when the iterator is done."""
        try:
            chunk = await self.source.__anext__()
        except StopAsyncIteration:
            return state.finished()
        if not isinstance(chunk, str):
            raise InvalidReplyError(f"a streaming handler must yield str, got {type(chunk).__name__}")
        return state.append(chunk)

    def __repr__(self) -> str:
        return f"StreamingReply(stream_id={self.stream_id!r})"


def _platforms(platform: PlatformFilter) -> frozenset[Platform] | None:
    if platform is None:
        return None
    if isinstance(platform, (Platform, str)):
        return frozenset({Platform.of(platform)})
    return frozenset(Platform.of(p) for p in platform)


def _words(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset({value}) if isinstance(value, str) else frozenset(value)


class _Route:
    __slots__ = ("handler", "platforms", "msg_type", "events", "filter")

    def __init__(self, handler: Handler, platforms: frozenset[Platform] | None, msg_type: str | None,
                 events: frozenset[str] | None, filter: Predicate | None) -> None:
        self.handler = handler
        self.platforms = platforms
        self.msg_type = msg_type
        self.events = events  # None: not an event route; empty: any event
        self.filter = filter

    def matches(self, message: Message) -> bool:
        if self.platforms is not None and message.platform not in self.platforms:
            return False
        if self.msg_type is not None and (message.event is not None or message.msg_type != self.msg_type):
            return False
        events = self.events
        if events is not None and (message.event is None or (events and message.event not in events)):
            return False
        return self.filter is None or self.filter(message)


# bumped by every registration anywhere, so routers can cache their flattened route lists
_generation = 0

#: threads for sync handlers, shared by every router of the process
SYNC_HANDLER_THREADS = 32
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _handler_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(SYNC_HANDLER_THREADS, thread_name_prefix="wxcallback-handler")
    return _pool


def _changed() -> None:
    global _generation
    _generation += 1


class _KindDecorator:
    """``router.image``: usable bare (``@router.image``) or with options (``@router.image(platform=…)``)."""

    def __init__(self, router: Router, msg_type: str, doc: str) -> None:
        self._router = router
        self._msg_type = msg_type
        self.__doc__ = doc  # what help(router.image) shows

    @overload
    def __call__(self, handler: H, /) -> H: ...

    @overload
    def __call__(self, handler: None = None, /, *, platform: PlatformFilter = None) -> Callable[[H], H]: ...

    def __call__(self, handler: H | None = None, /, *, platform: PlatformFilter = None) -> H | Callable[[H], H]:
        return self._router._kind(self._msg_type, handler, platform)


class _MessageKind:
    """A Router attribute giving the decorator for one message type (one definition, not seven)."""

    __slots__ = ("msg_type", "doc")

    def __init__(self, msg_type: str, doc: str) -> None:
        self.msg_type = msg_type
        self.doc = doc

    @overload
    def __get__(self, router: None, owner: type | None = None) -> _MessageKind: ...

    @overload
    def __get__(self, router: Router, owner: type | None = None) -> _KindDecorator: ...

    def __get__(self, router: Router | None, owner: type | None = None) -> _MessageKind | _KindDecorator:
        return self if router is None else _KindDecorator(router, self.msg_type, self.doc)


class Router:
    """Handlers, matched in registration order; included routers are tried after this one's.

    A fallback runs only when no handler anywhere in the tree matched (the first
    fallback found, this router's before its children's).
    """

    def __init__(self, name: str = "", *, stream_id_factory: Callable[[], str] = new_stream_id,
                 sync_in_thread: bool = True) -> None:
        self.name = name
        self.stream_id_factory = stream_id_factory
        self.sync_in_thread = sync_in_thread
        self._routes: list[_Route] = []
        self._children: list[Router] = []
        self._fallback: Handler | None = None
        # (generation, routes in order, fallback, whether each handler is async by id): built
        # again only when some router's routes changed; inspect's checks cost ~2 µs a message
        self._cache: tuple[int, tuple[_Route, ...], Handler | None, dict[int, bool]] = (-1, (), None, {})

    def __repr__(self) -> str:
        return f"Router({self.name!r}, {len(self._routes)} handlers, {len(self._children)} included)"

    # --- registration --------------------------------------------------------------------

    def include(self, router: Router) -> Router:
        """Try ``router``'s handlers after this router's own; returns ``router``."""
        if router is self or self in router._walk():
            raise ValueError("a router cannot include itself")
        self._children.append(router)
        _changed()
        return router

    def register(self, handler: H, *, msg_type: str | None = None, event: str | Iterable[str] | None = None,
                 platform: PlatformFilter = None, filter: Predicate | None = None) -> H:
        """Add ``handler`` for messages matching every given condition."""
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        events = None if event is None else frozenset(name.lower() for name in _words(event) or ())
        self._routes.append(_Route(handler, _platforms(platform), None if msg_type is None else msg_type.lower(),
                                   events, filter))
        _changed()
        return handler

    def message(self, *, msg_type: str | None = None, platform: PlatformFilter = None,
                filter: Predicate | None = None) -> Callable[[H], H]:
        """Decorator: any message (or event) matching the conditions; no condition = everything."""
        def decorate(handler: H) -> H:
            return self.register(handler, msg_type=msg_type, platform=platform, filter=filter)
        return decorate

    def event(self, *names: str, platform: PlatformFilter = None,
              filter: Predicate | None = None) -> Callable[[H], H]:
        """Decorator: events by name, case-insensitive (``"SCAN"`` == ``"scan"``); none = any event.

        Suite instructions are events named by their InfoType (``"suite_ticket"``).
        """
        def decorate(handler: H) -> H:
            return self.register(handler, event=names, platform=platform, filter=filter)
        return decorate

    @overload
    def text(self, handler: H, /) -> H: ...

    @overload
    def text(self, handler: None = None, /, *, keyword: str | Iterable[str] | None = None,
             regex: str | re.Pattern[str] | None = None, platform: PlatformFilter = None) -> Callable[[H], H]: ...

    def text(self, handler: H | None = None, /, *, keyword: str | Iterable[str] | None = None,
             regex: str | re.Pattern[str] | None = None, platform: PlatformFilter = None) -> H | Callable[[H], H]:
        """Decorator for text messages, optionally only an exact ``keyword`` (after stripping
        whitespace) or text where ``regex`` is found. Usable bare: ``@router.text``."""
        keywords = _words(keyword)
        pattern = re.compile(regex) if isinstance(regex, str) else regex

        def matches(message: Message) -> bool:
            content = getattr(message, "content", "")
            if not isinstance(content, str):
                return False
            if keywords is not None and content.strip() not in keywords:
                return False
            return pattern is None or pattern.search(content) is not None

        def decorate(function: H) -> H:
            unfiltered = keywords is None and pattern is None
            return self.register(function, msg_type="text", platform=platform, filter=None if unfiltered else matches)
        return decorate(handler) if handler is not None else decorate

    def _kind(self, msg_type: str, handler: H | None, platform: PlatformFilter) -> H | Callable[[H], H]:
        def decorate(function: H) -> H:
            return self.register(function, msg_type=msg_type, platform=platform)
        return decorate(handler) if handler is not None else decorate

    image = _MessageKind("image", "Decorator for image messages (all platforms).")
    voice = _MessageKind("voice", "Decorator for voice messages.")
    video = _MessageKind("video", "Decorator for video messages.")
    location = _MessageKind("location", "Decorator for location *messages* (the LOCATION event is "
                                        "``@router.event(\"location\")``).")
    link = _MessageKind("link", "Decorator for link messages.")
    file = _MessageKind("file", "Decorator for file messages (robots, Official Account files).")
    mixed = _MessageKind("mixed", "Decorator for robot mixed (text and images) messages.")

    def stream_refresh(self, handler: H) -> H:
        """Decorator for robot stream refresh callbacks (``msgtype: "stream"``).

        A server that tracks its streams answers these itself; register one only to take over.
        """
        return self.register(handler, msg_type="stream")

    def subscribe(self, handler: H) -> H:
        """Decorator for subscribe events (follow / QR-code follow / app became visible)."""
        return self.register(handler, event="subscribe")

    def unsubscribe(self, handler: H) -> H:
        return self.register(handler, event="unsubscribe")

    def enter_chat(self, handler: H) -> H:
        """Decorator for a robot's enter_chat event; a returned string is the welcome text."""
        return self.register(handler, event="enter_chat")

    def click(self, key: str | None = None, *, platform: PlatformFilter = None) -> Callable[[H], H]:
        """Decorator for menu CLICK events, optionally only the one whose EventKey is ``key``."""
        def has_key(message: Message) -> bool:
            return key is None or (isinstance(message, XmlEvent) and message.event_key == key)

        def decorate(handler: H) -> H:
            return self.register(handler, event="click", platform=platform, filter=has_key)
        return decorate

    def _changes(self, event: str, change_types: tuple[str, ...]) -> Callable[[H], H]:
        # events and suite instructions of one name share their fields, ChangeType included
        wanted = frozenset(change_types)

        def has_change_type(message: Message) -> bool:
            return not wanted or getattr(message, "change_type", None) in wanted

        def decorate(handler: H) -> H:
            return self.register(handler, event=event, filter=has_change_type if wanted else None)
        return decorate

    def contact_change(self, *change_types: str) -> Callable[[H], H]:
        """Decorator for WeCom address-book changes (app event and suite instruction
        change_contact), optionally only some ChangeTypes (``"create_user"``, …)."""
        return self._changes("change_contact", change_types)

    def external_contact(self, *change_types: str) -> Callable[[H], H]:
        """Decorator for WeCom customer-contact changes (change_external_contact), optionally
        only some ChangeTypes (``"add_external_contact"``, ``"del_follow_user"``, …)."""
        return self._changes("change_external_contact", change_types)

    def external_chat(self, *change_types: str) -> Callable[[H], H]:
        """Decorator for customer group changes (change_external_chat: create, update, dismiss)."""
        return self._changes("change_external_chat", change_types)

    def external_tag(self, *change_types: str) -> Callable[[H], H]:
        """Decorator for customer tag changes (change_external_tag: create, update, delete, shuffle)."""
        return self._changes("change_external_tag", change_types)

    def kf_message(self, handler: H) -> H:
        """Decorator for 微信客服 kf_msg_or_event: messages wait to be fetched with its token."""
        return self.register(handler, event="kf_msg_or_event")

    def job_finished(self, handler: H) -> H:
        """Decorator for Official Account job results: TEMPLATESENDJOBFINISH, MASSSENDJOBFINISH,
        PUBLISHJOBFINISH."""
        return self.register(handler, event=("templatesendjobfinish", "masssendjobfinish", "publishjobfinish"))

    def subscribe_message(self, handler: H) -> H:
        """Decorator for subscription-message events: the pop-up answered, settings changed,
        messages sent (subscribe_msg_popup_event / _change_event / _sent_event)."""
        return self.register(handler, event=("subscribe_msg_popup_event", "subscribe_msg_change_event",
                                              "subscribe_msg_sent_event"))

    def ticket(self, handler: H) -> H:
        """Decorator for the tickets a third party needs for its access token: a WeCom
        suite's suite_ticket and an open-platform component_verify_ticket."""
        return self.register(handler, event=("suite_ticket", "component_verify_ticket"))

    def authorization(self, handler: H) -> H:
        """Decorator for authorizations granted, changed or revoked: open-platform
        authorized / updateauthorized / unauthorized and suite create_auth / change_auth /
        cancel_auth."""
        return self.register(handler, event=("authorized", "updateauthorized", "unauthorized", "create_auth",
                                              "change_auth", "cancel_auth"))

    def fallback(self, handler: H) -> H:
        """Decorator: the handler for messages no other handler matched."""
        self._fallback = handler
        _changed()
        return handler

    # --- dispatch --------------------------------------------------------------------------

    def _walk(self) -> Iterator[Router]:
        yield self
        for child in self._children:
            yield from child._walk()

    def find_handler(self, message: Message) -> Handler | None:
        """The handler that would run for ``message`` (None when nothing, not even a fallback, matches)."""
        generation, routes, fallback, _ = self._cache
        if generation != _generation:
            routers = list(self._walk())
            routes = tuple(route for router in routers for route in router._routes)
            fallback = next((r._fallback for r in routers if r._fallback is not None), None)
            handlers = [route.handler for route in routes] + ([fallback] if fallback is not None else [])
            self._cache = (_generation, routes, fallback, {id(h): _is_async(h) for h in handlers})
        for route in routes:
            if route.matches(message):
                return route.handler
        return fallback

    async def dispatch(self, message: Message) -> Reply | StreamingReply | None:
        """Run the matching handler and turn its result into a reply (``to_reply``).

        Returns None when no handler matched (the caller decides, e.g. forwards the
        message), the message's ``no_reply`` answer when the handler returned None.
        """
        handler = self.find_handler(message)
        if handler is None:
            return None
        if self.sync_in_thread and not self._is_async(handler):
            context = contextvars.copy_context()
            result = await asyncio.get_running_loop().run_in_executor(_handler_pool(), context.run, handler, message)
        else:
            result = handler(message)
        if not isinstance(result, (str, Reply)) and inspect.isawaitable(result):
            result = await result
        return self.to_reply(result, message)

    def begin_dispatch(
        self, message: Message
    ) -> Reply | StreamingReply | None | Coroutine[Any, Any, Reply | StreamingReply | None]:
        """``dispatch(message)`` begun here: its result at once when no handler matches, or a
        plain function matches and ``sync_in_thread`` is off (the function is called now, on
        the loop); else a coroutine that finishes it (an async handler, a function run in a
        thread, a function that returned an awaitable), for the caller to run as a task."""
        handler = self.find_handler(message)
        if handler is None:
            return None
        if self.sync_in_thread or self._is_async(handler):
            return self.dispatch(message)
        result = handler(message)
        if not isinstance(result, (str, Reply)) and inspect.isawaitable(result):
            return self._awaited(result, message)
        return self.to_reply(result, message)

    async def _awaited(self, result: Awaitable[Any], message: Message) -> Reply | StreamingReply:
        return self.to_reply(await result, message)

    def _is_async(self, handler: Handler) -> bool:
        # the routes hold their handlers, so an id in the cache is the handler it was taken of
        known = self._cache[3].get(id(handler))
        return _is_async(handler) if known is None else known

    def dispatch_sync(self, message: Message) -> Reply | StreamingReply | None:
        """``dispatch`` for synchronous code; async handlers run in a fresh event loop."""
        handler = self.find_handler(message)
        if handler is None:
            return None
        result = handler(message)
        if not isinstance(result, (str, Reply)) and inspect.isawaitable(result):
            result = _run(result)
        return self.to_reply(result, message)

    def to_reply(self, result: Any, message: Message) -> Reply | StreamingReply:
        """A handler's return value as a reply for ``message``.

        Whether that reply may answer ``message`` is checked once, where it is rendered
        (``render_reply``), whoever produced it: a handler, a forwarding backend, a stream.
        """
        if result is None or (isinstance(result, str) and not result):
            return message.no_reply
        if isinstance(result, str):
            reply: Reply = self._text_reply(result, message)
        elif isinstance(result, Reply):
            reply = result
        elif isinstance(result, StreamingReply) or (hasattr(result, "__aiter__") and hasattr(result, "__anext__")):
            if message.platform is not Platform.WECOM_ROBOT or not message.is_user_message:
                raise ReplyNotAllowedError("only a robot user message can be answered with a stream of text")
            if isinstance(result, StreamingReply):  # built by the handler, e.g. to set a feedback id
                return result
            return StreamingReply(result, self.stream_id_factory(), message)
        else:
            raise InvalidReplyError(f"a handler returned {type(result).__name__}; return a Reply, a str, "
                                    "None or (robots) an async iterator of str")
        return reply

    def _text_reply(self, text: str, message: Message) -> Reply:
        if message.platform is not Platform.WECOM_ROBOT or isinstance(message, EnterChatEvent):
            return TextReply(text)
        if isinstance(message, StreamRefresh):
            return StreamReply(message.stream_id, text, True)
        if message.is_user_message:
            return StreamReply(self.stream_id_factory(), text, True)
        raise ReplyNotAllowedError(f"a robot {message.event!r} event cannot be answered with text")


def _is_async(handler: Handler) -> bool:
    """Whether calling ``handler`` only builds a coroutine or async iterator (cheap, on the loop)."""
    target = getattr(handler, "__func__", handler)
    if not inspect.isfunction(target) and not inspect.ismethod(target) and callable(target):
        target = getattr(type(target), "__call__", target)  # a callable object
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _run(awaitable: Awaitable[Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async def wait() -> Any:
            return await awaitable
        return asyncio.run(wait())
    if inspect.iscoroutine(awaitable):
        awaitable.close()  # never awaited: close it to avoid a "never awaited" warning
    raise RuntimeError("dispatch_sync cannot run an async handler inside a running event loop; "
                       "use 'await router.dispatch(message)'")
