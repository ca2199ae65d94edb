"""The inbound message base class: raw fields, the common accessors, dedup keys, to_dict."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from .fields import Field, Path, as_int, as_str, lookup
from .platform import Platform
from .replies import EmptyReply, NoReply, SuccessReply

__all__ = ["Message"]

_EMPTY = EmptyReply()
_SUCCESS = SuccessReply()


class Message:
    """One decrypted callback: a user message, an event, a suite instruction or a robot callback.

    ``raw`` holds every field as received (XML text stays text, JSON keeps its types);
    the typed attributes of each subclass read from it. ``msg_type`` and ``event`` are
    lower-cased so dispatch is case-insensitive (``SCAN``, ``CLICK``, ``click`` all occur).
    """

    __slots__ = ("raw", "platform", "msg_type", "event")

    # where the sender / receiver / time live in raw; set by each family of messages
    _source_paths: ClassVar[tuple[Path, ...]] = ()
    _target_paths: ClassVar[tuple[Path, ...]] = ()
    _create_time_paths: ClassVar[tuple[Path, ...]] = ()
    # the typed attributes (Fields and properties of subclasses) exported by to_dict, in
    # declaration order; filled per subclass
    _field_names: ClassVar[tuple[str, ...]] = ()
    # properties a subclass defines that to_dict must not export as they are (not JSON data)
    _not_exported: ClassVar[frozenset[str]] = frozenset()
    #: True for messages a person sent (text, image, …), False for events and instructions
    is_user_message: ClassVar[bool] = False

    def __init__(self, raw: Mapping[str, Any], platform: Platform, msg_type: str,
                 event: str | None = None) -> None:
        self.raw = raw
        self.platform = platform
        self.msg_type = msg_type
        self.event = event

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        common = set(vars(Message))
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            if not issubclass(klass, Message) or klass is Message:
                continue
            for name, value in vars(klass).items():
                exported = isinstance(value, Field) or (isinstance(value, property) and not name.startswith("_"))
                if exported and name not in names and name not in common and name not in cls._not_exported:
                    names.append(name)
        cls._field_names = tuple(names)

    @property
    def source(self) -> str:
        """Who sent it: FromUserName (OpenID, member UserID, ``sys``) or a robot's from.userid."""
        return as_str(lookup(self.raw, self._source_paths))

    @property
    def target(self) -> str:
        """Who it was sent to: ToUserName (account 原始ID, CorpID, SuiteId) or the robot's aibotid."""
        return as_str(lookup(self.raw, self._target_paths))

    @property
    def create_time(self) -> int | None:
        """Unix seconds the platform stamped on it, when it carries one."""
        return as_int(lookup(self.raw, self._create_time_paths))

    @property
    def is_event(self) -> bool:
        return self.event is not None

    @property
    def no_reply(self) -> NoReply:
        """The answer that means "nothing to say" for this callback (sent unencrypted).

        Official Accounts: ``success`` (recommended by the doc; an empty body works too).
        WeCom apps and robots: an empty body. WeCom suite instructions: ``success``.
        """
        return _SUCCESS if self.platform is Platform.OFFICIAL_ACCOUNT else _EMPTY

    @property
    def dedup_key(self) -> str:
        """What identifies a platform retry of this callback (the server prefixes its channel).

        Messages: their MsgId. Events: sender + CreateTime + event (+ EventKey), since
        several events can share a second. Without any of those, a digest of the fields.
        """
        return self._fallback_dedup_key()

    def _fallback_dedup_key(self) -> str:
        source, create_time = self.source, self.create_time
        if source and create_time is not None:
            return f"{self.msg_type}:{source}:{create_time}:{self.event or ''}"
        canonical = json.dumps(self.raw, sort_keys=True, ensure_ascii=True, default=str)
        return "sha1:" + hashlib.sha1(canonical.encode("ascii")).hexdigest()

    def fields(self) -> dict[str, Any]:
        """The typed attributes of this class, by name."""
        return {name: getattr(self, name) for name in self._field_names}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the common accessors, the typed fields, and ``raw``."""
        data: dict[str, Any] = {
            "platform": self.platform.value,
            "type": type(self).__name__,
            "msg_type": self.msg_type,
            "event": self.event,
            "source": self.source,
            "target": self.target,
            "create_time": self.create_time,
            "dedup_key": self.dedup_key,
            "no_reply": self.no_reply.body,
        }
        data.update(self.fields())
        data["raw"] = self.raw
        return data

    def __repr__(self) -> str:
        detail = f"event={self.event!r}" if self.event is not None else f"msg_type={self.msg_type!r}"
        return f"<{type(self).__name__} {self.platform.value} {detail} from {self.source!r}>"
