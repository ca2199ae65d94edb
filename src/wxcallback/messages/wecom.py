"""WeCom-only callbacks: app events (doc 90240) and third-party suite instructions (§5).

Suite instruction callbacks (suite_ticket, create_auth, change_auth, cancel_auth,
reset_permanent_code, …) have no MsgType: their root carries SuiteId, InfoType and
TimeStamp, and they must be answered with the literal ``success``.
"""

from __future__ import annotations

from typing import Any

from .fields import as_items, as_mapping, integer, lookup, mapping, optional_text, text
from .instruction import Instruction
from .wecom_contact import (
    CustomerAcquisitionEvent,
    ExternalChatChange,
    ExternalChatChangeEvent,
    ExternalContactChange,
    ExternalContactChangeEvent,
    ExternalTagChange,
    ExternalTagChangeEvent,
)
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


class EnterAgentEvent(XmlEvent):
    __slots__ = ()


class BatchJobResultEvent(XmlEvent):
    __slots__ = ()
    job_id = text(("BatchJob", "JobId"))
    job_type = text(("BatchJob", "JobType"))
    err_code = integer(("BatchJob", "ErrCode"))
    err_msg = text(("BatchJob", "ErrMsg"))


class ContactChange(XmlMessage):
    """The fields of an address-book change (doc 90970), as an app event or a suite instruction.

    ChangeType: create_user, update_user, delete_user, create_party, update_party,
    delete_party, update_tag. A tag change lists the members added and removed.
    """

    __slots__ = ()
    change_type = text("ChangeType")
    user_id = optional_text("UserID")
    new_user_id = optional_text("NewUserID")
    name = optional_text("Name")
    party_id = optional_text("Id")
    parent_id = optional_text("ParentId")
    tag_id = optional_text("TagId")
    add_user_items = optional_text("AddUserItems")
    del_user_items = optional_text("DelUserItems")
    add_party_items = optional_text("AddPartyItems")
    del_party_items = optional_text("DelPartyItems")


class ChangeContactEvent(XmlEvent, ContactChange):
    """Contacts changed (FromUserName is ``sys``); ChangeType says what (create_user, …)."""

    __slots__ = ()


class KfMsgOrEvent(XmlEvent):
    """微信客服: new messages or events wait for the account ``open_kf_id`` (doc 94670).

    The callback carries no message: fetch them with ``kf/sync_msg`` and this ``token``
    (valid 10 minutes). It has no FromUserName.
    """

    __slots__ = ()
    token = text("Token")
    open_kf_id = text("OpenKfId")


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
    "kf_msg_or_event": KfMsgOrEvent,
    "change_external_contact": ExternalContactChangeEvent,
    "change_external_chat": ExternalChatChangeEvent,
    "change_external_tag": ExternalTagChangeEvent,
    "customer_acquisition": CustomerAcquisitionEvent,
}


class SuiteInstruction(Instruction):
    """A WeCom suite instruction callback (doc 90600); ``event`` is its InfoType, lower-cased.

    ``msg_type`` is ``"instruction"``. The only accepted answer is the literal
    ``success`` (``no_reply`` says so).
    """

    __slots__ = ()
    suite_id = text("SuiteId")
    auth_corp_id = optional_text("AuthCorpId")


class SuiteTicketInstruction(SuiteInstruction):
    """suite_ticket, pushed every 10 minutes, valid 30 minutes."""

    __slots__ = ()
    suite_ticket = text("SuiteTicket")


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


class ChangeContactInstruction(SuiteInstruction, ContactChange):
    """An authorized corp's address book changed (the suite form of change_contact)."""

    __slots__ = ()


class RegisterCorpInstruction(SuiteInstruction):
    """A corp registered through the suite's registration link (InfoType register_corp)."""

    __slots__ = ()
    service_corp_id = text("ServiceCorpId")
    register_code = text("RegisterCode")
    access_token = text(("ContactSync", "AccessToken"))
    expires_in = integer(("ContactSync", "ExpiresIn"))
    auth_user_id = text(("AuthUserInfo", "UserId"))
    state = optional_text("State")
    template_id = optional_text("TemplateId")


class ExternalContactChangeInstruction(SuiteInstruction, ExternalContactChange):
    """Customer contact change in an authorized corp (the suite form of change_external_contact)."""

    __slots__ = ()


class ExternalChatChangeInstruction(SuiteInstruction, ExternalChatChange):
    __slots__ = ()


class ExternalTagChangeInstruction(SuiteInstruction, ExternalTagChange):
    __slots__ = ()


INSTRUCTION_CLASSES: dict[str, type[SuiteInstruction]] = {
    "suite_ticket": SuiteTicketInstruction,
    "create_auth": CreateAuthInstruction,
    "change_auth": ChangeAuthInstruction,
    "cancel_auth": CancelAuthInstruction,
    "reset_permanent_code": ResetPermanentCodeInstruction,
    "change_contact": ChangeContactInstruction,
    "register_corp": RegisterCorpInstruction,
    "change_external_contact": ExternalContactChangeInstruction,
    "change_external_chat": ExternalChatChangeInstruction,
    "change_external_tag": ExternalTagChangeInstruction,
}
