"""``Instruction``: the base of callbacks that carry an InfoType instead of a MsgType.

WeCom suites (third-party apps) and the WeChat open platform (third-party platforms,
开放平台) push their notices this way: a ticket every ten minutes, an authorization
granted, changed or revoked, a contact change. The root names the suite or component
(``SuiteId`` / ``AppId``) instead of ToUserName/FromUserName, and the only accepted
answer is the literal ``success``.
"""

from __future__ import annotations

from typing import ClassVar

from .fields import Path, text
from .replies import NoReply, SuccessReply
from .xml_messages import XmlMessage

__all__ = ["Instruction"]

_SUCCESS = SuccessReply()


class Instruction(XmlMessage):
    """An InfoType callback; ``msg_type`` is ``"instruction"``, ``event`` the InfoType, lower-cased."""

    __slots__ = ()
    # register_corp names the service provider's corp instead of a suite
    _source_paths: ClassVar[tuple[Path, ...]] = ("SuiteId", "AppId", "ServiceCorpId")
    _target_paths: ClassVar[tuple[Path, ...]] = ("SuiteId", "AppId", "ServiceCorpId")
    _create_time_paths: ClassVar[tuple[Path, ...]] = ("TimeStamp", "CreateTime")

    info_type = text("InfoType")

    @property
    def no_reply(self) -> NoReply:
        return _SUCCESS

    def _identity_label(self) -> str:
        return f"instruction:{self.event}"
