"""A long-connection channel (transport = "websocket"): its keys, defaults and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform_requests import KEY, TOKEN
from wxcallback.server.config import ConfigError, Transport, parse_config


def _robot(**changes: Any) -> dict[str, Any]:
    channel = {"platform": "wecom-robot", "transport": "websocket", "bot_id": "bot-1", "secret": "s3cr3t-value"}
    channel.update(changes)
    return {"channels": {"assistant": {k: v for k, v in channel.items() if v is not None}}}


def test_a_websocket_channel_needs_only_bot_id_and_secret_and_has_the_sdk_defaults() -> None:
    (channel,) = parse_config(_robot()).channels
    assert channel.transport is Transport.WEBSOCKET and channel.websocket
    assert (channel.bot_id, channel.secret) == ("bot-1", "s3cr3t-value")
    assert channel.url == "wss://openws.work.weixin.qq.com"
    assert (channel.heartbeat_interval, channel.missed_pings, channel.ack_timeout) == (30.0, 2, 5.0)
    assert (channel.reconnect_delay, channel.reconnect_max_delay, channel.max_subscribe_failures) == (1.0, 30.0, 5)
    assert channel.lease_ttl == 15.0 and channel.deadline == 4.0
    assert "s3cr3t-value" not in repr(channel)


def test_bot_id_secret_and_url_take_values_from_the_environment() -> None:
    data = _robot(bot_id="${BOT}", secret="${SECRET}", url="ws://${HOST}:8765")
    (channel,) = parse_config(data, {"BOT": "b", "SECRET": "s", "HOST": "127.0.0.1"}).channels
    assert (channel.bot_id, channel.secret, channel.url) == ("b", "s", "ws://127.0.0.1:8765")
    with pytest.raises(ConfigError, match=r"^channels\.assistant\.secret: environment variable SECRET is not set$"):
        parse_config(data, {"BOT": "b", "HOST": "h"})


@pytest.mark.parametrize("key, value", [("path", "/robot"), ("token", TOKEN), ("encoding_aes_key", KEY),
                                        ("receive_id", ""), ("previous_keys", []), ("replay_window", 60)])
def test_the_callback_url_keys_are_refused_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^channels\.assistant\.{key}: a long-connection channel"):
        parse_config(_robot(**{key: value}))


@pytest.mark.parametrize("changes, message", [
    ({"bot_id": None}, r"channels\.assistant\.bot_id: required"),
    ({"secret": ""}, r"channels\.assistant\.secret: must not be empty"),
    ({"url": "https://openws.work.weixin.qq.com"}, r"channels\.assistant\.url: must be a wss://"),
    ({"heartbeat_interval": 0}, r"channels\.assistant\.heartbeat_interval: must be between"),
    ({"missed_pings": 0}, r"channels\.assistant\.missed_pings: must be between"),
    ({"reconnect_delay": 5, "reconnect_max_delay": 2}, r"channels\.assistant\.reconnect_max_delay \(2 s\)"),
    ({"transport": "grpc"}, r"channels\.assistant\.transport: must be http or websocket"),
    ({"handler": "x:y", "forward": "http://127.0.0.1:9/"}, r"channels\.assistant: set either handler or forward"),
])
def test_bad_websocket_settings_are_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(_robot(**changes))
    assert "s3cr3t-value" not in str(info.value)


def test_only_a_smart_robot_has_a_long_connection() -> None:
    data = _robot(platform="wecom-app")
    with pytest.raises(ConfigError, match=r"^channels\.assistant\.transport: only wecom-robot channels"):
        parse_config(data)


def test_websocket_keys_are_refused_on_a_callback_url_channel() -> None:
    channel = {"path": "/r", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY, "bot_id": "b"}
    with pytest.raises(ConfigError, match=r"^channels\.r\.bot_id: only a long-connection channel"):
        parse_config({"channels": {"r": channel}})
    del channel["bot_id"]
    (http,) = parse_config({"channels": {"r": channel}}).channels
    assert http.transport is Transport.HTTP and not http.websocket


def test_one_bot_cannot_have_two_channels_and_websocket_channels_sit_beside_urls() -> None:
    data = _robot()
    data["channels"]["again"] = dict(data["channels"]["assistant"])
    with pytest.raises(ConfigError, match=r"^channels\.again\.bot_id: 'bot-1' is already used by channels\.assistant"):
        parse_config(data)
    data = _robot()
    data["channels"]["url"] = {"path": "/r", "platform": "wecom-robot", "token": TOKEN, "encoding_aes_key": KEY}
    data["channels"]["other"] = {**data["channels"]["assistant"], "bot_id": "bot-2"}
    assert [c.websocket for c in parse_config(data).channels] == [True, False, True]
