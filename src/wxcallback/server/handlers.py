"""What answers a channel's messages: a Python callable or router, or the demo echo.

``handler = "package.module:attribute"`` names a Router, or a function taking the
typed message and returning a reply, a string, None or (robots) an async iterator of
text. With neither handler nor forward, a channel answers text messages by echoing
them: the demo the README's first command shows.

The module is imported from the application directory first (``server.app_dir`` or
``--app-dir``, default the working directory), as uvicorn and gunicorn do: a ``bot.py``
beside the configuration is ``handler = "bot:router"``.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
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


def load_handler(spec: str | None, where: str, app_dir: str = ".") -> Dispatch:
    """The dispatch coroutine for ``module:attribute`` (or the demo echo when None).

    ``app_dir`` (relative to the working directory) is searched before the rest of
    ``sys.path``.
    """
    if spec is None:
        return demo_router().dispatch
    module_name, _, attribute = spec.partition(":")
    directory = os.path.abspath(app_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of the user's module, of any kind
        raise ConfigError(f"{where}.handler: cannot import {module_name!r}{_origin(exc, module_name, directory)}: "
                          f"{type(exc).__name__}: {exc}") from None
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


def _origin(exc: BaseException, module_name: str, directory: str) -> str:
    """Where an import failed: ``" (bot.py line 3)"``, or where the module was looked for."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename} line {exc.lineno})"
    # The innermost frame that is neither importlib's machinery nor load_handler itself.
    machinery = os.path.dirname(importlib.__file__)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)[1:]
              if not f.filename.startswith("<frozen") and os.path.dirname(f.filename) != machinery]
    if frames:
        return f" ({frames[-1].filename} line {frames[-1].lineno})"
    if isinstance(exc, ModuleNotFoundError):
        return (f" (looked in the application directory {directory}, then sys.path; "
                "--app-dir or server.app_dir names another directory)")
    return ""
