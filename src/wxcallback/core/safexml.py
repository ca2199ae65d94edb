"""XML parsing for untrusted callback bodies: expat with DTDs and entities refused.

Callback XML comes from the internet. A document type declaration is the door to
entity expansion ("billion laughs") and external entities, and WeChat never sends
one, so any DOCTYPE ends the parse with a ParseError (-40002). Without a DTD only the
five predefined entities exist; expat rejects any other reference as undefined.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn
from xml.parsers import expat

from .errors import ParseError

__all__ = ["FLAT_CHILD", "MAX_DEPTH", "XmlElement", "new_parser", "parse_flat", "parse_xml", "run_parser"]

MAX_DEPTH = 64


class _Refused(Exception):
    """Raised inside an expat handler to stop the parse; turned into ParseError."""


def _refuse_doctype(*_: Any) -> NoReturn:
    raise _Refused("a DOCTYPE is not allowed in callback XML (DTDs and entities are refused)")


def _refuse_entity(*_: Any) -> NoReturn:
    raise _Refused("entity declarations are not allowed in callback XML")


def new_parser() -> Any:
    """A fresh expat parser that refuses DTDs, entity declarations and external entities."""
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    return parser


def run_parser(parser: Any, data: str | bytes, what: str = "body") -> None:
    """Feed a whole document to ``parser``; every failure becomes a ParseError."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(f"{what} is not encodable as UTF-8") from None
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ParseError(f"{what}: {exc}") from None
    except expat.ExpatError as exc:
        raise ParseError(f"{what} is not well-formed XML: {expat.ErrorString(exc.code)} "
                         f"at line {exc.lineno}, column {exc.offset}") from None
    except LookupError as exc:
        # expat asks Python's codec registry for any encoding it does not know itself;
        # <?xml encoding="UTF-6"?> or "base64" in the declaration ends there.
        raise ParseError(f"{what} declares an encoding that cannot be used: {exc}") from None
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ParseError(f"{what} cannot be parsed as XML: {exc}") from None


@dataclass(slots=True)
class XmlElement:
    """An element: its tag, the text directly inside it, attributes and child elements."""

    tag: str
    text: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    children: list[XmlElement] = field(default_factory=list)

    def find(self, tag: str) -> XmlElement | None:
        """The first child element named ``tag``."""
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> list[XmlElement]:
        return [child for child in self.children if child.tag == tag]

    def __iter__(self) -> Iterator[XmlElement]:
        return iter(self.children)


class _TreeBuilder:
    __slots__ = ("stack", "root", "texts", "max_depth")

    def __init__(self, max_depth: int) -> None:
        self.stack: list[XmlElement] = []
        self.texts: list[list[str]] = []
        self.root: XmlElement | None = None
        self.max_depth = max_depth

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if len(self.stack) >= self.max_depth:
            raise _Refused(f"elements are nested deeper than {self.max_depth} levels")
        element = XmlElement(tag, "", attributes)
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)
        self.texts.append([])

    def end(self, tag: str) -> None:
        element = self.stack.pop()
        element.text = "".join(self.texts.pop())

    def data(self, text: str) -> None:
        if self.texts:
            self.texts[-1].append(text)


def parse_xml(data: str | bytes, *, max_depth: int = MAX_DEPTH, what: str = "body") -> XmlElement:
    """Parse a whole document into an XmlElement tree; ParseError (-40002) on any problem.

    CDATA sections and plain text are the same to the caller (vector V3 has no CDATA).
    """
    builder = _TreeBuilder(max_depth)
    parser = new_parser()
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    run_parser(parser, data, what)
    if builder.root is None:  # pragma: no cover - expat reports "no element found" first
        raise ParseError(f"{what} has no root element")
    return builder.root


