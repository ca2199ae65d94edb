"""Errors of the long connection, as leaves of the library's error tree::

    WXCallbackError
    ├── ParseError (-40002)
    │   └── FrameError            a frame from the platform cannot be read (.reason says why)
    ├── RenderError (-40011)
    │   └── FrameBuildError       a frame we would send breaks a protocol limit
    └── LongConnError             the connection could not carry a request
        ├── AckError              the platform answered errcode != 0 (.errcode, .errmsg, .req_id)
        ├── AckTimeout            no answer within the ack timeout
        ├── NotConnected          no subscribed connection to send on, or it was lost meanwhile
        ├── DeliveryUnknown       the frame was sent, but whether the platform has it cannot be known
        └── QueueFull             too many frames already waiting on one req_id

Catch ``LongConnError`` to treat any failed send alike; catch a leaf to explain it.
"""

from __future__ import annotations

from wxcallback.core.errors import ParseError, RenderError, WXCallbackError

__all__ = ["AckError", "AckTimeout", "DeliveryUnknown", "FrameBuildError", "FrameError", "LongConnError",
           "NotConnected", "QueueFull"]


class FrameError(ParseError):
    """A frame from the platform is not one we can act on.

    ``reason`` is a short stable code for logs and metrics: ``not-json``, ``not-object``,
    ``no-req-id``, ``bad-cmd``, ``unknown-cmd``, ``bad-body``, ``bad-errcode``.
    """

    def __init__(self, message: str, *, reason: str, req_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.req_id = req_id


class FrameBuildError(RenderError):
    """An outgoing frame would break a protocol limit (content size, chunk size, msg_item rule)."""


class LongConnError(WXCallbackError):
    """A request over the long connection did not succeed."""


class AckError(LongConnError):
    """The platform acknowledged a frame with a non-zero errcode."""

    def __init__(self, message: str, *, errcode: int, errmsg: str, req_id: str) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.errmsg = errmsg
        self.req_id = req_id


class AckTimeout(LongConnError):
    """The platform did not acknowledge a frame within the ack timeout."""


class NotConnected(LongConnError):
    """There is no subscribed connection, or it was lost before the frame was acknowledged."""


class DeliveryUnknown(LongConnError):
    """The frame went out, and no answer will come: the process that sent it stopped before the
    platform's ack, or the ack did not come in time. The message may or may not have reached the
    chat; sending it again may show it twice."""


class QueueFull(LongConnError):
    """Too many frames are already waiting to be sent on this req_id."""
