"""The smart robot's long connection (WebSocket mode): frames, the connection, its lease.

A WeCom smart robot in long-connection mode opens a WebSocket to the platform instead of
serving a callback URL (WeCom doc 101463; the official Node SDK)::

    async def on_callback(callback: Callback) -> None:
        if not callback.is_event:
            await connection.respond(callback, StreamReply(new_stream_id(), "hi", finish=True))

    connection = LongConnection(LongConnSettings(bot_id, secret), on_callback)
    await connection.run()

Needs the ``websockets`` package (the ``server`` extra).
"""

from .connection import (
    ConnectionState,
    LongConnection,
    LongConnSettings,
    Phase,
    TerminalReason,
    UploadedMedia,
    backoff_delay,
)
from .errors import (
    AckError,
    AckTimeout,
    DeliveryUnknown,
    FrameBuildError,
    FrameError,
    LongConnError,
    NotConnected,
    QueueFull,
)
from .frames import DEFAULT_URL, Ack, Callback, Cmd, Frame, parse_frame, reply_frame
from .lease import Lease, MemoryLease, default_holder, lease_name

__all__ = [
    "DEFAULT_URL",
    "Ack",
    "AckError",
    "AckTimeout",
    "Callback",
    "Cmd",
    "ConnectionState",
    "DeliveryUnknown",
    "Frame",
    "FrameBuildError",
    "FrameError",
    "Lease",
    "LongConnError",
    "LongConnSettings",
    "LongConnection",
    "MemoryLease",
    "NotConnected",
    "Phase",
    "QueueFull",
    "TerminalReason",
    "UploadedMedia",
    "backoff_delay",
    "default_holder",
    "lease_name",
    "parse_frame",
    "reply_frame",
]
