"""One JSON object per line for everything ``wxcallback serve`` writes, and URLs without secrets.

The server's own lines are JSON already; uvicorn's messages, httpx's and tracebacks are
not. This formatter makes every record one JSON object on one line: a line of this
package that is a JSON object gets ``level`` and ``logger`` spliced in (no re-parsing on
the request path); any other message becomes ``{"message": …}``; a traceback goes in the
``traceback`` field. U+2028 / U+2029, which JSON allows raw but log shippers split lines
on, are escaped.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

__all__ = ["JsonLineFormatter", "configure_logging", "redact_url", "uvicorn_log_config"]


# An access_token in a URL (httpx's request lines at debug level carry the message APIs' URLs).
_ACCESS_TOKEN = re.compile(r"(access_token=)[^&\s\"']+")


# the '{"level": …, "logger": …' opening of a line, by level and logger (a handful of each)
_heads: dict[tuple[str, str], str] = {}


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "access_token=" in message:
            message = _ACCESS_TOKEN.sub(r"\1***", message)
        head = _heads.get((record.levelname, record.name))
        if head is None:
            head = _heads[(record.levelname, record.name)] = (f'{{"level": "{record.levelname.lower()}", '
                                                            f'"logger": {json.dumps(record.name)}')
        # Only this package's lines are known to be JSON objects when they look like one; a
        # handler's "{…}" text is wrapped like any other message.
        if message.startswith("{") and message.endswith("}") and record.name.startswith("wxcallback"):
            line = head + (", " + message[1:] if len(message) > 2 else "}")
        else:
            line = head + f", \"message\": {json.dumps(message, ensure_ascii=False)}}}"
        if "\n" in line or "\r" in line:  # a message that broke its own JSON: keep the line whole
            line = head + f", \"message\": {json.dumps(message, ensure_ascii=False)}}}"
        if record.exc_info:
            trace = json.dumps(self.formatException(record.exc_info), ensure_ascii=False)
            line = line[:-1] + f', "traceback": {trace}}}'
        return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the root logger; httpx's per-request lines only when debugging
    (they repeat each delivery, with its URL)."""
    # No line of ours shows the caller's file and line, thread, process or task: the logging
    # HOWTO's "Optimization" settings spare every record (one per request at info) looking
    # them up, ~1.3 µs of the ~8.5 µs an access line costs.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = logging.DEBUG if level.lower() == "debug" else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with every line through JsonLineFormatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLineFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def redact_url(url: str) -> str:
    """``url`` without credentials or query (``http://user:pass@host/p?api_key=k`` → ``http://host/p?…``)."""
    base, has_query, _ = url.partition("?")
    base = base.split("#", 1)[0]
    scheme, sep, rest = base.partition("//")
    if sep:
        authority, slash, path = rest.partition("/")
        base = f"{scheme}//{authority.rpartition('@')[2]}{slash}{path}"
    return base + ("?…" if has_query else "")
