"""WeCom customer contact (客户联系) callbacks: external contacts, customer groups, tags.

They come to an app's callback as events (``MsgType=event``) and to a suite as
instructions (``InfoType``), with the same fields; the field sets below serve both.
Several arrive in the same second for one member (a customer added then edited, a
group's members changing), which is why no key of chosen fields identifies them.
"""

from __future__ import annotations

from .fields import integer, items, optional_text, text
from .xml_events import XmlEvent
from .xml_messages import XmlMessage

__all__ = [
    "CustomerAcquisitionEvent",
    "ExternalChatChange",
    "ExternalChatChangeEvent",
    "ExternalContactChange",
    "ExternalContactChangeEvent",
    "ExternalTagChange",
    "ExternalTagChangeEvent",
]


class ExternalContactChange(XmlMessage):
    """change_external_contact (doc 92130). ChangeType: add_external_contact,
    edit_external_contact, add_half_external_contact, del_external_contact,
    del_follow_user, transfer_fail."""

    __slots__ = ()
    change_type = text("ChangeType")
    user_id = text("UserID")
    external_user_id = text("ExternalUserID")
    state = optional_text("State")
    welcome_code = optional_text("WelcomeCode")
    #: transfer_fail: customer_refused | customer_limit_exceed
    fail_reason = optional_text("FailReason")


class ExternalContactChangeEvent(XmlEvent, ExternalContactChange):
    __slots__ = ()


class ExternalChatChange(XmlMessage):
    """change_external_chat (doc 92130). ChangeType: create, update (UpdateDetail:
    add_member, del_member, change_owner, change_name, change_notice), dismiss."""

    __slots__ = ()
    chat_id = text("ChatId")
    change_type = text("ChangeType")
    update_detail = optional_text("UpdateDetail")
    join_scene = integer("JoinScene")
    quit_scene = integer("QuitScene")
    member_change_count = integer("MemChangeCnt")
    #: the UserIDs / ExternalUserIDs that joined or left
    member_change_list = items(("MemChangeList", "Item"))
    last_member_version = optional_text("LastMemVer")
    current_member_version = optional_text("CurMemVer")


class ExternalChatChangeEvent(XmlEvent, ExternalChatChange):
    __slots__ = ()


class ExternalTagChange(XmlMessage):
    """change_external_tag (doc 92130). ChangeType: create, update, delete, shuffle;
    TagType: tag | tag_group."""

    __slots__ = ()
    tag_id = text("Id")
    tag_type = text("TagType")
    change_type = text("ChangeType")
    strategy_id = integer("StrategyId")


class ExternalTagChangeEvent(XmlEvent, ExternalTagChange):
    __slots__ = ()


class CustomerAcquisitionEvent(XmlEvent):
    """获客助手 (customer acquisition links). ChangeType: balance_low, balance_exhausted,
    quota_expire_soon, link_unavailable, delete_link, customer_start_chat, …"""

    __slots__ = ()
    change_type = text("ChangeType")
    link_id = optional_text("LinkId")
    user_id = optional_text("UserID")
    external_user_id = optional_text("ExternalUserID")
