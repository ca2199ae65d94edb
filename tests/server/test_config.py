"""A bad configuration is refused at start with a line that names the key, and never shows a secret."""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform_requests import APPID, KEY, TOKEN
from wxcallback.server.config import ConfigError, Mode, load_config, parse_config


def _config(**channel: Any) -> dict[str, Any]:
    base = {"path": "/w", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID}
    return {"channels": {"c": {**base, **channel}}}


@pytest.mark.parametrize("changes, key", [
    ({"encoding_aes_key": KEY + "="}, "channels.c.encoding_aes_key"),
    ({"encoding_aes_key": None}, "channels.c.encoding_aes_key"),
    ({"platform": "wechat"}, "channels.c.platform"),
    ({"path": "w"}, "channels.c.path"),
    ({"token": ""}, "channels.c.token"),
    ({"receive_id": None}, "channels.c.receive_id"),
    ({"colour": "blue"}, "channels.c.colour"),
    ({"digest": "md4"}, "channels.c.digest"),
    ({"handler": "no_colon"}, "channels.c.handler"),
    ({"forward": "ftp://x"}, "channels.c.forward"),
    ({"handler": "a:b", "forward": "http://x"}, "channels.c"),
    ({"deadline": 60}, "channels.c.deadline"),
    ({"modes": ["safe"]}, "channels.c.modes"),
    ({"receive_id": APPID, "receive_ids": [APPID]}, "channels.c"),
])
def test_bad_channel_settings_name_the_key(changes: dict[str, Any], key: str) -> None:
    data = _config(**changes)
    channel = data["channels"]["c"]
    for name, value in changes.items():
        if value is None:
            channel.pop(name)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(key)
    assert KEY not in str(info.value) and TOKEN not in str(info.value)


@pytest.mark.parametrize("data, message", [
    (_config(recieve_id=APPID), "channels.c.recieve_id: unknown key; did you mean 'receive_id'?"),
    (_config(encoding_key=KEY), "channels.c.encoding_key: unknown key; did you mean 'encoding_aes_key'?"),
    ({**_config(), "server": {"prot": 8000}}, "server.prot: unknown key; did you mean 'port'?"),
    ({"channel": _config()["channels"]}, "channel: unknown key; did you mean 'channels'?"),
    (_config(platform="wecom-ap"), "channels.c.platform: must be one of component, miniprogram, "
                                   "official-account, signature-only, wecom-app, wecom-robot, wecom-suite, "
                                   "not 'wecom-ap'; did you mean 'wecom-app'?"),
])
def test_a_typo_is_refused_naming_the_closest_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value) == message


def test_an_unknown_key_like_no_other_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"^server\.zz: unknown key \(allowed: app_dir, .*workers\)$"):
        parse_config({**_config(), "server": {"zz": 1}})


def test_secrets_come_from_the_environment() -> None:
    data = _config(token="${WX_TOKEN}", encoding_aes_key="${WX_KEY}")
    config = parse_config(data, {"WX_TOKEN": TOKEN, "WX_KEY": KEY})
    assert config.channels[0].token == TOKEN
    with pytest.raises(ConfigError, match=r"channels.c.encoding_aes_key: environment variable WX_KEY is not set"):
        parse_config(data, {"WX_TOKEN": TOKEN})


def test_a_forward_url_may_come_from_the_environment() -> None:
    data = _config(forward="${BACKEND_URL}")
    (channel,) = parse_config(data, {"BACKEND_URL": "http://127.0.0.1:9000/hook"}).channels
    assert channel.forward == "http://127.0.0.1:9000/hook"
    with pytest.raises(ConfigError) as info:
        parse_config(data, {"BACKEND_URL": "ftp://user:pw@backend/hook"})
    assert str(info.value) == ("channels.c.forward: must be an http:// or https:// URL once its variables are "
                               "expanded, not '${BACKEND_URL}'")


def test_official_account_modes_and_defaults() -> None:
    oa = parse_config({"channels": {"oa": {"path": "/oa", "platform": "official-account", "token": TOKEN,
                                           "modes": ["plaintext"]}}})
    assert oa.channels[0].modes == frozenset({Mode.PLAINTEXT}) and oa.channels[0].crypto() is None
    with pytest.raises(ConfigError, match="channels.oa.require_encryption"):
        parse_config({"channels": {"oa": {"path": "/oa", "platform": "official-account", "token": TOKEN,
                                          "modes": ["plaintext"], "require_encryption": True}}})
    robot = parse_config({"channels": {"r": {"path": "/r", "platform": "wecom-robot", "token": TOKEN,
                                             "encoding_aes_key": KEY}}})
    crypto = robot.channels[0].crypto()
    assert crypto is not None and crypto.receive_id.describe() == "''"  # a robot's receive_id is ""


def test_paths_are_unique_and_a_channel_is_needed() -> None:
    data = _config()
    data["channels"]["d"] = dict(data["channels"]["c"])
    with pytest.raises(ConfigError, match="channels.d.path: '/w' is already used by channels.c"):
        parse_config(data)
    with pytest.raises(ConfigError, match="channels: at least one channel"):
        parse_config({"server": {}})


def test_file_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[channels\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
