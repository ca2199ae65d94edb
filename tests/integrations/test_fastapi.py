"""The server's ASGI app mounted in FastAPI, under uvicorn on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.integrations import handlers
from tests.integrations.support import (
    MAX_BODY,
    ROBOT,
    WECOM,
    AsgiServer,
    asgi_server,
    config_mapping,
    run_suite,
    send_text_with_retries,
    stream_refreshes,
)
from tests.platform_requests import Platform, robot_text
from wxcallback.integrations.asgi import mount, server_of
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config


def _app_with_lifespan(events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("app started")
        yield
        events.append("app stopped")

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    def home() -> dict[str, str]:
        return {"app": "mine"}

    return app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    events: list[str] = []
    app = _app_with_lifespan(events)
    folder = tmp_path_factory.mktemp("fastapi")
    mount(app, "/wechat", config_mapping(f"sqlite:///{folder}/wxcallback.db"))
    with asgi_server(app) as server:
        yield server.url, events


def test_wecom_app_channel_passes_the_simulator_suite(served: tuple[str, Any]) -> None:
    report = run_suite(served[0] + "/wechat/wecom", WECOM)
    assert report.passed, report.table()


def test_robot_stream_finishes_through_refresh_polls(served: tuple[str, Any]) -> None:
    report = run_suite(served[0] + "/wechat/robot", ROBOT)
    assert report.passed, report.table()
    assert stream_refreshes(report) >= 1


def test_retry_is_answered_from_the_dedup_cache_and_the_handler_runs_once(served: tuple[str, Any]) -> None:
    exchange = send_text_with_retries(served[0] + "/wechat/wecom", WECOM, "fastapi-dedup", retries=3)
    assert exchange.passed, exchange.reason
    assert all(r.reply == exchange.reply for r in exchange.resends)
    assert handlers.calls["fastapi-dedup"] == 1


def test_oversized_body_is_refused_with_413(served: tuple[str, Any]) -> None:
    body = b"<xml><Encrypt>" + b"A" * MAX_BODY + b"</Encrypt></xml>"
    answer = httpx.post(served[0] + "/wechat/wecom?msg_signature=x&timestamp=1&nonce=n", content=body)
    assert answer.status_code == 413 and answer.content == b"body too large"


def test_healthz_under_the_mount_and_the_apps_own_routes_and_lifespan(served: tuple[str, Any]) -> None:
    url, events = served
    health = httpx.get(url + "/wechat/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "channels": ["wecom", "robot"]}
    assert httpx.get(url + "/").json() == {"app": "mine"}
    assert events == ["app started"]


def _start_a_stream(url: str, path: str, content: str) -> None:
    side = Platform("wecom-robot", path, receive_id="")
    query, data = side.callback(robot_text(content))
    answer = httpx.post(url + query, content=data)
    assert answer.status_code == 200
    reply = json.loads(side.open_reply(answer.content, side.last_nonce))
    assert reply["msgtype"] == "stream" and reply["stream"]["finish"] is False


def test_mount_stops_the_server_gracefully_with_the_app() -> None:
    events: list[str] = []
    app = _app_with_lifespan(events)
    callbacks = mount(app, "/wechat", config_mapping("memory://"))
    server = AsgiServer(app)
    assert server_of(callbacks).pipeline is not None  # started with the app, before any request
    _start_a_stream(server.url, "/wechat/robot", "fastapi-shutdown")
    server.stop()
    assert handlers.streams_finished["fastapi-shutdown"] == 1  # the stream ran to its end first
    assert server_of(callbacks).pipeline is None
    assert events == ["app started", "app stopped"]


def test_plain_mount_with_a_lifespan_that_stops_the_sub_app() -> None:
    # The pattern in the docs for people who mount create_app themselves.
    callbacks = create_app(parse_config(config_mapping("memory://")))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await callbacks.state.wxcallback.stop()

    app = FastAPI(lifespan=lifespan)
    app.mount("/hooks", callbacks)
    server = AsgiServer(app)
    _start_a_stream(server.url, "/hooks/robot", "plain-mount")
    server.stop()
    assert handlers.streams_finished["plain-mount"] == 1
    assert callbacks.state.wxcallback.pipeline is None
