"""The ``wxcallback`` command line.

``main`` is the click group behind the ``wxcallback`` console script; each module below
adds its commands to it.
"""

from __future__ import annotations

from . import keys, messages, signature, url  # noqa: F401 - importing registers the commands
from .app import main

__all__ = ["main"]
