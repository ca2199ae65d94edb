"""A plaintext whose XML declaration names an unusable encoding is a MessageParseError (-40002)."""

from __future__ import annotations

import pytest

from wxcallback.messages import MessageParseError, Platform, parse_message


@pytest.mark.parametrize("encoding", ["UTF-6", "base64"])
@pytest.mark.parametrize("platform", [Platform.OFFICIAL_ACCOUNT, Platform.WECOM_APP])
def test_parse_message_refuses_an_unusable_declared_encoding(encoding: str, platform: Platform) -> None:
    plaintext = f'<?xml version="1.0" encoding="{encoding}"?><xml><MsgType>text</MsgType></xml>'
    with pytest.raises(MessageParseError) as caught:
        parse_message(plaintext.encode(), platform)
    assert caught.value.code == -40002
