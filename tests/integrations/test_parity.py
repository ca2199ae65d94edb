"""Every adapter gives the standalone server's answer: same status, content type and bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest
from flask import Flask

from tests.integrations.django_project import configure
from tests.integrations.support import config_mapping
from tests.platform_requests import Platform, wecom_text
from wxcallback.integrations.flask import make_blueprint
from wxcallback.server.app import create_app
from wxcallback.server.config import parse_config

configure()

from django.test import Client

# (status, content type, body) for (method, path and query, body)
Answer = tuple[int, str, bytes]
Send = Callable[[str, str, bytes], Answer]


@pytest.fixture(scope="module")
def adapters() -> Iterator[dict[str, Send]]:
    flask_app = Flask(__name__)
    blueprint = make_blueprint(config_mapping("memory://"), url_prefix="/wechat")
    flask_app.register_blueprint(blueprint)
    flask_client = flask_app.test_client()
    django_client = Client()
    standalone = create_app(parse_config(config_mapping("memory://")))

    def via_flask(method: str, url: str, body: bytes) -> Answer:
        answer = flask_client.open(url, method=method, data=body)
        return answer.status_code, answer.content_type, answer.get_data()

    def via_django(method: str, url: str, body: bytes) -> Answer:
        answer = django_client.generic(method, url, body, content_type="text/xml")
        return answer.status_code, answer["Content-Type"], answer.content

    def via_starlette(method: str, url: str, body: bytes) -> Answer:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=standalone)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, url.removeprefix("/wechat"), content=body)

        answer = asyncio.run(send())
        return answer.status_code, answer.headers["content-type"], answer.content

    yield {"flask": via_flask, "django": via_django, "starlette": via_starlette}
    blueprint.wxcallback.close()  # type: ignore[attr-defined]


def _requests() -> list[tuple[str, str, str, bytes]]:
    side = Platform("wecom-app", "/wechat/wecom")
    verify = side.verify_url_request()
    url, data = side.callback(wecom_text("parity"))
    return [
        ("verify URL", "GET", verify, b""),
        ("bad signature", "POST", url.replace("msg_signature=", "msg_signature=0"), data),
        ("malformed body", "POST", url, b"<xml><Encrypt>"),
        ("no query", "POST", "/wechat/wecom", data),
        ("doubled query key", "GET", verify + "&nonce=again", b""),
        ("wrong method", "PUT", url, data),
        ("OPTIONS", "OPTIONS", url, b""),
    ]


@pytest.mark.parametrize("name, method, url, body", _requests(), ids=[r[0] for r in _requests()])
def test_adapters_answer_as_the_standalone_app(adapters: dict[str, Send], name: str, method: str, url: str,
                                               body: bytes) -> None:
    expected = adapters["starlette"](method, url, body)
    assert adapters["flask"](method, url, body) == expected
    assert adapters["django"](method, url, body) == expected


def test_a_callback_reply_has_the_same_status_type_and_plaintext_everywhere(adapters: dict[str, Send]) -> None:
    answers = {}
    for name, send in adapters.items():
        side = Platform("wecom-app", "/wechat/wecom")
        url, data = side.callback(wecom_text("same everywhere", msg_id=4242))
        status, content_type, body = send("POST", url, data)
        answers[name] = (status, content_type, side.open_reply(body, side.last_nonce).split("<CreateTime>")[0])
    assert answers["flask"] == answers["django"] == answers["starlette"]
    assert answers["flask"][0] == 200
