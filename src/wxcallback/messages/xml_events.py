"""Events shared by Official Accounts and WeCom apps (``MsgType=event``).

The ``Event`` value arrives in mixed case (``subscribe``, ``SCAN``, ``CLICK``, ``click``);
``event`` is lower-cased and classes are looked up by that.
"""

from __future__ import annotations

from .fields import collect, floating, integer, items, mapping, optional_text, text
from .xml_messages import XmlMessage

__all__ = [
    "ClickEvent",
    "GenericEvent",
    "LocationEvent",
    "LocationSelectEvent",
    "MassSendJobFinishEvent",
    "PicEvent",
    "PicPhotoOrAlbumEvent",
    "PicSysPhotoEvent",
    "PicWeixinEvent",
    "ScanCodeEvent",
    "ScanCodePushEvent",
    "ScanCodeWaitMsgEvent",
    "ScanEvent",
    "SubscribeEvent",
    "TemplateSendJobFinishEvent",
    "UnsubscribeEvent",
    "ViewEvent",
    "ViewMiniProgramEvent",
    "XmlEvent",
]


class XmlEvent(XmlMessage):
    """Base of Official Account and WeCom app events."""

    __slots__ = ()
    event_key = text("EventKey")


class GenericEvent(XmlEvent):
    """An event this library has no class for; every field is still in ``raw``."""

    __slots__ = ()


class SubscribeEvent(XmlEvent):
    """Follow (OA) / app became visible (WeCom); from a QR code EventKey is ``qrscene_<scene>``."""

    __slots__ = ()
    ticket = optional_text("Ticket")

    @property
    def scene(self) -> str | None:
        """The QR-code scene (EventKey without ``qrscene_``), None for a plain follow."""
        key = self.event_key
        return key[len("qrscene_"):] if key.startswith("qrscene_") else None


class UnsubscribeEvent(XmlEvent):
    __slots__ = ()


class ScanEvent(XmlEvent):
    """A follower scanned a parametric QR code; EventKey is the scene."""

    __slots__ = ()
    ticket = optional_text("Ticket")

    @property
    def scene(self) -> str:
        return self.event_key


class LocationEvent(XmlEvent):
    __slots__ = ()
    latitude = floating("Latitude")
    longitude = floating("Longitude")
    precision = floating("Precision")
    app_type = optional_text("AppType")


class ClickEvent(XmlEvent):
    __slots__ = ()


class ViewEvent(XmlEvent):
    """A menu link was opened; EventKey is the URL."""

    __slots__ = ()
    menu_id = optional_text("MenuId", "MenuID")

    @property
    def url(self) -> str:
        return self.event_key


class ViewMiniProgramEvent(ViewEvent):
    __slots__ = ()


class ScanCodeEvent(XmlEvent):
    __slots__ = ()
    scan_type = text(("ScanCodeInfo", "ScanType"))
    scan_result = text(("ScanCodeInfo", "ScanResult"))


class ScanCodePushEvent(ScanCodeEvent):
    __slots__ = ()


class ScanCodeWaitMsgEvent(ScanCodeEvent):
    __slots__ = ()


class PicEvent(XmlEvent):
    __slots__ = ()
    count = integer(("SendPicsInfo", "Count"))

    @property
    def pic_md5_sums(self) -> list[str]:
        """PicMd5Sum of each picture sent, in order.

        Pushes repeat ``<PicList>`` once per picture or ``<item>`` inside one PicList;
        both read the same.
        """
        return [value for value in collect(self.raw, (("SendPicsInfo", "PicList", "item", "PicMd5Sum"),))
                if isinstance(value, str)]


class PicSysPhotoEvent(PicEvent):
    __slots__ = ()


class PicPhotoOrAlbumEvent(PicEvent):
    __slots__ = ()


class PicWeixinEvent(PicEvent):
    __slots__ = ()


class LocationSelectEvent(XmlEvent):
    __slots__ = ()
    latitude = floating(("SendLocationInfo", "Location_X"))
    longitude = floating(("SendLocationInfo", "Location_Y"))
    scale = integer(("SendLocationInfo", "Scale"))
    label = text(("SendLocationInfo", "Label"))
    poiname = text(("SendLocationInfo", "Poiname"))


class TemplateSendJobFinishEvent(XmlEvent):
    """A template message was delivered (``success``) or not (``failed:user block``, …)."""

    __slots__ = ()
    status = text("Status")


class MassSendJobFinishEvent(XmlEvent):
    __slots__ = ()
    status = text("Status")
    total_count = integer("TotalCount")
    filter_count = integer("FilterCount")
    sent_count = integer("SentCount")
    error_count = integer("ErrorCount")
    copyright_check_result = mapping("CopyrightCheckResult")
    article_url_result = items(("ArticleUrlResult", "ResultList", "item"))


EVENT_CLASSES: dict[str, type[XmlEvent]] = {
    "subscribe": SubscribeEvent,
    "unsubscribe": UnsubscribeEvent,
    "scan": ScanEvent,
    "location": LocationEvent,
    "click": ClickEvent,
    "view": ViewEvent,
    "view_miniprogram": ViewMiniProgramEvent,
    "scancode_push": ScanCodePushEvent,
    "scancode_waitmsg": ScanCodeWaitMsgEvent,
    "pic_sysphoto": PicSysPhotoEvent,
    "pic_photo_or_album": PicPhotoOrAlbumEvent,
    "pic_weixin": PicWeixinEvent,
    "location_select": LocationSelectEvent,
    "templatesendjobfinish": TemplateSendJobFinishEvent,
    "masssendjobfinish": MassSendJobFinishEvent,
}
