"""What kind of callback URL a channel is, and what the kind decides.

A channel is one callback URL configured on a platform's console. Its kind fixes the
messages it carries, the envelope that wraps their ciphertext, whether every request
is encrypted and how the URL check is signed; only an Official Account leaves a choice
(its encryption mode). The server's configuration and the simulator both read these
decisions here instead of re-deriving them from strings.
"""

from __future__ import annotations

from enum import Enum

from .core import EnvelopeFormat
from .messages import Platform

__all__ = ["ChannelKind", "Mode", "Transport"]


class Mode(str, Enum):
    """Official Account message encryption modes (消息加解密方式)."""

    PLAINTEXT = "plaintext"
    COMPATIBLE = "compatible"
    SAFE = "safe"


class Transport(str, Enum):
    """How a channel's callbacks arrive: POSTs to a callback URL, or a WebSocket the bot opens.

    The WebSocket (long connection) exists for smart robots only (WeCom doc 101463): no
    public URL, no Token or EncodingAESKey; the bot subscribes with its BotID and Secret.
    """

    HTTP = "http"
    WEBSOCKET = "websocket"

    def __str__(self) -> str:
        return self.value


class ChannelKind(str, Enum):
    """The kinds of channel; the values are the ``platform`` strings of the configuration."""

    OFFICIAL_ACCOUNT = "official-account"
    WECOM_APP = "wecom-app"
    WECOM_ROBOT = "wecom-robot"
    # Mini program / mini game message push: the Official Account's crypto and URL check,
    # XML or JSON (data_format), customer-service messages and events.
    MINIPROGRAM = "miniprogram"
    # The WeChat 3-value signature over plaintext Official Account XML, never encrypted
    # (third-party gateways such as Huawei Cloud AICC's WeChat channel).
    SIGNATURE_ONLY = "signature-only"
    # An open-platform third-party platform (开放平台第三方平台): its own notices on the
    # authorization-event URL, its authorized accounts' messages on the message URL, all under
    # the component's Token, key and AppID; safe mode and XML only (open-platform message_push).
    COMPONENT = "component"
    # A WeCom third-party suite (or 代开发 template): the data callback URL for the authorized
    # corps' messages and the instruction URL for suite_ticket and authorization changes.
    WECOM_SUITE = "wecom-suite"

    def __str__(self) -> str:
        return self.value

    @property
    def platform(self) -> Platform:
        """The platform whose messages the channel carries (a signature-only gateway: OA XML)."""
        return _PLATFORM[self]

    @property
    def envelope(self) -> EnvelopeFormat:
        """The envelope of an encrypted request and reply: JSON for robots, XML otherwise."""
        return EnvelopeFormat.JSON if self is ChannelKind.WECOM_ROBOT else EnvelopeFormat.XML

    @property
    def always_encrypted(self) -> bool:
        """WeCom apps and robots encrypt every request; an Official Account per its mode."""
        return self in (ChannelKind.WECOM_APP, ChannelKind.WECOM_ROBOT, ChannelKind.COMPONENT,
                        ChannelKind.WECOM_SUITE)

    @property
    def never_encrypted(self) -> bool:
        """A signature-only gateway sends plaintext only."""
        return self is ChannelKind.SIGNATURE_ONLY

    @property
    def plain_url_check(self) -> bool:
        """The URL check carries the 3-value ``signature`` and a plaintext ``echostr``.

        Official Accounts (in every mode) and signature-only gateways; WeCom sends
        ``msg_signature`` and an encrypted echostr.
        """
        return self in (ChannelKind.OFFICIAL_ACCOUNT, ChannelKind.MINIPROGRAM, ChannelKind.SIGNATURE_ONLY,
                        ChannelKind.COMPONENT)

    @property
    def has_modes(self) -> bool:
        """Whether the console offers a choice of encryption mode (plaintext, compatible, safe)."""
        return self in (ChannelKind.OFFICIAL_ACCOUNT, ChannelKind.MINIPROGRAM)

    @property
    def json_allowed(self) -> bool:
        """Whether the platform lets the console choose JSON as the data format."""
        return self in (ChannelKind.OFFICIAL_ACCOUNT, ChannelKind.MINIPROGRAM)

    def envelope_for(self, data_format: str) -> EnvelopeFormat:
        """The envelope of a channel of this kind in ``data_format`` ("xml" or "json")."""
        if data_format == "json" and self.json_allowed:
            return EnvelopeFormat.OA_JSON
        return self.envelope

    @property
    def transports(self) -> frozenset[Transport]:
        """The transports the kind can use: a smart robot also has the long connection."""
        if self is ChannelKind.WECOM_ROBOT:
            return frozenset(Transport)
        return frozenset({Transport.HTTP})

    @property
    def default_modes(self) -> frozenset[Mode]:
        """The modes a channel accepts when its configuration names none."""
        return frozenset({Mode.PLAINTEXT}) if self.never_encrypted else frozenset({Mode.SAFE})


_PLATFORM = {
    ChannelKind.OFFICIAL_ACCOUNT: Platform.OFFICIAL_ACCOUNT,
    ChannelKind.WECOM_APP: Platform.WECOM_APP,
    ChannelKind.WECOM_ROBOT: Platform.WECOM_ROBOT,
    ChannelKind.MINIPROGRAM: Platform.MINIPROGRAM,
    ChannelKind.SIGNATURE_ONLY: Platform.OFFICIAL_ACCOUNT,
    ChannelKind.COMPONENT: Platform.OFFICIAL_ACCOUNT,
    ChannelKind.WECOM_SUITE: Platform.WECOM_APP,
}
