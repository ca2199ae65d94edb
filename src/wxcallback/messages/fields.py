"""Typed views of raw callback fields.

A message keeps the fields exactly as they arrived (``raw``); the typed attributes of a
message class are ``Field`` descriptors that look a value up when read and convert it.
A field may name several spellings (``MsgId`` / ``MsgID``) and nested paths
(``("from", "userid")``); a key that is not found exactly is retried case-insensitively,
because the platforms are inconsistent about case. Conversions never raise: a value of
the wrong shape reads as the field's empty value.

A repeated XML element is a list in ``raw``. List fields (``items``) gather every value
along their path, through lists at any level, because the platforms repeat elements at
different levels for the same data: one ``<PicList>`` per picture in some pushes, one
``<item>`` per picture inside a single ``<PicList>`` in others. A path segment ``item``
is XML's name for an array element; JSON bodies carry the array itself, so a missing
``item`` key is stepped over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar, overload

__all__ = [
    "MISSING",
    "Field",
    "Path",
    "as_float",
    "as_int",
    "as_items",
    "as_mapping",
    "as_optional_str",
    "as_str",
    "collect",
    "floating",
    "integer",
    "items",
    "lookup",
    "mapping",
    "optional_text",
    "text",
]

T = TypeVar("T")
Path = str | tuple[str, ...]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class HasRaw(Protocol):
    @property
    def raw(self) -> Mapping[str, Any]: ...


def _get(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key, MISSING)
    if value is MISSING:
        folded = key.lower()
        for name, candidate in data.items():
            if name.lower() == folded:
                return candidate
    return value


def lookup(data: Mapping[str, Any], paths: tuple[Path, ...]) -> Any:
    """The first value found along ``paths`` (a key, or a tuple of nested keys), else MISSING."""
    for path in paths:
        if isinstance(path, str):
            value = _get(data, path)
        else:
            value = data
            for key in path:
                if not isinstance(value, Mapping):
                    value = MISSING
                    break
                value = _get(value, key)
        if value is not MISSING:
            return value
    return MISSING


# XML's conventional array-element name; JSON bodies have the array without it
_ITEM = "item"


def collect(data: Mapping[str, Any], paths: tuple[Path, ...]) -> list[Any]:
    """Every value found along the first of ``paths`` that matches, lists flattened at each step."""
    for path in paths:
        keys = (path,) if isinstance(path, str) else path
        found: list[Any] = [data]
        matched = True
        for key in keys:
            step: list[Any] = []
            for value in found:
                for node in value if isinstance(value, list) else (value,):
                    if not isinstance(node, Mapping):
                        continue
                    child = _get(node, key)
                    if child is MISSING and key == _ITEM:
                        child = node  # a JSON array element: the object itself
                    if child is not MISSING:
                        step.append(child)
            if not step and key == _ITEM:
                step = found  # a JSON array holds its elements without an "item" wrapper
            if not step:
                matched = False
                break
            found = step
        if matched:
            gathered: list[Any] = []
            for value in found:
                if isinstance(value, list):
                    gathered.extend(value)
                elif value is not None and value != "":
                    gathered.append(value)
            return gathered
    return []


def as_str(value: Any) -> str:
    """Text as received; numbers (JSON) are written in decimal; anything else is ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def as_optional_str(value: Any) -> str | None:
    return None if value is MISSING or value is None else as_str(value)


def as_int(value: Any) -> int | None:
    """An integer from an int or a decimal string (XML carries numbers as text); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        # bound the length: int() of a huge digit string is slow and may raise ValueError
        # ASCII digits only: "¹".isdigit() is true, and int("¹") raises
        if text and len(text) <= 40 and text.isascii() and (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
            return int(text)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and 0 < len(value) <= 64:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


def as_mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def as_items(value: Any) -> list[Any]:
    """A list from a JSON array or repeated XML elements; a single element is a list of one."""
    if isinstance(value, list):
        return value
    if value is MISSING or value is None or value == "":
        return []
    return [value]


class Field(Generic[T]):
    """A typed, read-only view of a raw field; declared on a message class."""

    __slots__ = ("paths", "convert", "name")

    def __init__(self, paths: tuple[Path, ...], convert: Callable[[Any], T]) -> None:
        self.paths = paths
        self.convert = convert
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Field[T]: ...

    @overload
    def __get__(self, instance: HasRaw, owner: type | None = None) -> T: ...

    def __get__(self, instance: HasRaw | None, owner: type | None = None) -> Field[T] | T:
        if instance is None:
            return self
        return self.convert(lookup(instance.raw, self.paths))

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.paths!r})"


def text(*paths: Path) -> Field[str]:
    return Field(paths, as_str)


def optional_text(*paths: Path) -> Field[str | None]:
    return Field(paths, as_optional_str)


def integer(*paths: Path) -> Field[int | None]:
    return Field(paths, as_int)


def floating(*paths: Path) -> Field[float | None]:
    return Field(paths, as_float)


def mapping(*paths: Path) -> Field[dict[str, Any]]:
    return Field(paths, as_mapping)


class ItemsField(Field[list[Any]]):
    """A list field: every value along the path, repeated elements at any level included."""

    __slots__ = ()

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> ItemsField: ...

    @overload
    def __get__(self, instance: HasRaw, owner: type | None = None) -> list[Any]: ...

    def __get__(self, instance: HasRaw | None, owner: type | None = None) -> ItemsField | list[Any]:
        if instance is None:
            return self
        return collect(instance.raw, self.paths)


def items(*paths: Path) -> ItemsField:
    return ItemsField(paths, as_items)
