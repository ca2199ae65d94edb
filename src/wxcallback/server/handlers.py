"""What answers a channel's messages: a Python callable or router, or the demo echo.

``handler = "package.module:attribute"`` names a Router, or a function taking the
typed message and returning a reply, a string, None or (robots) an async iterator of
text. With neither handler nor forward, a channel answers text messages by echoing
them: the demo the README's first command shows.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..messages import Message, Reply, Router, StreamingReply
from .config import ConfigError

__all__ = ["Dispatch", "demo_router", "load_handler"]

Dispatch = Callable[[Message], Awaitable[Reply | StreamingReply | None]]


def demo_router() -> Router:
    router = Router(sync_in_thread=False)  # one f-string: no reason to leave the loop

    @router.text
    def echo(message: Any) -> str:
        return f"echo: {message.content}"

    return router


def load_handler(spec: str | None, where: str) -> Dispatch:
    """The dispatch coroutine for ``module:attribute`` (or the demo echo when None)."""
    if spec is None:
        return demo_router().dispatch
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of the user's module, of any kind
        raise ConfigError(f"{where}.handler: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{where}.handler: {module_name!r} has no attribute {attribute!r}") from None
    if isinstance(target, Router):
        return target.dispatch
    if callable(target):
        router = Router()
        router.fallback(target)
        return router.dispatch
    raise ConfigError(f"{where}.handler: {spec!r} is neither a Router nor callable")
