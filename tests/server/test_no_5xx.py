"""Whatever arrives at the HTTP layer, the answer is never a 5xx (with a working store)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.platform_requests import APPID, KEY, TOKEN, Platform, oa_text, robot_text, wecom_text
from tests.server.test_pipeline import CHANNELS
from wxcallback.server.runtime import CallbackServer
from wxcallback.server.config import parse_config
from wxcallback.server.stores import MemoryStore

CONFIG = parse_config({"server": {"max_body_bytes": 4096}, "channels": CHANNELS})
PATHS = [c["path"] for c in CHANNELS.values()] + ["/", "/x", "//oa", "/oa/"]
_LOOP = asyncio.new_event_loop()
_SERVER = CallbackServer(CONFIG, MemoryStore())

keys = st.sampled_from(["msg_signature", "signature", "timestamp", "nonce", "echostr", "encrypt_type", "openid"])
values = st.one_of(st.text(max_size=40), st.sampled_from(["aes", "raw", "1700000000", "", "%", "+", "%ZZ"]))
queries = st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(keys, values), max_size=8).map(lambda pairs: urlencode(pairs).encode()),
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=600).map(str.encode),
    st.sampled_from([oa_text("x").encode(), wecom_text("y").encode(), robot_text("z").encode(),
                     b"<xml><Encrypt>QUJD</Encrypt></xml>", b'{"encrypt": "QUJD"}', b"<xml>" * 300]),
)


def _respond(method: str, path: str, query: bytes, body: bytes) -> int:
    response = _LOOP.run_until_complete(_SERVER.respond(method, path, query, body, len(body)))
    return response.status


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "HEAD", "PUT"]), path=st.sampled_from(PATHS), query=queries,
       body=bodies)
def test_random_requests_never_get_a_5xx(method: str, path: str, query: bytes, body: bytes) -> None:
    assert _respond(method, path, query, body) < 500


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_signed_requests_with_mutated_bodies_never_get_a_5xx(data: st.DataObject) -> None:
    platform, path, make = data.draw(st.sampled_from([("wecom-app", "/wecom", wecom_text),
                                                      ("wecom-robot", "/robot", robot_text),
                                                      ("official-account", "/oa", oa_text)]))
    side = Platform(platform, path, receive_id="" if platform == "wecom-robot" else APPID, token=TOKEN, key=KEY)
    url, body = side.callback(make(data.draw(st.text(max_size=50))))
    position = data.draw(st.integers(0, max(len(body) - 1, 0)))
    mutated = body[:position] + data.draw(st.binary(max_size=8)) + body[position + 1:]
    path_part, _, query = url.partition("?")
    assert _respond("POST", path_part, query.encode(), mutated) < 500
