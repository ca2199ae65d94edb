"""The XML envelope fast path and the expat path accept the same documents, with the same value."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wxcallback.core.envelope import _extract_xml_expat, _extract_xml_fast
from wxcallback.core.errors import ParseError

# Fragments that build envelope-like documents, hostile ones included.
names = st.sampled_from(["Encrypt", "ToUserName", "AgentID", "xml", "A", "Encrypt ", "encrypt"])
texts = st.one_of(
    st.sampled_from(["QUJD", "", "a]]>b", "x&amp;y", "x&y", "<", "]", "\r\n", "\n", "\t", "\x00", "\x1f",
                     "\ufffe", "你好", "]]", "<![CDATA[", "<Encrypt>", "</Encrypt>", "+/=="]),
    st.text(max_size=12),
)


@st.composite
def element(draw: st.DrawFn) -> str:
    name = draw(names)
    text = draw(texts)
    form = draw(st.sampled_from(["cdata", "plain", "nested", "broken"]))
    if form == "cdata":
        return f"<{name}><![CDATA[{text}]]></{name}>"
    if form == "plain":
        return f"<{name}>{text}</{name}>"
    if form == "nested":
        return f"<{name}><Encrypt>{text}</Encrypt></{name}>"
    return f"<{name}>{text}</{draw(names)}>"


@st.composite
def document(draw: st.DrawFn) -> str:
    spaces = st.sampled_from(["", " ", "\n", "\r\n", "\t", "\u3000"])
    children = draw(st.lists(element(), max_size=4))
    if draw(st.booleans()):
        children.insert(draw(st.integers(0, len(children))), "<Encrypt><![CDATA[" + draw(texts) + "]]></Encrypt>")
    inner = "".join(draw(spaces) + child for child in children)
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    prefix = draw(st.sampled_from(["", "", "\ufeff", '<?xml version="1.0"?>', "<!--c-->", "<!DOCTYPE xml>"]))
    return f"{prefix}{draw(spaces)}<{root}>{inner}{draw(spaces)}</{root}>{draw(spaces)}"


def _expat(body: str) -> str | None:
    try:
        return _extract_xml_expat(body)
    except ParseError:
        return None


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=document())
@example(body="<xml><A><![CDATA[<Encrypt>QUJD</Encrypt>]]></A></xml>")
@example(body="<xml><Encrypt>QUJD</Encrypt><Encrypt>QUJD</Encrypt></xml>")
@example(body="<xml><Encrypt><![CDATA[a]]>b]]></Encrypt></xml>")
@example(body="<xml><A>x</A>\n<Encrypt><![CDATA[QUJD]]></Encrypt>\n<B>1</B></xml>")
def test_fast_path_never_disagrees_with_expat(body: str) -> None:
    try:
        data = body.encode()
    except UnicodeEncodeError:
        return  # never reaches the fast path
    fast = _extract_xml_fast(data)
    if fast is not None:
        # Whatever the fast path accepts, expat accepts with the same value.
        assert _expat(body) == fast


def test_fast_path_takes_the_shapes_wechat_sends() -> None:
    for body in (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[QUJD]]></Encrypt>"
        "<AgentID><![CDATA[218]]></AgentID></xml>",
        "<xml>\n<Encrypt><![CDATA[QUJD]]></Encrypt>\n<MsgSignature><![CDATA[ab]]></MsgSignature>\n"
        "<TimeStamp>1</TimeStamp>\n<Nonce><![CDATA[n]]></Nonce>\n</xml>",
        "<xml><Encrypt>QUJD</Encrypt><ToUserName>wx5823bf96d3bd56c7</ToUserName></xml>",
    ):
        assert _extract_xml_fast(body.encode()) == "QUJD"


def test_shapes_already_seen_are_remembered_within_a_bound_and_others_still_checked() -> None:
    from wxcallback.core import envelope

    good = b"<xml><ToUserName><![CDATA[wx1]]></ToUserName><Encrypt><![CDATA[QUJD]]></Encrypt></xml>"
    assert _extract_xml_fast(good) == "QUJD" and _extract_xml_fast(good) == "QUJD"
    # a shape never seen is checked again, however like a remembered one it looks
    assert _extract_xml_fast(good.replace(b"<ToUserName>", b"<ToUserName a='1'>")) is None
    for index in range(envelope._FLAT_AROUND_KEPT * 2):
        body = b"<xml><N%d>x</N%d><Encrypt>QUJD</Encrypt></xml>" % (index, index)
        assert _extract_xml_fast(body) == "QUJD"
    assert len(envelope._FLAT_AROUND) <= envelope._FLAT_AROUND_KEPT
    envelope._FLAT_AROUND.clear()
    long = b"<xml><N>" + b"x" * 1000 + b"</N><Encrypt>QUJD</Encrypt></xml>"
    assert _extract_xml_fast(long) == "QUJD" and not envelope._FLAT_AROUND  # a long shape is not kept
