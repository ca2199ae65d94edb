"""Which receive_id a decrypted frame may carry.

The receive_id is the CorpID (WeCom app), AppID (Official Account), SuiteID (suite
instruction callbacks) or "" (smart robot). The match is exact by default, and the
empty string is a value like any other: a robot configured with "" refuses a frame
made for a corp (the Go SDK skips the check when it is "", vector D11). A set serves
third-party suites that receive several ids on one URL; skipping the check must be
asked for by name.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ReceiveIdError

__all__ = ["ANY_RECEIVE_ID", "ReceiveIdPolicy"]


class ReceiveIdPolicy:
    """Exact id, one of a set, or (explicitly) any."""

    __slots__ = ("_accepted", "_accepted_utf8", "_reply_id", "_any")

    def __init__(self, accepted: Iterable[str] | None, reply_id: str | None) -> None:
        self._any = accepted is None
        self._accepted = frozenset(accepted) if accepted is not None else frozenset()
        # Frames carry UTF-8 bytes: matching them before decoding saves a decode per message.
        self._accepted_utf8 = {i.encode("utf-8", "surrogatepass"): i for i in self._accepted}
        self._reply_id = reply_id

    @classmethod
    def exact(cls, receive_id: str) -> ReceiveIdPolicy:
        if not isinstance(receive_id, str):
            raise ReceiveIdError(f"receive_id must be a str, not {type(receive_id).__name__}")
        return cls((receive_id,), receive_id)

    @classmethod
    def one_of(cls, receive_ids: Iterable[str]) -> ReceiveIdPolicy:
        ids = tuple(receive_ids)
        if not ids or not all(isinstance(i, str) for i in ids):
            raise ReceiveIdError("one_of() needs at least one receive_id, all of them str")
        return cls(ids, ids[0] if len(ids) == 1 else None)

    @classmethod
    def any(cls, reply_id: str | None = None) -> ReceiveIdPolicy:
        """Accept every receive_id. Only for diagnosis: it drops a check the protocol makes."""
        return cls(None, reply_id)

    @classmethod
    def coerce(cls, value: str | Iterable[str] | ReceiveIdPolicy) -> ReceiveIdPolicy:
        if isinstance(value, ReceiveIdPolicy):
            return value
        if isinstance(value, str):
            return cls.exact(value)
        if isinstance(value, bytes):
            raise ReceiveIdError("receive_id must be a str, not bytes")
        return cls.one_of(value)

    @property
    def reply_id(self) -> str | None:
        """The id a reply is sealed with when the request's own id is not given."""
        return self._reply_id

    def match_utf8(self, received: bytes) -> str | None:
        """The accepted id equal to the frame's raw ``received`` bytes, or None."""
        return self._accepted_utf8.get(received)

    def check(self, received: str) -> None:
        if self._any or received in self._accepted:
            return
        raise ReceiveIdError(
            f"receive_id mismatch: the message is for {_show(received)}, "
            f"this key is configured for {self.describe()}"
            + (" (a smart robot's receive_id is '')" if received == "" or "" in self._accepted else ""),
            received=received,
            expected=sorted(self._accepted),
        )

    def describe(self) -> str:
        if self._any:
            return "any receive_id"
        ids = sorted(self._accepted)
        return _show(ids[0]) if len(ids) == 1 else "one of " + ", ".join(_show(i) for i in ids)

    def __repr__(self) -> str:
        return f"ReceiveIdPolicy({self.describe()})"


def _show(receive_id: str) -> str:
    if receive_id == "":
        return "''"
    if receive_id.isprintable() and len(receive_id) <= 64:
        return receive_id
    return repr(receive_id[:64]) + ("…" if len(receive_id) > 64 else "")


ANY_RECEIVE_ID = ReceiveIdPolicy.any()
