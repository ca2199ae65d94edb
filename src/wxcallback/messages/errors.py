"""Errors of the message layer: leaves of the error tree drawn in ``wxcallback.core.errors``.

Parsing failures are ParseErrors (-40002), reply failures RenderErrors (-40011).
"""

from __future__ import annotations

from wxcallback.core.errors import ParseError, RenderError

__all__ = ["InvalidReplyError", "MessageParseError", "ReplyNotAllowedError", "UnknownPlatformError"]


class MessageParseError(ParseError):
    """The decrypted plaintext is not a callback message: not XML/JSON, not an object, no MsgType."""


class UnknownPlatformError(MessageParseError, ValueError):
    """The platform is not one of "official-account", "wecom-app", "wecom-robot"."""


class InvalidReplyError(RenderError):
    """A reply cannot be built or rendered: a limit is exceeded, a value is not XML text, a bad dict."""


class ReplyNotAllowedError(InvalidReplyError):
    """The platform does not accept this reply type for this callback (checked before sending)."""
