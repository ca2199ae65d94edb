"""``wxcallback outbox`` and ``wxcallback tickets``: what a configuration's store holds for people.

A forwarded message that its backend refuses for good (a 4xx, three times) or that stays
undelivered past its channel's ``forward_max_age`` becomes a *dead letter*: nothing
delivers it any more, and /metrics counts it (``wxcallback_dead_letters``). These
commands list them, give one back to the outbox (after fixing the backend), or drop it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

from ..cli.app import CallbackCommand, CallbackGroup, emit
from .config import ConfigError, ServerConfig, load_config
from .stores import Store, open_store
from .tickets import Ticket, latest_ticket

__all__ = ["outbox", "tickets"]

_T = TypeVar("_T")

_config_option = click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
                              help="The wxcallback.toml whose [server] store to open.")


def _load(config_path: str) -> ServerConfig:
    # As `wxcallback serve` says it: one line, exit status 2.
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


def _with_store(config_path: str, action: Callable[[Store], Awaitable[_T]]) -> _T:
    config = _load(config_path)

    async def run() -> _T:
        store = open_store(config.store)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


@click.group(cls=CallbackGroup)
def outbox() -> None:
    """The outbox: forwarded messages and late replies waiting, and dead letters."""


@outbox.command("list")
@_config_option
@click.option("--channel", help="Only this channel's dead letters.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="List at most this many dead letters.")
def list_dead(config_path: str, channel: str | None, limit: int) -> None:
    """Waiting count and dead letters, oldest first."""
    async def action(store: Store) -> tuple[int, list[Any]]:
        return await store.depth(), await store.list_dead(channel, limit)

    depth, dead = _with_store(config_path, action)
    rows = [{"id": d.id, "channel": d.channel, "attempts": d.attempts, "reason": d.reason,
             "dead_at": datetime.fromtimestamp(d.dead_at, timezone.utc).isoformat(timespec="seconds"),
             "idempotency_key": d.idempotency_key} for d in dead]
    lines = [f"{depth} waiting, {len(rows)} dead letter(s)"]
    lines += [f"{r['id']}  {r['channel']}  {r['dead_at']}  {r['attempts']} tries  {r['reason']}" for r in rows]
    emit("\n".join(lines), waiting=depth, dead_letters=rows)


@outbox.command("show")
@_config_option
@click.argument("item_id")
def show_dead(config_path: str, item_id: str) -> None:
    """Print one dead letter's payload (the JSON the backend or the message API was to get)."""
    async def action(store: Store) -> Any:
        for letter in await store.list_dead(None, 10_000):
            if letter.id == item_id:
                return letter
        return None

    letter = _with_store(config_path, action)
    if letter is None:
        raise click.ClickException(f"no dead letter {item_id!r}")
    payload = json.loads(letter.payload)
    emit(json.dumps(payload, ensure_ascii=False, indent=2), id=letter.id, payload=payload)


@outbox.command("retry")
@_config_option
@click.argument("item_ids", nargs=-1, required=True)
def retry_dead(config_path: str, item_ids: tuple[str, ...]) -> None:
    """Give dead letters back to the outbox, to be delivered at once."""
    async def action(store: Store) -> list[tuple[str, str | None]]:
        return [(item_id, await store.retry_dead(item_id)) for item_id in item_ids]

    results = _with_store(config_path, action)
    missing = [item_id for item_id, new_id in results if new_id is None]
    if missing:
        raise click.ClickException(f"no dead letter {', '.join(missing)}")
    emit("\n".join(f"{old} -> outbox {new}" for old, new in results),
         retried=[{"id": old, "outbox_id": new} for old, new in results])


@outbox.command("drop")
@_config_option
@click.argument("item_ids", nargs=-1, required=True)
def drop_dead(config_path: str, item_ids: tuple[str, ...]) -> None:
    """Forget dead letters for good."""
    async def action(store: Store) -> list[tuple[str, bool]]:
        return [(item_id, await store.drop_dead(item_id)) for item_id in item_ids]

    results = _with_store(config_path, action)
    missing = [item_id for item_id, dropped in results if not dropped]
    if missing:
        raise click.ClickException(f"no dead letter {', '.join(missing)}")
    emit(f"dropped {len(results)}", dropped=[item_id for item_id, _ in results])


@click.command("tickets", cls=CallbackCommand)
@_config_option
@click.option("--channel", help="Only this channel.")
def tickets(config_path: str, channel: str | None) -> None:
    """The latest suite_ticket / component_verify_ticket each channel received."""
    config = _load(config_path)
    names = [c.name for c in config.channels if channel is None or c.name == channel]
    if channel is not None and not names:
        raise click.ClickException(f"no channel {channel!r} in {config_path}")

    async def action(store: Store) -> list[tuple[str, Ticket | None]]:
        return [(name, await latest_ticket(store, name)) for name in names]

    found = [(name, ticket) for name, ticket in _with_store(config_path, action) if ticket is not None]
    rows = [{"channel": name, **asdict(ticket), "expires_at": ticket.expires_at} for name, ticket in found]
    lines = [f"{r['channel']}  {r['kind']}  {r['owner']}  {r['value']}  (expires "
             f"{datetime.fromtimestamp(r['expires_at'], timezone.utc).isoformat(timespec='seconds')})" for r in rows]
    emit("\n".join(lines) if lines else "no ticket received yet", tickets=rows)
