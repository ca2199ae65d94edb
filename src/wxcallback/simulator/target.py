"""The endpoint under test: its URL and the channel settings the platform holds for it.

A platform sends to one URL with the Token, EncodingAESKey and receive_id set in its
console; an Official Account adds the encryption mode and the data format. Whatever
the platform implies is fixed here once (a WeCom app always encrypts XML, a robot
always encrypts JSON, a signature-only channel never encrypts) so that the rest of
the simulator reads the decisions instead of re-deriving them.

A third party's templated URL (``/open/{appid}``, ``/suite/$CORPID$``) is played for one
``tenant``: the id goes into the URL, and a WeCom suite's data callbacks are sealed for it
(their URL check for the provider's CorpID, ``receive_id``). ``notice_target`` is the same
channel's second URL: a component's authorization events, a suite's instructions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from urllib.parse import urlsplit

from wxcallback.channel import ChannelKind, Mode
from wxcallback.core import EnvelopeFormat, MessageCrypto

from .errors import SimulatorError

__all__ = ["DataFormat", "Target"]


class DataFormat(str, Enum):
    """The body format: XML everywhere, JSON for OA/mini-program JSON pushes and robots."""

    XML = "xml"
    JSON = "json"


# The consoles' placeholders ($APPID$, $CORPID$) and the server's ({appid}, {corpid}).
_PLACEHOLDER = re.compile(r"\$(?:APPID|CORPID)\$|\{(?:appid|corpid)\}")


def _choice(enum: type[Enum], value: object, what: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in enum)
        raise SimulatorError(f"unknown {what} {value!r}; use one of {choices}") from None


@dataclass(frozen=True)
class Target:
    """A callback URL and its channel settings, normalised per platform.

    Build it with :meth:`create`, which accepts the plain strings a command line gives.
    """

    url: str
    platform: ChannelKind
    token: str
    encoding_aes_key: str | None
    receive_id: str
    mode: Mode
    data_format: DataFormat
    # The Official Account's original id (gh_…): ToUserName of its pushes, FromUserName of replies.
    account_id: str
    agent_id: int
    crypto: MessageCrypto | None = field(repr=False, compare=False)
    # the crypto of the URL check when it is sealed for another id than the callbacks (suites)
    url_crypto: MessageCrypto | None = field(default=None, repr=False, compare=False)
    tenant: str = ""

    @classmethod
    def create(
        cls,
        url: str,
        *,
        platform: ChannelKind | str,
        token: str,
        encoding_aes_key: str | None = None,
        receive_id: str = "",
        mode: Mode | str = Mode.SAFE,
        data_format: DataFormat | str = DataFormat.XML,
        account_id: str = "gh_wxcallbacksim",
        agent_id: int = 1000002,
        tenant: str = "",
    ) -> Target:
        chosen = ChannelKind(_choice(ChannelKind, platform, "platform"))
        chosen_mode = Mode(_choice(Mode, mode, "mode"))
        chosen_format = DataFormat(_choice(DataFormat, data_format, "data format"))
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise SimulatorError(f"the target must be an http:// or https:// URL, not {url!r}")
        if not isinstance(token, str) or not token:
            raise SimulatorError("a Token is required: the platform signs every request with it")
        if not isinstance(receive_id, str):
            raise SimulatorError("receive_id must be a str ('' for a smart robot)")
        if not isinstance(agent_id, int) or isinstance(agent_id, bool):
            raise SimulatorError("agent_id must be an int")
        if not isinstance(tenant, str):
            raise SimulatorError("tenant must be a str")
        if _PLACEHOLDER.search(url) and not tenant:
            raise SimulatorError("the URL has a placeholder ({appid}, $CORPID$ …): give the tenant it stands for")
        url = _PLACEHOLDER.sub(tenant, url) if tenant else url
        sealed_for = receive_id
        if chosen is ChannelKind.WECOM_SUITE:
            if not tenant:
                raise SimulatorError("a wecom-suite data callback is sealed for the authorized corp: give its "
                                     "CorpID as the tenant (receive_id is the provider's CorpID)")
            sealed_for = tenant  # the console's $CORPID$ (doc 97172)
        # The channel's kind decides these, whatever the caller asked for.
        if chosen.always_encrypted or chosen.never_encrypted:
            (chosen_mode,) = chosen.default_modes
            chosen_format = DataFormat.JSON if chosen.envelope is EnvelopeFormat.JSON else DataFormat.XML
        crypto: MessageCrypto | None = None
        if chosen_mode is not Mode.PLAINTEXT:
            if not encoding_aes_key:
                raise SimulatorError(f"an EncodingAESKey is required for {chosen.value} in {chosen_mode.value} mode")
            # A bad key raises InvalidKeyError (-40004) here, before anything is sent.
            crypto = MessageCrypto(token, encoding_aes_key, sealed_for)
        url_crypto = None
        if crypto is not None and encoding_aes_key and sealed_for != receive_id:
            url_crypto = MessageCrypto(token, encoding_aes_key, receive_id)
        return cls(url, chosen, token, encoding_aes_key, sealed_for, chosen_mode, chosen_format,
                   account_id, agent_id, crypto, url_crypto, tenant)

    def notice_target(self, url: str, notice_id: str) -> Target:
        """The channel's second URL: notices sealed for ``notice_id`` (component AppID, SuiteID)."""
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise SimulatorError(f"the notice URL must be an http:// or https:// URL, not {url!r}")
        if not notice_id:
            raise SimulatorError("the notices' receive_id is needed (the component AppID, or the SuiteID)")
        assert self.encoding_aes_key is not None  # third parties always encrypt
        crypto = MessageCrypto(self.token, self.encoding_aes_key, notice_id)
        return replace(self, url=url, receive_id=notice_id, crypto=crypto,
                       url_crypto=self.url_crypto or (self.crypto if notice_id != self.receive_id else None),
                       tenant="")

    @property
    def wecom_app_like(self) -> bool:
        """A WeCom app, or a suite's data callbacks: the app's messages and envelope (AgentID)."""
        return self.platform in (ChannelKind.WECOM_APP, ChannelKind.WECOM_SUITE)

    @property
    def encrypts(self) -> bool:
        """Whether callbacks carry an Encrypt value (every mode but plaintext)."""
        return self.mode is not Mode.PLAINTEXT

    @property
    def is_official_account_like(self) -> bool:
        """OA and signature-only channels: plaintext GET echostr and the 3-value signature."""
        return self.platform.plain_url_check

    @property
    def reply_envelope(self) -> EnvelopeFormat:
        """The envelope an encrypted reply must come in."""
        if self.platform.envelope is not EnvelopeFormat.XML:
            return self.platform.envelope
        if self.data_format is DataFormat.JSON:
            return EnvelopeFormat.OA_JSON
        return EnvelopeFormat.XML

    @property
    def reply_echoes_nonce(self) -> bool:
        """OA ("回填URL参数中的nonce") and robots must echo the request nonce; WeCom apps may not."""
        return self.platform in (ChannelKind.OFFICIAL_ACCOUNT, ChannelKind.MINIPROGRAM, ChannelKind.WECOM_ROBOT,
                                 ChannelKind.COMPONENT)

    @property
    def reply_account(self) -> str:
        """FromUserName of a correct XML reply: the OA original id, or the CorpID."""
        return self.receive_id if self.wecom_app_like else self.account_id

    def describe(self) -> dict[str, object]:
        """The settings without secrets, for reports."""
        return {
            "url": self.url, "platform": self.platform.value, "mode": self.mode.value,
            "data_format": self.data_format.value, "receive_id": self.receive_id,
            **({"tenant": self.tenant} if self.tenant else {}),
        }
