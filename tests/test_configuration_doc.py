"""docs/configuration.md against the configuration parser: same keys, types and defaults.

The keys the parser accepts are read from its own refusal of an unknown key ("allowed: …"),
so a key added to the parser without a line in the doc (or the reverse) fails here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.platform_requests import APPID, KEY, TOKEN
from wxcallback import WXCallbackError
from wxcallback.server.config import ConfigError, parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
CHANNEL = {"path": "/w", "platform": "official-account", "token": TOKEN, "encoding_aes_key": KEY,
           "receive_id": APPID}
# A value of the wrong type for each documented type.
WRONG = {"string": 12345, "integer": "8000", "number": "4", "boolean": "yes", "list of strings": "x"}


def _table(section: str) -> dict[str, dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"### `{section}`\n", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = {"type": cells[1], "default": cells[2], "meaning": cells[3]}
    return rows


SERVER, CHANNELS = _table("[server]"), _table("[channels.NAME]")


def _allowed(data: dict[str, Any], where: str) -> set[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert message.startswith(f"{where}.zz_not_a_key: unknown key"), message
    return set(re.search(r"\(allowed: ([^)]*)\)", message).group(1).split(", "))  # type: ignore[union-attr]


def test_the_server_keys_are_the_parsers() -> None:
    parsed = _allowed({"server": {"zz_not_a_key": 1}, "channels": {"c": CHANNEL}}, "server")
    assert set(SERVER) == parsed


def test_the_channel_keys_are_the_parsers() -> None:
    parsed = _allowed({"channels": {"c": {**CHANNEL, "zz_not_a_key": 1}}}, "channels.c")
    assert set(CHANNELS) == parsed


def test_every_row_has_a_known_type_and_a_meaning() -> None:
    for key, row in {**SERVER, **CHANNELS}.items():
        assert row["type"] in WRONG, key
        assert len(row["meaning"]) > 20, key


def _literal(cell: str) -> Any:
    """The TOML value of a default cell such as `"sqlite:///wxcallback.db"` or `300.0`, else None."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    return tomllib.loads(f"v = {match.group(1)}")["v"] if match else None


@pytest.mark.parametrize("key", sorted(SERVER))
def test_server_defaults_and_types_are_as_documented(key: str) -> None:
    row = SERVER[key]
    config = parse_config({"channels": {"c": CHANNEL}})
    assert getattr(config, key) == _literal(row["default"])
    with pytest.raises(ConfigError, match=rf"^server\.{key}: "):
        parse_config({"server": {key: WRONG[row["type"]]}, "channels": {"c": CHANNEL}})


def _skips_receive_id_check_by_default() -> bool:
    (channel,) = parse_config({"channels": {"c": CHANNEL}}).channels
    try:
        channel.receive_id.check("wwAnotherCorp")
    except WXCallbackError:
        return False
    return True


def _requires_encryption_by_default() -> bool:
    try:
        parse_config({"channels": {"c": {**CHANNEL, "modes": ["plaintext", "safe"]}}})
    except ConfigError:
        return True
    return False


# Keys that set no attribute of their own: their default is seen in what the channel does.
_NOT_ATTRIBUTES = {"skip_receive_id_check": _skips_receive_id_check_by_default,
                   "require_encryption": _requires_encryption_by_default}


@pytest.mark.parametrize("key", sorted(CHANNELS))
def test_channel_defaults_and_types_are_as_documented(key: str) -> None:
    row = CHANNELS[key]
    base = {k: v for k, v in CHANNEL.items() if k != key}
    if key in ("receive_ids", "skip_receive_id_check"):
        base.pop("receive_id")  # only one of the three may be set
    default = _literal(row["default"])
    if row["default"].startswith("required"):
        with pytest.raises(ConfigError, match=rf"^channels\.c\.{key}: "):
            parse_config({"channels": {"c": base}})
    elif key in _NOT_ATTRIBUTES:
        assert _NOT_ATTRIBUTES[key]() == default, key
    elif default is not None:
        (channel,) = parse_config({"channels": {"c": CHANNEL}}).channels
        value = getattr(channel, key)
        if key == "modes":
            value = sorted(mode.value for mode in value)
        if key == "previous_keys":
            value = list(value)
        assert value == default, key
    with pytest.raises(ConfigError, match=rf"^channels\.c\.{key}: "):
        parse_config({"channels": {"c": {**base, key: WRONG[row["type"]]}}})


def test_the_example_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text(encoding="utf-8")
    example = text.split("### Example\n", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    env = {name: KEY if "KEY" in name else TOKEN for name in re.findall(r"\$\{(\w+)\}", example)}
    config = parse_config(tomllib.loads(example), env)
    assert [c.name for c in config.channels] == ["shop", "helpdesk"]


# A channel in which each key that can name an environment variable means something.
_EXPANDS_IN = {
    "app_secret": {**CHANNEL, "platform": "official-account"},
    "corp_secret": {**CHANNEL, "platform": "wecom-app", "agent_id": 1000002},
    "suite_id": {**CHANNEL, "platform": "wecom-suite", "path": "/suite/{corpid}", "instruction_path": "/suite/i",
                 "suite_id": "ww3016e68348c15acd"},
    **{key: {"platform": "wecom-robot", "transport": "websocket", "bot_id": "bot", "secret": "s"}
       for key in ("bot_id", "secret", "url")},
}


def _expanded_keys() -> list[str]:
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    sentence = text.split('String values may name environment variables, `"${NAME}"`:', 1)[1]
    return re.findall(r"`([a-z_.]+)`", sentence.split(" are expanded at start", 1)[0])


@pytest.mark.parametrize("key", _expanded_keys())
def test_the_keys_said_to_expand_variables_do(key: str) -> None:
    unset = "${WXCALLBACK_DOC_UNSET}"
    if key == "server.store":
        data: dict[str, Any] = {"server": {"store": unset}, "channels": {"c": CHANNEL}}
    else:
        channel = dict(_EXPANDS_IN.get(key, CHANNEL))
        if key == "receive_ids":
            channel.pop("receive_id")
        channel[key] = [unset] if CHANNELS[key]["type"] == "list of strings" else unset
        data = {"channels": {"c": channel}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    assert str(info.value).endswith(": environment variable WXCALLBACK_DOC_UNSET is not set"), str(info.value)


@pytest.mark.parametrize("key", sorted(k for k, row in CHANNELS.items()
                                       if row["type"] in ("string", "list of strings") and k not in _expanded_keys()))
def test_the_other_string_keys_take_a_variable_reference_literally(key: str) -> None:
    channel = dict(CHANNEL)
    channel[key] = ["${WXCALLBACK_DOC_UNSET}"] if CHANNELS[key]["type"] == "list of strings" else "${WXCALLBACK_DOC_UNSET}"
    try:
        parse_config({"channels": {"c": channel}}, {})
    except ConfigError as error:
        assert "environment variable" not in str(error), key
