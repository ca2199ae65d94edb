"""The tickets third parties need, kept where every process can read them.

A WeCom suite receives ``suite_ticket`` every ten minutes (valid thirty) and an
open-platform component ``component_verify_ticket`` every ten minutes (valid twelve hours);
each is needed to obtain the suite's / component's access token. Every callback carrying
one is kept in the shared store, the latest per channel and per suite or component, before
the handler runs, so the backend can always read the latest ("component_verify_ticket does
not exist in cache" is the usual complaint of those who keep it in a process's memory).

    ticket = await latest_ticket(store, "suite")        # Ticket(kind, owner, value, received_at)

``wxcallback tickets --config wxcallback.toml`` prints them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from ..messages import ComponentVerifyTicketInstruction, Message, SuiteTicketInstruction
from .stores import Store

__all__ = ["TICKET_VALIDITY", "Ticket", "latest_ticket", "remember_ticket"]

#: how long each kind of ticket is valid, by the platforms' docs (seconds)
TICKET_VALIDITY = {"suite_ticket": 30 * 60.0, "component_verify_ticket": 12 * 60 * 60.0}


@dataclass(frozen=True)
class Ticket:
    kind: str  # suite_ticket | component_verify_ticket
    owner: str  # the SuiteId or the component AppId
    value: str
    received_at: float  # Unix seconds

    @property
    def expires_at(self) -> float:
        return self.received_at + TICKET_VALIDITY[self.kind]


def _ticket_of(message: Message) -> Ticket | None:
    if isinstance(message, SuiteTicketInstruction) and message.suite_ticket:
        return Ticket("suite_ticket", message.suite_id, message.suite_ticket, time.time())
    if isinstance(message, ComponentVerifyTicketInstruction) and message.component_verify_ticket:
        return Ticket("component_verify_ticket", message.app_id, message.component_verify_ticket, time.time())
    return None


def _scope(channel: str, tenant: str) -> str:
    # A channel's templated path serves many accounts: each keeps its own latest ticket.
    return f"ticket:{channel}/{tenant}" if tenant else f"ticket:{channel}"


async def remember_ticket(store: Store, channel: str, message: Message, tenant: str = "") -> Ticket | None:
    """Keep the ticket ``message`` carries (if it is a ticket callback); the ticket, or None.

    ``tenant``: the account the request's templated path captured ("" on an exact path).
    """
    ticket = _ticket_of(message)
    if ticket is None:
        return None
    data = json.dumps(asdict(ticket)).encode()
    ttl = TICKET_VALIDITY[ticket.kind]
    scope = _scope(channel, tenant)
    await store.put_value(scope, data, ttl)
    if ticket.owner:
        await store.put_value(f"{scope}:{ticket.owner}", data, ttl)
    return ticket


async def latest_ticket(store: Store, channel: str, owner: str | None = None, tenant: str = "") -> Ticket | None:
    """The latest unexpired ticket received on ``channel`` (of the suite/component ``owner``;
    on the templated path, for ``tenant``)."""
    data = await store.get_value(_scope(channel, tenant) + (f":{owner}" if owner else ""))
    if data is None:
        return None
    fields = json.loads(data)
    return Ticket(str(fields["kind"]), str(fields["owner"]), str(fields["value"]), float(fields["received_at"]))
