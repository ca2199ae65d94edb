"""WeChat open platform (开放平台) third-party platform notices: InfoType callbacks.

Pushed to the platform's authorization-event URL, signed and encrypted like any
callback under the component's Token and key; the root names the component AppId.
``component_verify_ticket`` arrives every ten minutes (valid twelve hours) and is needed
for the component access token; authorizations are granted, updated and revoked.
"""

from __future__ import annotations

from .fields import integer, mapping, optional_text, text
from .instruction import Instruction

__all__ = [
    "AuthorizedInstruction",
    "ComponentInstruction",
    "ComponentVerifyTicketInstruction",
    "FastRegisterInstruction",
    "UnauthorizedInstruction",
    "UpdateAuthorizedInstruction",
]


class ComponentInstruction(Instruction):
    """An open-platform notice; ``app_id`` is the third-party platform's own AppId."""

    __slots__ = ()
    app_id = text("AppId")


class ComponentVerifyTicketInstruction(ComponentInstruction):
    __slots__ = ()
    component_verify_ticket = text("ComponentVerifyTicket")


class AuthorizedInstruction(ComponentInstruction):
    """An account authorized the platform; exchange ``authorization_code`` for tokens."""

    __slots__ = ()
    authorizer_app_id = text("AuthorizerAppid")
    authorization_code = text("AuthorizationCode")
    authorization_code_expired_time = integer("AuthorizationCodeExpiredTime")
    pre_auth_code = optional_text("PreAuthCode")


class UpdateAuthorizedInstruction(AuthorizedInstruction):
    __slots__ = ()


class UnauthorizedInstruction(ComponentInstruction):
    __slots__ = ()
    authorizer_app_id = text("AuthorizerAppid")


class FastRegisterInstruction(ComponentInstruction):
    """notify_third_fasteregister: a mini program created through fast registration.

    ``status`` 0 is success; ``registered_app_id`` the new mini program.
    """

    __slots__ = ()
    registered_app_id = optional_text("appid")
    status = integer("status")
    auth_code = optional_text("auth_code")
    message = optional_text("msg")
    info = mapping("info")


COMPONENT_CLASSES: dict[str, type[ComponentInstruction]] = {
    "component_verify_ticket": ComponentVerifyTicketInstruction,
    "authorized": AuthorizedInstruction,
    "updateauthorized": UpdateAuthorizedInstruction,
    "unauthorized": UnauthorizedInstruction,
    "notify_third_fasteregister": FastRegisterInstruction,
}
