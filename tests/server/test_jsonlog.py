"""The log formatter: one JSON object per line, whatever the record."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from wxcallback.server.jsonlog import JsonLineFormatter, JsonLineHandler, configure_logging, redact_url
from wxcallback.server.observe import ACCESS_LOG, Outcome, log_callback, log_request


def _record(name: str, message: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, exc_info)


@pytest.mark.parametrize(("name", "message"), [
    ("wxcallback.access", json.dumps({"outcome": "ok", "path": "/a\u2028b"}, ensure_ascii=False)),
    ("wxcallback.server", "{}"),
    ("uvicorn.error", "Started server process [1]"),
    ("user.handler", "{not json}"),
    ("user.handler", "two\nlines\r\nand \u2029"),
    ("wxcallback.server", "{\"detail\": \"raw\nnewline\"}"),
])
def test_every_record_is_one_json_line(name: str, message: str) -> None:
    for exc in (False, True):
        line = JsonLineFormatter().format(_record(name, message, exc))
        assert "\n" not in line and "\r" not in line and "\u2028" not in line and "\u2029" not in line
        data = json.loads(line)
        assert data["level"] == "error" and data["logger"] == name
        if exc:
            assert "RuntimeError: boom" in data["traceback"]


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:s3cret@backend:8080/hook?api_key=k", "http://backend:8080/hook?…"),
    ("redis://:pw@[::1]:6379/0", "redis://[::1]:6379/0"),
    ("sqlite:///wxcallback.db", "sqlite:///wxcallback.db"),
    ("https://h/p#frag", "https://h/p"),
])
def test_urls_are_shown_without_credentials_or_query(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_access_token_in_any_line_is_masked() -> None:
    message = 'HTTP Request: POST https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token=T0K3N&x=1 "200"'
    line = json.loads(JsonLineFormatter().format(_record("httpx", message)))
    assert "T0K3N" not in line["message"] and "access_token=***&x=1" in line["message"]


@pytest.fixture
def stderr_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """configure_logging as serve runs it, writing to a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("info")
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@contextmanager
def _as_served() -> Iterator[None]:
    """The root logger with only the handler configure_logging installed, as in a serve worker
    (pytest adds its capturing handlers to the root for each test, which rule the direct line out)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [handler for handler in saved if isinstance(handler, JsonLineHandler)]
    try:
        yield
    finally:
        root.handlers[:] = saved


_OUTCOMES = [Outcome(channel="wecom", msg_type="text"),
             Outcome("rejected", -40001, "msg_signature does not match \u2028 the body", "oa"),
             Outcome(channel="robot", tenant="acme", plaintext="<xml>\n</xml>")]


@pytest.mark.parametrize("outcome", _OUTCOMES)
def test_an_access_line_written_without_a_record_is_the_line_a_record_makes(
        stderr_lines: io.StringIO, outcome: Outcome) -> None:
    status = 403 if outcome.code else 200
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(factory(*args, **kwargs))
        return made[-1]

    logging.setLogRecordFactory(counting)
    try:
        with _as_served():
            log_request("POST", "/wecom/app", status, outcome, time.perf_counter())
    finally:
        logging.setLogRecordFactory(factory)
    assert made == []  # the JSON stderr handler alone would write it: no LogRecord was made
    direct = stderr_lines.getvalue()
    # a second handler on the way: now the line has to go through a LogRecord
    seen: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = seen.append  # type: ignore[method-assign]
    ACCESS_LOG.addHandler(capture)
    try:
        log_request("POST", "/wecom/app", status, outcome, time.perf_counter())
    finally:
        ACCESS_LOG.removeHandler(capture)
    assert len(seen) == 1
    through_record = stderr_lines.getvalue()[len(direct):]
    assert direct.count("\n") == through_record.count("\n") == 1
    first, second = json.loads(direct), json.loads(through_record)
    assert first.pop("latency_ms") >= 0 and second.pop("latency_ms") >= 0
    assert first == second
    assert first["level"] == ("warning" if outcome.code else "info") and first["logger"] == "wxcallback.access"
    assert "\u2028" not in direct


def test_a_filter_or_level_on_the_way_is_obeyed(stderr_lines: io.StringIO) -> None:
    refuse = logging.Filter("nothing.of.ours")  # passes no record of wxcallback.access
    ACCESS_LOG.addFilter(refuse)
    try:
        with _as_served():
            log_request("POST", "/wecom/app", 200, _OUTCOMES[0], time.perf_counter())
    finally:
        ACCESS_LOG.removeFilter(refuse)
    assert stderr_lines.getvalue() == ""
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, JsonLineHandler)
    handler.setLevel(logging.WARNING)
    with _as_served():
        log_request("POST", "/wecom/app", 200, _OUTCOMES[0], time.perf_counter())
        assert stderr_lines.getvalue() == ""
        log_request("POST", "/wecom/app", 403, _OUTCOMES[1], time.perf_counter())
    assert json.loads(stderr_lines.getvalue())["code"] == -40001


def test_a_stream_that_refuses_the_line_is_reported_as_for_a_record(
        stderr_lines: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    stderr_lines.close()  # writing raises ValueError now
    with _as_served():
        log_request("POST", "/wecom/app", 200, _OUTCOMES[0], time.perf_counter())  # no exception escapes
    assert "--- Logging error ---" in capsys.readouterr().err


@pytest.mark.parametrize("outcome", [
    *_OUTCOMES,
    Outcome("handler_error", 0, 'a "quoted" \\ detail\twith\x01control, 中文 and \ud800', "wecom", "event/click"),
    Outcome("duplicate", -40005, "", "oa", "text", None, "租户"),
])
@pytest.mark.parametrize("via", ["url", "websocket"])
def test_an_access_line_is_what_json_dumps_writes_of_its_record(
        stderr_lines: io.StringIO, outcome: Outcome, via: str) -> None:
    status = 403 if outcome.code else 200
    with _as_served():
        if via == "url":
            log_request("POST", "/wecom/app?x=\"1\"", status, outcome, time.perf_counter())
        else:
            log_callback("aibot_msg_callback", "req-\u00e9", outcome, time.perf_counter())
    line = stderr_lines.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    latency = json.loads(line)["latency_ms"]
    head: dict[str, Any] = ({"channel": outcome.channel, "method": "POST", "path": "/wecom/app?x=\"1\"",
                             "status": status} if via == "url" else
                            {"channel": outcome.channel, "transport": "websocket", "cmd": "aibot_msg_callback",
                             "req_id": "req-\u00e9"})
    record = {**head, "outcome": outcome.outcome, "code": outcome.code, "latency_ms": latency}
    for name in ("tenant", "msg_type", "detail"):
        if getattr(outcome, name):
            record[name] = getattr(outcome, name)
    if outcome.plaintext is not None:
        record["plaintext"] = outcome.plaintext
    level = json.loads(line)["level"]
    assert level == ("error" if outcome.outcome == "handler_error" else
                     "warning" if (status >= 400 if via == "url" else outcome.outcome == "rejected") else "info")
    opening = f'{{"level": "{level}", "logger": "wxcallback.access", '
    expected = opening + json.dumps(record, ensure_ascii=False)[1:]
    assert line[:-1] == expected.replace("\u2028", "\\u2028")
