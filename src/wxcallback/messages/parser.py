"""``parse_message``: decrypted plaintext → a typed Message, for any of the three platforms.

Official Accounts and WeCom apps send XML (CDATA or not: the parser does not care);
their JSON variants (mini-program style pushes, WeCom's JSON callback format) use the
same field names and are accepted too. Robots send JSON. Whatever the input, the
result is a Message (a generic one for types without a class) or a MessageParseError.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from wxcallback.core.errors import ParseError
from wxcallback.core.safexml import MAX_DEPTH, new_parser, parse_flat, run_parser

from .base import Message
from .errors import MessageParseError
from .fields import MISSING, lookup
from .platform import Platform
from .official_account import OA_EVENT_CLASSES
from .open_platform import COMPONENT_CLASSES, ComponentInstruction
from .robot import ROBOT_EVENT_CLASSES, ROBOT_MESSAGE_CLASSES, RobotGenericEvent, RobotGenericMessage
from .wecom import INSTRUCTION_CLASSES, WECOM_EVENT_CLASSES, SuiteInstruction
from .xml_events import EVENT_CLASSES, GenericEvent
from .xml_messages import MESSAGE_CLASSES, GenericMessage

__all__ = ["MAX_JSON_DEPTH", "parse_message"]

# WeChat payloads nest a few levels; deeper input is refused before anything walks it
MAX_JSON_DEPTH = 64
_WHITESPACE = " \t\r\n\ufeff"
# MsgTypes whose callbacks name an Event: events, and WeChat hardware's device events
_EVENT_TYPES = frozenset({"event", "device_event"})

_EVENTS_BY_PLATFORM = {
    Platform.OFFICIAL_ACCOUNT: {**EVENT_CLASSES, **OA_EVENT_CLASSES},
    Platform.MINIPROGRAM: {**EVENT_CLASSES, **OA_EVENT_CLASSES},
    Platform.WECOM_APP: WECOM_EVENT_CLASSES,
}


def parse_message(plaintext: str | bytes, platform: Platform | str) -> Message:
    """Parse one decrypted callback into its typed Message.

    Raises MessageParseError (a ParseError, code -40002) when the plaintext is not
    XML/JSON, not an object, or has no MsgType (InfoType for suite instructions,
    msgtype for robots). Unknown types give a generic message that keeps every field.
    """
    where = Platform.of(platform)
    if isinstance(plaintext, (bytes, bytearray)):
        head = bytes(plaintext).lstrip(b" \t\r\n")
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:].lstrip(b" \t\r\n")
        first = head[:1].decode("latin-1")
    elif isinstance(plaintext, str):
        first = plaintext[:1]
        if first in _WHITESPACE:  # also "" for an empty string
            first = plaintext.lstrip(_WHITESPACE)[:1]
    else:
        raise MessageParseError(f"plaintext must be str or bytes, not {type(plaintext).__name__}")

    if where is Platform.WECOM_ROBOT:
        if first != "{":
            raise MessageParseError("a robot callback must be a JSON object")
        return _robot_message(_load_json(plaintext), where, plaintext)
    if first == "<":
        return _xml_family_message(_load_xml(plaintext), where, plaintext)
    if first == "{":
        return _xml_family_message(_load_json(plaintext), where, plaintext)
    if not first:
        raise MessageParseError("the plaintext is empty")
    raise MessageParseError("the plaintext is neither XML nor a JSON object")


class _DictBuilder:
    """expat handlers that build the plain-data form of a document directly.

    Callback XML is parsed on every request, so this skips an intermediate element tree
    and allocates a dict only for elements that have children (a leaf is its text,
    repeated elements become a list); the parser itself is ``safexml.new_parser()``
    (DTDs and entities refused). A leaf's text keeps CDATA verbatim and drops the
    whitespace around it (``<ToUserName> <![CDATA[gh_…]]> </ToUserName>`` in the
    platforms' own docs), as every peer parser does.
    """

    __slots__ = ("tags", "children", "texts", "in_cdata", "root")

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.children: list[dict[str, Any] | None] = []
        # per open element: its text pieces, each (text, inside CDATA)
        self.texts: list[list[tuple[str, bool]]] = []
        self.in_cdata = False
        self.root: Any = MISSING

    def start(self, tag: str, attributes: Any) -> None:
        tags = self.tags
        if len(tags) >= MAX_DEPTH:
            raise ValueError(f"elements are nested deeper than {MAX_DEPTH} levels")
        tags.append(tag)
        self.children.append(None)
        self.texts.append([])

    def end(self, _tag: str) -> None:
        tag = self.tags.pop()
        children = self.children.pop()
        pieces = self.texts.pop()
        value: Any = leaf_text(pieces) if children is None else children
        if not self.tags:
            self.root = value
            return
        siblings = self.children[-1]
        if siblings is None:
            self.children[-1] = {tag: value}
            return
        existing = siblings.get(tag, MISSING)
        if existing is MISSING:
            siblings[tag] = value
        elif isinstance(existing, list):  # XML values are str/dict, so a list means "repeated"
            existing.append(value)
        else:
            siblings[tag] = [existing, value]

    def data(self, text: str) -> None:
        texts = self.texts
        if texts:
            texts[-1].append((text, self.in_cdata))

    def start_cdata(self) -> None:
        self.in_cdata = True

    def end_cdata(self) -> None:
        self.in_cdata = False


_XML_SPACE = " \t\r\n"


def leaf_text(pieces: list[tuple[str, bool]]) -> str:
    """An element's text: CDATA as written, the text outside it trimmed at the edges.

    Whitespace-only text between sections is layout, not content, and is dropped.
    """
    if not any(in_cdata for _, in_cdata in pieces):
        return "".join(text for text, _ in pieces).strip(_XML_SPACE)
    # merge neighbouring pieces of one kind (expat may split text), then trim outside runs
    runs: list[list[Any]] = []
    for text, in_cdata in pieces:
        if runs and runs[-1][1] == in_cdata:
            runs[-1][0] += text
        else:
            runs.append([text, in_cdata])
    out: list[str] = []
    last = len(runs) - 1
    for index, (text, in_cdata) in enumerate(runs):
        if not in_cdata:
            if not text.strip(_XML_SPACE):
                continue
            if index == 0:
                text = text.lstrip(_XML_SPACE)
            if index == last:
                text = text.rstrip(_XML_SPACE)
        out.append(text)
    return "".join(out)


def _load_xml(plaintext: str | bytes) -> dict[str, Any]:
    flat = parse_flat(bytes(plaintext) if isinstance(plaintext, bytearray) else plaintext)
    if flat is not None:
        return dict(flat)
    return _load_xml_expat(plaintext)


def _load_xml_expat(plaintext: str | bytes) -> dict[str, Any]:
    builder = _DictBuilder()
    parser = new_parser()
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartCdataSectionHandler = builder.start_cdata
    parser.EndCdataSectionHandler = builder.end_cdata
    try:
        run_parser(parser, plaintext, "message")
    except ParseError as exc:
        raise MessageParseError(str(exc)) from None
    return builder.root if isinstance(builder.root, dict) else {}


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _load_json(plaintext: str | bytes) -> Any:
    if isinstance(plaintext, (bytes, bytearray)):
        try:
            plaintext = bytes(plaintext).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MessageParseError(f"message is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        data = json.loads(plaintext.lstrip(_WHITESPACE), parse_constant=_refuse_constant)
    except RecursionError:
        raise MessageParseError(f"message JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, TypeError, MemoryError) as exc:
        raise MessageParseError(f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageParseError(f"message JSON must be an object, not {type(data).__name__}")
    _check_depth(data)
    return data


def _check_depth(data: dict[str, Any]) -> None:
    # iterative, so checking cannot itself hit the recursion limit
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise MessageParseError(f"message JSON is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values() if isinstance(child, (dict, list)))
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value if isinstance(child, (dict, list)))


def _required_text(value: Any, name: str) -> str:
    if value is MISSING:
        raise MessageParseError(f"message has no {name}")
    if not isinstance(value, str) or not value.strip():
        raise MessageParseError(f"{name} must be non-empty text, got {value!r:.60}")
    return value.strip().lower()


def _instruction_class(raw: dict[str, Any], platform: Platform, info_type: str) -> type[Message]:
    # A WeCom suite names its SuiteId; an open-platform component its AppId. The root
    # decides; without either, the channel's platform does.
    if lookup(raw, ("SuiteId", "ServiceCorpId")) is not MISSING:
        return INSTRUCTION_CLASSES.get(info_type, SuiteInstruction)
    if lookup(raw, ("AppId",)) is not MISSING or platform.is_official_account_like:
        return COMPONENT_CLASSES.get(info_type, ComponentInstruction)
    return INSTRUCTION_CLASSES.get(info_type, SuiteInstruction)


def _xml_family_message(raw: dict[str, Any], platform: Platform, plaintext: str | bytes) -> Message:
    msg_type_value = lookup(raw, ("MsgType",))
    if msg_type_value is MISSING:
        info_type = lookup(raw, ("InfoType",))
        if info_type is not MISSING:
            event = _required_text(info_type, "InfoType")
            instruction = _instruction_class(raw, platform, event)
            return instruction(raw, platform, "instruction", event, plaintext=plaintext)
    msg_type = _required_text(msg_type_value, "MsgType")
    if msg_type in _EVENT_TYPES:
        event_value = lookup(raw, ("Event",))
        event = event_value.strip().lower() if isinstance(event_value, str) else ""
        event_class = _EVENTS_BY_PLATFORM[platform].get(event, GenericEvent)
        return event_class(raw, platform, msg_type, event, plaintext=plaintext)
    return MESSAGE_CLASSES.get(msg_type, GenericMessage)(raw, platform, msg_type, plaintext=plaintext)


def _robot_message(raw: dict[str, Any], platform: Platform, plaintext: str | bytes) -> Message:
    msg_type = _required_text(lookup(raw, ("msgtype",)), "msgtype")
    if msg_type == "event":
        event_object = raw.get("event")
        name = event_object.get("eventtype") if isinstance(event_object, dict) else None
        event = name.strip().lower() if isinstance(name, str) else ""
        return ROBOT_EVENT_CLASSES.get(event, RobotGenericEvent)(raw, platform, msg_type, event,
                                                                  plaintext=plaintext)
    return ROBOT_MESSAGE_CLASSES.get(msg_type, RobotGenericMessage)(raw, platform, msg_type, plaintext=plaintext)
