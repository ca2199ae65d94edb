"""The one error the simulator adds: a setting it cannot work with.

Everything else the simulator finds is not an exception but a failed check in the
report: a wrong answer from the endpoint is the result, not a crash.
"""

from __future__ import annotations

from wxcallback.core import ErrorCode, WXCallbackError

__all__ = ["SimulatorError"]


class SimulatorError(WXCallbackError):
    """A simulator setting is unusable (unknown platform or mode, missing key, bad number).

    A mistake of the caller, not a protocol failure: its code is 0, no official code.
    """

    code = ErrorCode.OK
