"""The log formatter: one JSON object per line, whatever the record."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from wxcallback.server.jsonlog import JsonLineFormatter, redact_url


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
