"""The callback platforms a message can come from."""

from __future__ import annotations

from enum import Enum

from .errors import UnknownPlatformError

__all__ = ["Platform"]


class Platform(str, Enum):
    """Where a callback comes from; the values are the strings used in server configuration."""

    OFFICIAL_ACCOUNT = "official-account"
    WECOM_APP = "wecom-app"
    WECOM_ROBOT = "wecom-robot"
    # Mini programs and mini games: the Official Account's fields and crypto, XML or JSON,
    # customer-service messages and events; no passive reply but "success" or a transfer.
    MINIPROGRAM = "miniprogram"

    @property
    def is_official_account_like(self) -> bool:
        """Official Account field names (ToUserName, MsgType, …) and "success" for no reply."""
        return self in (Platform.OFFICIAL_ACCOUNT, Platform.MINIPROGRAM)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: Platform | str) -> Platform:
        """``value`` as a Platform; UnknownPlatformError names the accepted strings."""
        if isinstance(value, Platform):
            return value
        try:
            return cls(value)
        except ValueError:
            accepted = ", ".join(repr(p.value) for p in cls)
            raise UnknownPlatformError(f"unknown platform {value!r}: use one of {accepted}") from None
