"""The flat-document fast path reads what expat reads, wherever it answers."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wxcallback.core.errors import ParseError
from wxcallback.core.safexml import parse_flat
from wxcallback.messages.parser import _load_xml_expat

names = st.sampled_from(["Content", "MsgId", "A", "xml", "Encrypt", "B_2", "Content "])
texts = st.one_of(
    st.sampled_from(["hello", "", "[Smile]", "a]]>b", "x&amp;y", "x&y", "<", "]", "]]", "\r\n", "\n", "\t",
                     "\x00", "\x1f", "\ufffe", "你好", "<![CDATA[", "1409659813", " padded "]),
    st.text(max_size=12),
)


@st.composite
def element(draw: st.DrawFn) -> str:
    name, text = draw(names), draw(texts)
    form = draw(st.sampled_from(["cdata", "plain", "nested", "broken", "empty"]))
    if form == "cdata":
        return f"<{name}><![CDATA[{text}]]></{name}>"
    if form == "plain":
        return f"<{name}>{text}</{name}>"
    if form == "nested":
        return f"<{name}><Inner>{text}</Inner></{name}>"
    if form == "empty":
        return f"<{name}/>"
    return f"<{name}>{text}</{draw(names)}>"


@st.composite
def document(draw: st.DrawFn) -> str:
    spaces = st.sampled_from(["", " ", "\n", "\r\n", "\t", "\u3000"])
    inner = "".join(draw(spaces) + child for child in draw(st.lists(element(), max_size=6)))
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    prefix = draw(st.sampled_from(["", "", "\ufeff", '<?xml version="1.0"?>', "<!--c-->", "<!DOCTYPE xml>"]))
    return f"{prefix}{draw(spaces)}<{root}>{inner}{draw(spaces)}</{root}>{draw(spaces)}"


def _expat(document: str) -> dict[str, object] | None:
    try:
        return _load_xml_expat(document)
    except ParseError:
        return None


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=document())
@example(doc="<xml><Content><![CDATA[[Smile] a ] b]]></Content><MsgId>1</MsgId></xml>")
@example(doc="<xml><A>1</A><A>2</A></xml>")
@example(doc="<xml><A><![CDATA[x]]]]></A></xml>")
def test_fast_path_agrees_with_expat(doc: str) -> None:
    fast = parse_flat(doc)
    if fast is not None:
        assert _expat(doc) == fast
    try:
        encoded = doc.encode()
    except UnicodeEncodeError:
        return
    assert parse_flat(encoded) == fast


def test_fast_path_takes_what_wechat_sends() -> None:
    doc = ("<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\n<FromUserName><![CDATA[o_user]]></FromUserName>\n"
           "<CreateTime>1700000000</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
           "<Content><![CDATA[[Smile] 你好]]></Content>\n<MsgId>1</MsgId>\n</xml>")
    assert parse_flat(doc) == {"ToUserName": "gh_1", "FromUserName": "o_user", "CreateTime": "1700000000",
                               "MsgType": "text", "Content": "[Smile] 你好", "MsgId": "1"}


def _one_regex_reading(data: str) -> dict[str, str] | None:
    """parse_flat as one FLAT_CHILD match per child: the definition the stepwise reading follows."""
    import re

    from wxcallback.core.safexml import FLAT_CHILD

    opened = re.compile(r"[ \t\r\n]*<xml>").match(data)
    if opened is None:
        return None
    fields: dict[str, str] = {}
    pos = opened.end()
    while (child := re.compile(FLAT_CHILD).match(data, pos)) is not None:
        name, cdata, text = child.group(1, 2, 3)
        if name in fields:
            return None
        fields[name] = cdata if cdata is not None else text.strip(" \t\n")
        pos = child.end()
    return fields if re.compile(r"[ \t\r\n]*</xml>[ \t\r\n]*").fullmatch(data, pos) else None


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_the_stepwise_reading_equals_one_regex_per_child(doc: str) -> None:
    assert parse_flat(doc) == _one_regex_reading(doc)


def test_a_64_kb_cdata_is_read_whole() -> None:
    content = "hello ] ]] world " * 4000
    assert parse_flat(f"<xml><Content><![CDATA[{content}]]></Content><MsgId>1</MsgId></xml>") == {
        "Content": content, "MsgId": "1"}
