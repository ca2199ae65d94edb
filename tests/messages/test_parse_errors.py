"""Malformed plaintext always gives MessageParseError (a ParseError, -40002), never a raw exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxcallback.core.errors import ErrorCode, ParseError, WXCallbackError
from wxcallback.messages import Message, MessageParseError, Platform, UnknownPlatformError, parse_message

PLATFORMS = list(Platform)


@pytest.mark.parametrize(("plaintext", "platform", "reason"), [
    ("", Platform.OFFICIAL_ACCOUNT, "empty"),
    ("   ", Platform.WECOM_APP, "empty"),
    ("hello", Platform.OFFICIAL_ACCOUNT, "neither XML nor a JSON object"),
    ("<xml><MsgType>text</MsgType>", Platform.OFFICIAL_ACCOUNT, "not well-formed"),
    ("<xml><Content>hi</Content></xml>", Platform.OFFICIAL_ACCOUNT, "no MsgType"),
    ("<xml><MsgType><a>b</a></MsgType></xml>", Platform.WECOM_APP, "MsgType must be non-empty text"),
    ("<xml><MsgType>  </MsgType></xml>", Platform.WECOM_APP, "MsgType must be non-empty text"),
    ("[1, 2]", Platform.WECOM_ROBOT, "a robot callback must be a JSON object"),
    ('{"msgid": "1"}', Platform.WECOM_ROBOT, "no msgtype"),
    ('{"msgtype": 5}', Platform.WECOM_ROBOT, "msgtype must be non-empty text"),
    ("<xml><MsgType>text</MsgType></xml>", Platform.WECOM_ROBOT, "must be a JSON object"),
    ('{"MsgType": "text", "n": NaN}', Platform.OFFICIAL_ACCOUNT, "not valid JSON"),
    (b'{"msgtype": "\xff"}', Platform.WECOM_ROBOT, "not UTF-8"),
    (b"<xml><MsgType>\xff</MsgType></xml>", Platform.OFFICIAL_ACCOUNT, "not well-formed"),
])
def test_malformed_plaintext_gives_a_clear_parse_error(plaintext: str | bytes, platform: Platform,
                                                       reason: str) -> None:
    with pytest.raises(MessageParseError, match=reason) as caught:
        parse_message(plaintext, platform)
    assert caught.value.code == ErrorCode.PARSE_XML_ERROR


def test_an_unknown_platform_is_a_library_error() -> None:
    with pytest.raises(UnknownPlatformError, match="wecom-robot"):
        parse_message("<xml/>", "wechat")


def test_a_non_text_input_is_refused() -> None:
    with pytest.raises(MessageParseError, match="str or bytes"):
        parse_message(42, Platform.WECOM_APP)  # type: ignore[arg-type]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><MsgType>text</MsgType><Content>&lol3;</Content></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><MsgType>text</MsgType><Content>&xxe;</Content></xml>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY,
                                      '<!DOCTYPE xml><xml><MsgType>text</MsgType></xml>'])
def test_dtds_and_entities_are_refused(document: str) -> None:
    with pytest.raises(MessageParseError, match="DOCTYPE"):
        parse_message(document, Platform.OFFICIAL_ACCOUNT)


def test_an_undeclared_entity_is_refused() -> None:
    with pytest.raises(MessageParseError):
        parse_message("<xml><MsgType>text</MsgType><Content>&xxe;</Content></xml>", Platform.OFFICIAL_ACCOUNT)


def test_deep_json_is_refused_without_recursion_error() -> None:
    for depth in (65, 5000, 200_000):
        body = '{"msgtype": "text", "x": ' + "[" * depth + "]" * depth + "}"
        with pytest.raises(MessageParseError, match="nested deeper"):
            parse_message(body, Platform.WECOM_ROBOT)


def test_deep_xml_is_refused() -> None:
    body = "<xml><MsgType>text</MsgType>" + "<a>" * 100 + "</a>" * 100 + "</xml>"
    with pytest.raises(MessageParseError, match="nested deeper"):
        parse_message(body, Platform.OFFICIAL_ACCOUNT)


def _check_outcome(plaintext: str | bytes, platform: Platform) -> None:
    try:
        message = parse_message(plaintext, platform)
    except WXCallbackError as error:
        assert isinstance(error, MessageParseError) and isinstance(error, ParseError)
        return
    assert isinstance(message, Message)
    # every accessor of whatever came back works and exports JSON
    json.dumps(message.to_dict())
    assert isinstance(message.dedup_key, str) and message.dedup_key
    assert isinstance(message.source, str) and isinstance(message.target, str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(PLATFORMS))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes, platform: Platform) -> None:
    _check_outcome(data, platform)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(PLATFORMS))
def test_arbitrary_text_parses_or_fails_cleanly(text: str, platform: Platform) -> None:
    _check_outcome(text, platform)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["msgtype", "MsgType", "msgid", "MsgId", "MsgID", "Event", "event", "from", "aibotid",
                        "CreateTime", "create_time", "stream", "text", "Content", "InfoType", "EventKey",
                        "SelectedItems", "quote", "mixed", "FromUserName", "AgentID"])
MSG_TYPES = st.sampled_from(["text", "image", "voice", "video", "file", "mixed", "stream", "event", "location",
                             "link", "shortvideo", "weird"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS | st.text(max_size=8), JSON_VALUES, max_size=8), MSG_TYPES,
       st.sampled_from(["msgtype", "MsgType", None]), st.sampled_from(PLATFORMS))
def test_arbitrary_json_objects_parse_or_fail_cleanly(fields: dict[str, object], msg_type: str, type_key: str | None,
                                                      platform: Platform) -> None:
    if type_key is not None:
        fields[type_key] = msg_type
    _check_outcome(json.dumps(fields), platform)


XML_NAMES = st.sampled_from(["MsgType", "Event", "EventKey", "Content", "MsgId", "MsgID", "CreateTime", "item",
                             "SelectedItems", "SelectedItem", "OptionIds", "OptionId", "SendPicsInfo", "PicList",
                             "PicMd5Sum", "ScanCodeInfo", "InfoType", "x"])
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=15)


def _element(tag: str, body: str) -> str:
    return f"<{tag}>{body}</{tag}>"


XML_TREES = st.recursive(
    XML_TEXT.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;")),
    lambda inner: st.lists(st.tuples(XML_NAMES, inner), max_size=4).map(
        lambda pairs: "".join(_element(tag, body) for tag, body in pairs)),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(XML_TREES, st.sampled_from(["text", "event", "image", "weird", ""]),
       st.sampled_from(["subscribe", "SCAN", "pic_weixin", "template_card_event", "x"]),
       st.sampled_from(PLATFORMS))
def test_arbitrary_xml_bodies_parse_or_fail_cleanly(body: str, msg_type: str, event: str,
                                                    platform: Platform) -> None:
    _check_outcome(f"<xml><MsgType>{msg_type}</MsgType><Event>{event}</Event>{body}</xml>", platform)
