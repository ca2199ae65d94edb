"""Errors of the message layer, each a leaf of the core error tree (and so carrying its code)::

    ParseError (-40002)
    └── MessageParseError          plaintext is not a callback message (XML/JSON, MsgType)
        └── UnknownPlatformError   a platform string that is not one of Platform's values
    RenderError (-40011)
    └── InvalidReplyError          a reply value breaks a protocol limit or a dict is not a reply
        └── ReplyNotAllowedError   this reply type may not answer this callback
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
