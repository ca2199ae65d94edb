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

__all__ = ["JsonLineFormatter", "JsonLineHandler", "configure_logging", "json_line", "line_handler", "redact_url",
           "uvicorn_log_config"]


# An access_token in a URL (httpx's request lines at debug level carry the message APIs' URLs).
_ACCESS_TOKEN = re.compile(r"(access_token=)[^&\s\"']+")


# the '{"level": …, "logger": …' opening of a line, by level and logger (a handful of each)
_heads: dict[tuple[str, str], str] = {}


def json_line(level: str, logger: str, message: str) -> str:
    """The line a record of ``logger`` at ``level`` ("INFO") with ``message`` is written as."""
    return _unbroken(_line(level, logger, message))


def _unbroken(line: str) -> str:
    """U+2028 / U+2029 escaped: JSON allows them raw, but log shippers split lines on them."""
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _line(level: str, logger: str, message: str) -> str:
    if "access_token=" in message:
        message = _ACCESS_TOKEN.sub(r"\1***", message)
    head = _heads.get((level, logger))
    if head is None:
        head = _heads[(level, logger)] = f'{{"level": "{level.lower()}", "logger": {json.dumps(logger)}'
    # Only this package's lines are known to be JSON objects when they look like one; a
    # handler's "{…}" text is wrapped like any other message.
    if message.startswith("{") and message.endswith("}") and logger.startswith("wxcallback"):
        line = head + (", " + message[1:] if len(message) > 2 else "}")
    else:
        line = head + f", \"message\": {json.dumps(message, ensure_ascii=False)}}}"
    if "\n" in line or "\r" in line:  # a message that broke its own JSON: keep the line whole
        line = head + f", \"message\": {json.dumps(message, ensure_ascii=False)}}}"
    return line


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = _line(record.levelname, record.name, record.getMessage())
        if record.exc_info:
            trace = json.dumps(self.formatException(record.exc_info), ensure_ascii=False)
            line = line[:-1] + f', "traceback": {trace}}}'
        return _unbroken(line)


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler ``configure_logging`` installs (stderr, JsonLineFormatter).

    ``write_line`` takes a line of this package already formatted, without a LogRecord: the
    access log writes one per request, and a record (its ~20 attributes, the logger's and
    handler's calls) cost more than the rest of the line (docs/bench_server.md, "The access
    log at the default level").
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.setFormatter(JsonLineFormatter())

    def write_line(self, line: str) -> bool:
        """Write ``line`` as ``emit`` writes a record's; False if the stream refused it."""
        with self.lock:  # type: ignore[union-attr]  # (StreamHandler creates it)
            try:
                self.stream.write(line + self.terminator)
                self.flush()
            except Exception:  # the caller logs it the usual way, whose handleError reports it
                return False
        return True


def line_handler(logger: logging.Logger, level: int) -> JsonLineHandler | None:
    """The one JsonLineHandler that alone would write ``logger``'s record at ``level``, if so.

    None when anything else would see the record (another handler, a filter on the way, a
    test's capturing handler): then it has to be a LogRecord, through logging.
    """
    found: JsonLineHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not JsonLineHandler or handler.filters:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or level < found.level:
        return None
    return found


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
    handler = JsonLineHandler(sys.stderr)
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
