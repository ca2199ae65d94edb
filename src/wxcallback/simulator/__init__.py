"""Play the WeChat / WeCom platform against a callback URL and judge its answers.

The simulator sends what the platform sends, byte for byte (URL checks, signed and
encrypted callbacks in every mode, identical resends, robot stream refreshes) and
checks each answer as the platform would: status, deadline, envelope, signature,
decryption, receive_id, echoed nonce and the reply message. On request it also sends
hostile requests, which must be refused, and it has a load mode.

    >>> async with Simulator(url, platform="official-account", token=TOKEN,
    ...                      encoding_aes_key=KEY, receive_id=APPID, mode="safe") as sim:  # doctest: +SKIP
    ...     report = await sim.run_suite(retries=3, hostile=True)
    ...     print(report.table())

From the command line: ``wxcallback simulate URL --platform wecom-app --token … --key …``.
"""

from wxcallback.channel import ChannelKind, Mode

from .errors import SimulatorError
from .load import LoadReport
from .report import Check, Exchange, Report
from .runner import Answer, Simulator
from .scenarios import Callback, Scenarios
from .target import DataFormat, Target

__all__ = [
    "Answer",
    "Callback",
    "ChannelKind",
    "Check",
    "DataFormat",
    "Exchange",
    "LoadReport",
    "Mode",
    "Report",
    "Scenarios",
    "SimulatorError",
    "Simulator",
    "Target",
]
