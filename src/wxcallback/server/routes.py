"""Which channel a request path belongs to: exact paths, path templates, shared paths.

A third-party platform receives every authorized account on one URL pattern: the open
platform's message URL may contain ``$APPID$`` (open-platform message_push), a WeCom
suite's data callback URL ``$CORPID$`` (doc 97172); the console replaces the placeholder
with the account's id. Here that is ``path = "/open/{appid}"`` or ``"/suite/{corpid}"``:
one path segment, captured as the request's *tenant*, checked against the id's real format
so that nothing else reaches the crypto (and nothing is reflected: a bad value is a 404).

Lookup cost does not grow with the number of channels: an exact path is one dict lookup;
a template is found by the literal prefix before its placeholder, one dict lookup per
slash in the request path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["PLACEHOLDERS", "PathTemplate", "Route", "RouteTable", "TemplateError"]

T = TypeVar("T")

#: what each placeholder captures, and the format a captured value must have
PLACEHOLDERS: dict[str, tuple[re.Pattern[str], str]] = {
    # An AppID is "wx" and 16 lower-case hex digits (Official Accounts, mini programs).
    "appid": (re.compile(r"wx[0-9a-f]{16}"), "an AppID (wx and 16 hex digits)"),
    # A CorpID: "ww" (or "wx" for old corps) and 16 hex digits; since 2022 a third party sees
    # encrypted open corpids, "wp" and up to 62 more URL-safe characters (doc 95604).
    "corpid": (re.compile(r"w[wx][0-9a-f]{16}|wp[0-9A-Za-z_-]{8,62}"),
               "a CorpID (ww and 16 hex digits, or an open corpid wp…)"),
}
_PLACEHOLDER = re.compile(r"\{([a-z]+)\}")


class TemplateError(ValueError):
    """A configured path template cannot be used (the message says why)."""


@dataclass(frozen=True)
class PathTemplate:
    """A path with one placeholder segment, e.g. ``/open/{appid}`` or ``/suite/{corpid}/data``."""

    path: str
    prefix: str  # up to and including the "/" before the placeholder
    placeholder: str
    suffix: str  # after the placeholder: "" or "/…"

    @classmethod
    def parse(cls, path: str) -> PathTemplate | None:
        """The template ``path`` declares, or None for an exact path; TemplateError if malformed."""
        if "{" not in path and "}" not in path:
            return None
        found = list(_PLACEHOLDER.finditer(path))
        if len(found) != 1:
            raise TemplateError(f"{path!r}: a path template has exactly one placeholder, "
                                f"{{appid}} or {{corpid}}")
        match = found[0]
        name = match.group(1)
        if name not in PLACEHOLDERS:
            raise TemplateError(f"{path!r}: unknown placeholder {{{name}}} (known: "
                                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS) + ")")
        prefix, suffix = path[:match.start()], path[match.end():]
        if not prefix.endswith("/") or (suffix and not suffix.startswith("/")) or "{" in suffix or "}" in suffix:
            raise TemplateError(f"{path!r}: the placeholder must be a whole path segment, e.g. /open/{{{name}}}")
        return cls(path, prefix, name, suffix)

    @property
    def describes(self) -> str:
        return PLACEHOLDERS[self.placeholder][1]

    def capture(self, path: str) -> str | None:
        """The segment ``path`` puts in the placeholder, if the rest matches (unchecked)."""
        if not path.startswith(self.prefix) or not path.endswith(self.suffix):
            return None
        value = path[len(self.prefix):len(path) - len(self.suffix)]
        return value if value and "/" not in value else None

    def valid(self, value: str) -> bool:
        return PLACEHOLDERS[self.placeholder][0].fullmatch(value) is not None


@dataclass(frozen=True)
class Route(Generic[T]):
    """The candidates for a request (one, unless several channels share the path) and its tenant."""

    candidates: tuple[T, ...]
    tenant: str  # the captured id ("" on an exact path)


class RouteTable(Generic[T]):
    """Paths and templates to their candidates; built once, read on every request."""

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        exact: dict[str, list[T]] = {}
        templates: dict[str, list[tuple[PathTemplate, list[T]]]] = {}
        for path, value in entries:
            template = PathTemplate.parse(path)
            if template is None:
                exact.setdefault(path, []).append(value)
                continue
            same = [found for found in templates.setdefault(template.prefix, []) if found[0].path == path]
            if same:
                same[0][1].append(value)
            else:
                templates[template.prefix].append((template, [value]))
        # Built once: an exact path's request allocates nothing to find its route.
        self._exact = {path: Route(tuple(values), "") for path, values in exact.items()}
        self._templates = {prefix: tuple((t, tuple(values)) for t, values in found)
                           for prefix, found in templates.items()}

    def first(self, path: str) -> T | None:
        """The first candidate for ``path`` (what the log names), or None."""
        route = self.match(path)
        return route.candidates[0] if route is not None else None

    def match(self, path: str) -> Route[T] | None:
        """The route of ``path``; None when no channel serves it or a captured value is malformed."""
        found = self._exact.get(path)
        if found is None and path.endswith("/") and len(path) > 1:
            found = self._exact.get(path.rstrip("/") or "/")
        if found is not None:
            return found
        if not self._templates:
            return None
        for candidate in (path, path.rstrip("/")) if path.endswith("/") else (path,):
            for template, values, value in self._captures(candidate):
                if template.valid(value):
                    return Route(values, value)
        return None

    def miss(self, path: str) -> str:
        """Why ``path`` has no route, for the log line (the captured value is not repeated)."""
        for template, _values, _value in self._captures(path):
            return (f"the path matches the template {template.path} but its {{{template.placeholder}}} "
                    f"segment is not {template.describes}")
        return f"no channel is configured for {path[:200]!r}"

    def _captures(self, path: str) -> Iterable[tuple[PathTemplate, tuple[T, ...], str]]:
        # Every "/" of the path may end a template's prefix: one dict lookup each.
        end = path.find("/")
        while end != -1:
            for template, values in self._templates.get(path[:end + 1], ()):
                value = template.capture(path)
                if value is not None:
                    yield template, values, value
            end = path.find("/", end + 1)
