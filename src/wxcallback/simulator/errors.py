"""The one error the simulator adds: a setting it cannot work with.

Everything else the simulator finds is not an exception but a failed check in the
report: a wrong answer from the endpoint is the result, not a crash.
"""

from __future__ import annotations

from wxcallback.core import ErrorCode, WXCallbackError

__all__ = ["SimulatorError"]


class SimulatorError(WXCallbackError):
    """A simulator setting is unusable (unknown platform or mode, missing key, bad number).

    It carries -40002 ("the input cannot be parsed"), the code of every other
    can't-read-this error in the library.
    """

    code = ErrorCode.PARSE_XML_ERROR
