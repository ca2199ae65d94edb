"""Events only Official Accounts and mini programs send (MsgType=event).

Publishing and subscription-message results, customer-service sessions, the
mini-program customer-service entry and content-security results. Their item lists
(one ``<List>`` per template) are read as lists whatever their count.
"""

from __future__ import annotations

from typing import Any

from .fields import as_int, as_mapping, as_str, collect, integer, items, optional_text, text
from .xml_events import XmlEvent

__all__ = [
    "KfCloseSessionEvent",
    "KfCreateSessionEvent",
    "KfSwitchSessionEvent",
    "MediaCheckEvent",
    "PublishJobFinishEvent",
    "SubscribeMsgChangeEvent",
    "SubscribeMsgPopupEvent",
    "SubscribeMsgSentEvent",
    "UserEnterTempSessionEvent",
]


class PublishJobFinishEvent(XmlEvent):
    """A 发布 (publish) job finished. publish_status: 0 success, 1 publishing, 2 original
    failed, 3 regular failed, 4 platform review failed, 5 deleted after success, 6 banned."""

    __slots__ = ()
    publish_id = text(("PublishEventInfo", "publish_id"))
    publish_status = integer(("PublishEventInfo", "publish_status"))
    article_id = optional_text(("PublishEventInfo", "article_id"))
    article_urls = items(("PublishEventInfo", "article_detail", "item", "article_url"))
    fail_idx = items(("PublishEventInfo", "fail_idx"))


def _subscriptions(event: XmlEvent, container: str, keys: dict[str, str]) -> list[dict[str, Any]]:
    # XML: <Container><List>…</List><List>…</List></Container>; JSON pushes: "List": [...]
    found = collect(event.raw, ((container, "List"), "List"))
    result: list[dict[str, Any]] = []
    for entry in found:
        values = as_mapping(entry)
        item: dict[str, Any] = {}
        for name, field in keys.items():
            value = values.get(field)
            item[name] = as_int(value) if name in _INT_KEYS else as_str(value)
        result.append(item)
    return result


_INT_KEYS = frozenset({"popup_scene", "error_code"})


class SubscribeMsgPopupEvent(XmlEvent):
    """A user answered the subscription-message pop-up: one entry per template.

    ``subscriptions``: ``[{"template_id", "status" (accept | reject), "popup_scene"}]``.
    """

    __slots__ = ()

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        return _subscriptions(self, "SubscribeMsgPopupEvent", {
            "template_id": "TemplateId", "status": "SubscribeStatusString", "popup_scene": "PopupScene"})


class SubscribeMsgChangeEvent(XmlEvent):
    """A user changed subscriptions in the settings: ``[{"template_id", "status"}]``."""

    __slots__ = ()

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        return _subscriptions(self, "SubscribeMsgChangeEvent", {
            "template_id": "TemplateId", "status": "SubscribeStatusString"})


class SubscribeMsgSentEvent(XmlEvent):
    """Subscription messages were delivered (or not): ``[{"template_id", "msg_id",
    "error_code", "error_status"}]``."""

    __slots__ = ()

    @property
    def results(self) -> list[dict[str, Any]]:
        return _subscriptions(self, "SubscribeMsgSentEvent", {
            "template_id": "TemplateId", "msg_id": "MsgID", "error_code": "ErrorCode",
            "error_status": "ErrorStatus"})


class KfCreateSessionEvent(XmlEvent):
    """A customer-service account took the conversation."""

    __slots__ = ()
    kf_account = text("KfAccount")


class KfCloseSessionEvent(XmlEvent):
    __slots__ = ()
    kf_account = text("KfAccount")


class KfSwitchSessionEvent(XmlEvent):
    __slots__ = ()
    from_kf_account = text("FromKfAccount")
    to_kf_account = text("ToKfAccount")


class UserEnterTempSessionEvent(XmlEvent):
    """Mini program: a user opened the customer-service conversation (``session_from``
    is the button's session-from value)."""

    __slots__ = ()
    session_from = optional_text("SessionFrom")


class MediaCheckEvent(XmlEvent):
    """Mini program: the asynchronous result of a media content check (wxa_media_check).

    ``suggest``: pass | review | risky; ``label``: the category code.
    """

    __slots__ = ()
    app_id = text("appid")
    trace_id = text("trace_id")
    version = integer("version")
    suggest = text(("result", "suggest"))
    label = integer(("result", "label"))
    details = items("detail")


OA_EVENT_CLASSES: dict[str, type[XmlEvent]] = {
    "publishjobfinish": PublishJobFinishEvent,
    "subscribe_msg_popup_event": SubscribeMsgPopupEvent,
    "subscribe_msg_change_event": SubscribeMsgChangeEvent,
    "subscribe_msg_sent_event": SubscribeMsgSentEvent,
    "kf_create_session": KfCreateSessionEvent,
    "kf_close_session": KfCloseSessionEvent,
    "kf_switch_session": KfSwitchSessionEvent,
    "user_enter_tempsession": UserEnterTempSessionEvent,
    "wxa_media_check": MediaCheckEvent,
}
