"""The HTTP fuzz target quiets the ``wxcallback`` logger for its whole process (no access log
per input), which suits a fuzzing process but not a test session: put it back after each test,
so later tests that read the access log still see it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_the_wxcallback_logger() -> Iterator[None]:
    logger = logging.getLogger("wxcallback")
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.propagate = propagate
    logger.handlers[:] = handlers