# Flat documents, the shape of nearly every callback: <xml> holding only
# <Name>text</Name> or <Name><![CDATA[text]]></Name> children, each name once. Read by one
# regex per child instead of an expat parser with a Python call per event. Anything
# outside this subset (declaration, BOM, DOCTYPE, attributes, entities, comments,
# nesting, repeated names, CR, characters XML forbids, "]" in plain text) returns None
# and goes to expat, so both readings agree wherever this one answers (a property test
# checks it).
_FORBIDDEN = "\\x00-\\x08\\x0b-\\x1f\\ud800-\\udfff\\ufffe\\uffff"
# One child: group 1 its name, group 2 its CDATA text, group 3 its plain text.
FLAT_CHILD = (
    r"[ \t\r\n]*<([A-Za-z_][A-Za-z0-9_]*)>"
    rf"(?:<!\[CDATA\[((?:[^\]{_FORBIDDEN}]|\](?!\]>))*)\]\]>|([^<&\]{_FORBIDDEN}]*))"
    r"</\1>"
)
# parse_flat reads FLAT_CHILD in steps: a regex for the name and for plain text, a find for
# the end of a CDATA section. The CDATA group of FLAT_CHILD tries two alternatives per
# character, ~30 ns each: 2 ms for a 64 KB message, where find and one search take ~20 µs.
_FLAT_NAME = re.compile(r"[ \t\r\n]*<([A-Za-z_][A-Za-z0-9_]*)>")
_FLAT_PLAIN = re.compile(rf"[^<&\]{_FORBIDDEN}]*")
_FLAT_UNSAFE = re.compile(rf"[{_FORBIDDEN}]")
# The usual child in one match: CDATA holding no "]" or plain text, then its end tag. A child
# this does not match (a "]" in its CDATA, a mismatched end tag) is read in the steps below,
# which decide it.
_FLAT_USUAL = re.compile(
    r"[ \t\r\n]*<([A-Za-z_][A-Za-z0-9_]*)>"
    rf"(?:<!\[CDATA\[([^\]{_FORBIDDEN}]*)\]\]>|([^<&\]{_FORBIDDEN}]*))"
    r"</\1>"
)
_FLAT_OPEN = re.compile(r"[ \t\r\n]*<xml>")
_FLAT_CLOSE = re.compile(r"[ \t\r\n]*</xml>[ \t\r\n]*")


def parse_flat(data: str | bytes) -> dict[str, str] | None:
    """The children of a flat ``<xml>`` document as a dict, or None to let expat decide."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    opened = _FLAT_OPEN.match(data)
    if opened is None:
        return None
    fields: dict[str, str] = {}
    pos = opened.end()
    while True:
        usual = _FLAT_USUAL.match(data, pos)
        if usual is not None:
            name, cdata, plain = usual.groups()
            if name in fields:
                return None  # repeated elements become a list: expat's reading
            # plain text is trimmed as expat's reading trims it (whitespace around CDATA is layout)
            fields[name] = cdata if cdata is not None else plain.strip(" \t\n")
            pos = usual.end()
            continue
        child = _FLAT_NAME.match(data, pos)
        if child is None:
            break
        name = child.group(1)
        if name in fields:
            return None  # repeated elements become a list: expat's reading
        pos = child.end()
        if data.startswith("<![CDATA[", pos):
            end = data.find("]]>", pos + 9)  # FLAT_CHILD's CDATA ends at the first "]]>" too
            if end < 0 or _FLAT_UNSAFE.search(data, pos + 9, end) is not None:
                return None
            fields[name] = data[pos + 9 : end]
            pos = end + 3
        else:
            text = _FLAT_PLAIN.match(data, pos)
            assert text is not None  # the class may match nothing, never fail
            # plain text is trimmed as expat's reading trims it (whitespace around CDATA is layout)
            fields[name] = text.group().strip(" \t\n")
            pos = text.end()
        if not data.startswith(f"</{name}>", pos):
            return None
        pos += len(name) + 3
    if _FLAT_CLOSE.fullmatch(data, pos) is None:
        return None
    return fields
