"""The inbound message base class: raw fields, the common accessors, dedup keys, to_dict."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from .fields import Field, Path, as_int, as_str, lookup
from .platform import Platform
from .replies import EmptyReply, NoReply, SuccessReply

__all__ = ["Message"]

_EMPTY = EmptyReply()
_SUCCESS = SuccessReply()
# a dedup key's readable label is built from received text: keep it short and key-safe
_UNSAFE_LABEL = re.compile(r"[^A-Za-z0-9_.@:/+=-]+")
_MAX_LABEL = 64


class Message:
    """One decrypted callback: a user message, an event, a suite instruction or a robot callback.

    ``raw`` holds every field as received (XML text stays text, JSON keeps its types);
    the typed attributes of each subclass read from it. ``msg_type`` and ``event`` are
    lower-cased so dispatch is case-insensitive (``SCAN``, ``CLICK``, ``click`` all occur).
    """

    __slots__ = ("raw", "platform", "msg_type", "event", "tenant", "_plaintext", "_dedup_key")

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
                 event: str | None = None, *, plaintext: str | bytes | None = None) -> None:
        self.raw = raw
        self.platform = platform
        self.msg_type = msg_type
        self.event = event
        # The authorized account a third party received this for, from its templated path
        # (an open-platform authorizer's AppID, a suite's corp); "" otherwise. Set by the server.
        self.tenant = ""
        # the callback as received: its digest is the callback's identity (see dedup_key)
        self._plaintext = plaintext
        self._dedup_key: str | None = None

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
        return _SUCCESS if self.platform.is_official_account_like else _EMPTY

    @property
    def data_format(self) -> str:
        """``"json"`` or ``"xml"``: how the callback arrived, and so how its reply is written."""
        if self.platform is Platform.WECOM_ROBOT:
            return "json"
        plaintext = self._plaintext
        if plaintext is None:
            return "xml"
        head = plaintext[:64].lstrip() if isinstance(plaintext, str) else bytes(plaintext[:64]).lstrip()
        if isinstance(head, bytes):
            head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
            return "json" if head.startswith(b"{") else "xml"
        return "json" if head.lstrip("\ufeff ").startswith("{") else "xml"

    @property
    def dedup_key(self) -> str:
        """What identifies this callback among all others (the server prefixes its channel).

        Equal for a platform retry, which carries the same plaintext re-encrypted; different
        for any two distinct callbacks. It is ``<label>:<digest>``: the label names the
        callback for a person (``msgid:<MsgId>``, ``event:<event>``,
        ``instruction:<InfoType>``, …) and the digest (BLAKE2b, 128 bits) is taken over the
        whole decrypted plaintext, byte for byte as received. No subset of fields is
        trusted to be unique: MsgIds have been seen to collide across apps, and events
        carry no id of their own, so two events of one sender in one second (contact
        changes, job results) differ only in fields a hand-picked key leaves out.
        Nothing is normalised: no platform has been shown to change a callback between
        attempts.
        """
        key = self._dedup_key
        if key is None:
            label = _UNSAFE_LABEL.sub("_", self._identity_label())[:_MAX_LABEL]
            key = self._dedup_key = f"{label}:{self._plaintext_digest()}"
        return key

    def _identity_label(self) -> str:
        """The readable part of ``dedup_key``; families name their own id here."""
        return f"event:{self.event}" if self.event is not None else self.msg_type

    def _plaintext_digest(self) -> str:
        """BLAKE2b-128 of the plaintext as received (of ``raw`` in its order when the
        message was built from data rather than parsed)."""
        plaintext = self._plaintext
        if plaintext is None:
            plaintext = json.dumps(self.raw, ensure_ascii=False, separators=(",", ":"), default=str)
        data = plaintext.encode("utf-8", "surrogatepass") if isinstance(plaintext, str) else bytes(plaintext)
        return hashlib.blake2b(data, digest_size=16).hexdigest()

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
