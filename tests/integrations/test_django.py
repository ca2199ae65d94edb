"""The Django views and URL include, under WSGI (werkzeug) and ASGI (uvicorn) on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integrations import handlers
from tests.integrations.django_project import DJANGO_UPLOAD_LIMIT, configure
from tests.integrations.support import (
    MAX_BODY,
    ROBOT,
    WECOM,
    asgi_server,
    run_suite,
    send_text_with_retries,
    stream_refreshes,
    wsgi_server,
)
from tests.platform_requests import Platform, wecom_text

configure()

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.urls import resolve

# (how Django is served, the prefix of the include it is reached through)
DEPLOYMENTS = [("wsgi", "/wechat"), ("asgi", "/wechat-async")]


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    with wsgi_server(WSGIHandler()) as wsgi, asgi_server(ASGIHandler(), lifespan="off") as asgi:
        yield {"wsgi": wsgi, "asgi": asgi.url}
    for path in ("/wechat/wecom", "/wechat-async/wecom", "/wecom"):
        resolve(path).func.wxcallback.close()


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_wecom_app_channel_passes_the_simulator_suite(urls: dict[str, str], served: str, prefix: str) -> None:
    report = run_suite(urls[served] + prefix + "/wecom", WECOM)
    assert report.passed, report.table()


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_robot_stream_finishes_through_refresh_polls(urls: dict[str, str], served: str, prefix: str) -> None:
    report = run_suite(urls[served] + prefix + "/robot", ROBOT)
    assert report.passed, report.table()
    assert stream_refreshes(report) >= 1


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_retry_is_answered_from_the_dedup_cache_and_the_handler_runs_once(
        urls: dict[str, str], served: str, prefix: str) -> None:
    content = f"django-dedup-{served}"
    exchange = send_text_with_retries(urls[served] + prefix + "/wecom", WECOM, content, retries=3)
    assert exchange.passed, exchange.reason
    assert all(r.reply == exchange.reply for r in exchange.resends)
    assert handlers.calls[content] == 1


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_declared_oversized_body_is_refused_with_413(urls: dict[str, str], served: str, prefix: str) -> None:
    body = b"<xml><Encrypt>" + b"A" * MAX_BODY + b"</Encrypt></xml>"
    answer = httpx.post(urls[served] + prefix + "/wecom?msg_signature=x&timestamp=1&nonce=n", content=body)
    assert answer.status_code == 413 and answer.content == b"body too large"


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_djangos_upload_limit_does_not_cap_callbacks(urls: dict[str, str], served: str, prefix: str) -> None:
    side = Platform("wecom-app", prefix + "/wecom")
    url, data = side.callback(wecom_text("long " * 1000))
    assert DJANGO_UPLOAD_LIMIT < len(data) < MAX_BODY
    answer = httpx.post(urls[served] + url, content=data)
    assert answer.status_code == 200
    assert "echo: long long" in side.open_reply(answer.content, side.last_nonce)


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_healthz_and_metrics_answer_under_the_include(urls: dict[str, str], served: str, prefix: str) -> None:
    health = httpx.get(urls[served] + prefix + "/healthz")
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    assert health.json() == {"status": "ok", "channels": ["wecom", "robot"]}
    metrics = httpx.get(urls[served] + prefix + "/metrics")
    assert metrics.status_code == 200 and b"wxcallback" in metrics.content


@pytest.mark.parametrize("served, prefix", DEPLOYMENTS)
def test_unknown_path_under_the_include_is_answered_by_the_server(
        urls: dict[str, str], served: str, prefix: str) -> None:
    answer = httpx.post(urls[served] + prefix + "/nowhere", content=b"<xml/>")
    assert answer.status_code == 404 and answer.content == b"unknown callback path"


def test_single_view_serves_the_channel_at_the_request_path(urls: dict[str, str]) -> None:
    side = Platform("wecom-app", "/wecom")
    answer = httpx.get(urls["wsgi"] + side.verify_url_request())
    assert answer.status_code == 200 and answer.text == side.expected_echo
    head = httpx.head(urls["wsgi"] + side.verify_url_request())
    assert head.status_code == 200 and head.content == b""
