"""The Flask blueprint, served by werkzeug on loopback and driven by the platform simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from tests.integrations import handlers
from tests.integrations.support import (
    MAX_BODY,
    ROBOT,
    WECOM,
    config_mapping,
    run_suite,
    send_text_with_retries,
    stream_refreshes,
    wsgi_server,
)
from wxcallback.integrations.bridge import BlockingCallbackServer
from wxcallback.integrations.flask import make_blueprint


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, BlockingCallbackServer]]:
    app = Flask(__name__)

    @app.get("/")
    def home() -> str:  # the host app's own routes keep working beside the blueprint
        return "home"

    blueprint = make_blueprint(config_mapping("memory://"), url_prefix="/wechat")
    app.register_blueprint(blueprint)
    bridge: BlockingCallbackServer = blueprint.wxcallback  # type: ignore[attr-defined]
    with wsgi_server(app) as url:
        yield url, bridge
    bridge.close()


def test_wecom_app_channel_passes_the_simulator_suite(served: tuple[str, Any]) -> None:
    report = run_suite(served[0] + "/wechat/wecom", WECOM)
    assert report.passed, report.table()


def test_robot_stream_finishes_through_refresh_polls(served: tuple[str, Any]) -> None:
    report = run_suite(served[0] + "/wechat/robot", ROBOT)
    assert report.passed, report.table()
    assert stream_refreshes(report) >= 1  # the stream kept running between requests


def test_retry_is_answered_from_the_dedup_cache_and_the_handler_runs_once(served: tuple[str, Any]) -> None:
    exchange = send_text_with_retries(served[0] + "/wechat/wecom", WECOM, "flask-dedup", retries=3)
    assert exchange.passed, exchange.reason
    assert len(exchange.resends) == 2 and all(r.reply == exchange.reply for r in exchange.resends)
    assert handlers.calls["flask-dedup"] == 1


def test_oversized_body_is_refused_with_413_whether_declared_or_chunked(served: tuple[str, Any]) -> None:
    url = served[0] + "/wechat/wecom?msg_signature=x&timestamp=1&nonce=n"
    body = b"<xml><Encrypt>" + b"A" * MAX_BODY + b"</Encrypt></xml>"
    declared = httpx.post(url, content=body)
    chunked = httpx.post(url, content=iter([body[:1000], body[1000:]]))
    assert declared.status_code == 413 and declared.content == b"body too large"
    assert chunked.status_code == 413 and "content-length" not in chunked.request.headers


def test_healthz_and_metrics_answer_under_the_prefix(served: tuple[str, Any]) -> None:
    health = httpx.get(served[0] + "/wechat/healthz")
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    assert health.json() == {"status": "ok", "channels": ["wecom", "robot"]}
    metrics = httpx.get(served[0] + "/wechat/metrics")
    assert metrics.status_code == 200 and b"wxcallback" in metrics.content


def test_host_app_routes_and_unknown_paths_are_left_to_flask(served: tuple[str, Any]) -> None:
    assert httpx.get(served[0] + "/").text == "home"
    assert httpx.post(served[0] + "/wechat/nowhere", content=b"x").status_code == 404


def test_blueprint_without_health_and_metrics_routes() -> None:
    app = Flask(__name__)
    blueprint = make_blueprint(config_mapping("memory://"), health=False, metrics=False)
    app.register_blueprint(blueprint)
    client = app.test_client()
    assert client.get("/healthz").status_code == 404 and client.get("/metrics").status_code == 404
    assert client.get("/wecom").status_code == 400  # a channel, asked without its signature
    blueprint.wxcallback.close()  # type: ignore[attr-defined]
