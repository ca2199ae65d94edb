"""WeCom-only callbacks: app events (doc 90240) and third-party suite instructions (§5).

Suite instruction callbacks (suite_ticket, create_auth, change_auth, cancel_auth,
reset_permanent_code, …) have no MsgType: their root carries SuiteId, InfoType and
TimeStamp, and they must be answered with the literal ``success``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .fields import Path, as_items, as_mapping, integer, lookup, mapping, optional_text, text
from .replies import NoReply, SuccessReply
from .xml_events import EVENT_CLASSES, XmlEvent
from .xml_messages import XmlMessage

__all__ = [
    "ActiveRestoredEvent",
    "BatchJobResultEvent",
    "CancelAuthInstruction",
    "ChangeAuthInstruction",
    "ChangeContactEvent",
    "CloseInactiveAgentEvent",
    "CreateAuthInstruction",
    "EnterAgentEvent",
    "InactiveAlertEvent",
    "LowActiveAlertEvent",
    "LowActiveEvent",
    "OpenApprovalChangeEvent",
    "ReopenInactiveAgentEvent",
    "ResetPermanentCodeInstruction",
    "ShareAgentChangeEvent",
    "ShareChainChangeEvent",
    "SuiteInstruction",
    "SuiteTicketInstruction",
    "TaskCardClickEvent",
    "TemplateCardEvent",
    "TemplateCardMenuEvent",
]

_SUCCESS = SuccessReply()


class EnterAgentEvent(XmlEvent):
    __slots__ = ()


class BatchJobResultEvent(XmlEvent):
    __slots__ = ()
    job_id = text(("BatchJob", "JobId"))
    job_type = text(("BatchJob", "JobType"))
    err_code = integer(("BatchJob", "ErrCode"))
    err_msg = text(("BatchJob", "ErrMsg"))


class ChangeContactEvent(XmlEvent):
    """Contacts changed (FromUserName is ``sys``); ChangeType says what (create_user, …)."""

    __slots__ = ()
    change_type = text("ChangeType")
    user_id = optional_text("UserID")
    new_user_id = optional_text("NewUserID")
    party_id = optional_text("Id")
    tag_id = optional_text("TagId")

    @property
    def dedup_key(self) -> str:
        return f"{super().dedup_key}:{self.change_type}:{self.user_id or self.party_id or self.tag_id or ''}"


def selected_items(container: Any, item_key: str, question_key: str, options_key: str,
                   option_key: str) -> list[dict[str, Any]]:
    """SelectedItems/SelectedItem[] (XML) or selected_items.selected_item[] (robot JSON) as dicts."""
    found: list[dict[str, Any]] = []
    for item in as_items(as_mapping(container).get(item_key)):
        if not isinstance(item, dict):
            continue
        key = item.get(question_key)
        options = as_items(as_mapping(item.get(options_key)).get(option_key))
        found.append({"question_key": key if isinstance(key, str) else "",
                      "option_ids": [o if isinstance(o, str) else str(o) for o in options
                                     if isinstance(o, (str, int)) and not isinstance(o, bool)]})
    return found


class TemplateCardEvent(XmlEvent):
    """A user clicked a template card; answer with UpdateButtonReply/UpdateTemplateCardReply."""

    __slots__ = ()
    task_id = text("TaskId")
    card_type = text("CardType")
    response_code = text("ResponseCode")

    @property
    def selected_items(self) -> list[dict[str, Any]]:
        """[{"question_key": …, "option_ids": [...]}, …] for vote / multiple-choice cards."""
        return selected_items(lookup(self.raw, ("SelectedItems",)), "SelectedItem", "QuestionKey",
                              "OptionIds", "OptionId")


class TemplateCardMenuEvent(TemplateCardEvent):
    __slots__ = ()


class TaskCardClickEvent(XmlEvent):
    """Deprecated task card click (its example spells AgentId, handled by ``agent_id``)."""

    __slots__ = ()
    task_id = text("TaskId")


class OpenApprovalChangeEvent(XmlEvent):
    __slots__ = ()
    approval_info = mapping("ApprovalInfo")


class ShareAgentChangeEvent(XmlEvent):
    __slots__ = ()


class ShareChainChangeEvent(XmlEvent):
    __slots__ = ()


class InactiveAlertEvent(XmlEvent):
    __slots__ = ()
    effect_time = integer("EffectTime")


class CloseInactiveAgentEvent(XmlEvent):
    __slots__ = ()


class ReopenInactiveAgentEvent(XmlEvent):
    __slots__ = ()


class LowActiveAlertEvent(XmlEvent):
    __slots__ = ()


class LowActiveEvent(XmlEvent):
    __slots__ = ()


class ActiveRestoredEvent(XmlEvent):
    __slots__ = ()


WECOM_EVENT_CLASSES: dict[str, type[XmlEvent]] = {
    **EVENT_CLASSES,
    "enter_agent": EnterAgentEvent,
    "batch_job_result": BatchJobResultEvent,
    "change_contact": ChangeContactEvent,
    "template_card_event": TemplateCardEvent,
    "template_card_menu_event": TemplateCardMenuEvent,
    "taskcard_click": TaskCardClickEvent,
    "open_approval_change": OpenApprovalChangeEvent,
    "share_agent_change": ShareAgentChangeEvent,
    "share_chain_change": ShareChainChangeEvent,
    "inactive_alert": InactiveAlertEvent,
    "close_inactive_agent": CloseInactiveAgentEvent,
    "reopen_inactive_agent": ReopenInactiveAgentEvent,
    "low_active_alert": LowActiveAlertEvent,
    "low_active": LowActiveEvent,
    "active_restored": ActiveRestoredEvent,
}


class SuiteInstruction(XmlMessage):
    """A suite instruction callback (or an open-platform push); ``event`` is its InfoType, lower-cased.

    ``msg_type`` is ``"instruction"``. The only accepted answer is the literal
    ``success`` (``no_reply`` says so).
    """

    __slots__ = ()
    # open-platform pushes (component_verify_ticket, …) name the AppId instead
    _source_paths: ClassVar[tuple[Path, ...]] = ("SuiteId", "AppId")
    _target_paths: ClassVar[tuple[Path, ...]] = ("SuiteId", "AppId")
    _create_time_paths: ClassVar[tuple[Path, ...]] = ("TimeStamp", "CreateTime")

    suite_id = text("SuiteId", "AppId")
    info_type = text("InfoType")
    auth_corp_id = optional_text("AuthCorpId")

    @property
    def no_reply(self) -> NoReply:
        return _SUCCESS

    @property
    def dedup_key(self) -> str:
        create_time = self.create_time
        second = "" if create_time is None else create_time
        return f"instruction:{self.suite_id}:{self.info_type}:{second}:{self.auth_corp_id or ''}"


class SuiteTicketInstruction(SuiteInstruction):
    """suite_ticket, pushed every 10 minutes, valid 30 minutes."""

    __slots__ = ()
    suite_ticket = text("SuiteTicket")

    @property
    def dedup_key(self) -> str:
        return f"{super().dedup_key}:{self.suite_ticket}"


class CreateAuthInstruction(SuiteInstruction):
    __slots__ = ()
    auth_code = text("AuthCode")
    state = optional_text("State")


class ChangeAuthInstruction(SuiteInstruction):
    __slots__ = ()
    state = optional_text("State")


class CancelAuthInstruction(SuiteInstruction):
    __slots__ = ()


class ResetPermanentCodeInstruction(SuiteInstruction):
    __slots__ = ()
    auth_code = text("AuthCode")


INSTRUCTION_CLASSES: dict[str, type[SuiteInstruction]] = {
    "suite_ticket": SuiteTicketInstruction,
    "create_auth": CreateAuthInstruction,
    "change_auth": ChangeAuthInstruction,
    "cancel_auth": CancelAuthInstruction,
    "reset_permanent_code": ResetPermanentCodeInstruction,
}
