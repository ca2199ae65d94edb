"""``wxcallback send``: a proactive message or an upload through a bot's long connection.

The process that holds the connection does the sending (``LongConnClient``: a request in
the store's queue, the platform's ack back through it), so this works from any host that
reaches the server's store::

    wxcallback send --config wxcallback.toml --chat zhangsan --markdown "**build** passed"
    wxcallback send --config wxcallback.toml --chat wrkSFfCg… --card card.json
    wxcallback send --config wxcallback.toml --upload report.pdf --type file --chat zhangsan
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from ..core import WXCallbackError
from ..longconn import LongConnError
from ..longconn.frames import media_body
from .config import ChannelConfig, ConfigError, load_config
from .longconn_channel import LongConnClient
from .stores import open_store

__all__ = ["send"]


def _channel(config_path: str, name: str | None) -> tuple[str, ChannelConfig]:
    config = load_config(config_path)
    channels = [c for c in config.channels if c.websocket]
    if name is not None:
        channels = [c for c in channels if c.name == name]
        if not channels:
            raise ConfigError(f"channels.{name}: no long-connection channel of that name in {config_path}")
    if len(channels) != 1:
        raise ConfigError("--channel: the configuration has "
                          f"{len(channels) or 'no'} long-connection channels; name one")
    return config.store, channels[0]


@click.command("send")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The server's TOML configuration (its store and channels).")
@click.option("--channel", help="The long-connection channel (needed when there are several).")
@click.option("--chat", "chatid", help="The chat: a userid for a single chat, or a group's chatid.")
@click.option("--markdown", help="Send this markdown text.")
@click.option("--card", type=click.File("r", encoding="utf-8"), help="Send this template card (a JSON file, - for stdin).")
@click.option("--upload", type=click.Path(exists=True, dir_okay=False), help="Upload this file (media_id valid 3 days).")
@click.option("--type", "media_type", type=click.Choice(["file", "image", "voice", "video"]), default="file",
              show_default=True, help="With --upload: the media type.")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds to wait for the ack.")
def send(config_path: str, channel: str | None, chatid: str | None, markdown: str | None, card: Any,
         upload: str | None, media_type: str, timeout: float) -> None:
    """Send markdown or a card to a chat, or upload media, through the held long connection."""
    given = [option for option, value in (("--markdown", markdown), ("--card", card), ("--upload", upload))
             if value is not None]
    if len(given) != 1:
        raise click.UsageError("give one of --markdown, --card, --upload")
    if upload is None and chatid is None:
        raise click.UsageError("--chat is needed to send a message")
    try:
        store_url, target = _channel(config_path, channel)
        card_data = json.load(card) if card is not None else None
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except ValueError as exc:
        raise click.UsageError(f"--card: not JSON: {exc}") from None

    async def run() -> dict[str, Any]:
        async with open_store(store_url) as store:
            client = LongConnClient(store, target.bot_id, timeout=timeout)
            if upload is not None:
                media = await client.upload_media(Path(upload).read_bytes(), media_type=media_type,
                                                  filename=Path(upload).name)
                result: dict[str, Any] = {"media_id": media.media_id, "type": media.type,
                                          "created_at": media.created_at}
                if chatid is not None:
                    result["sent"] = await client.send_message(chatid, media_body(media_type, media.media_id))
                return result
            assert chatid is not None
            if markdown is not None:
                return await client.send_markdown(chatid, markdown)
            if not isinstance(card_data, dict):
                raise ValueError("--card: the file must hold one JSON object (the template_card)")
            return await client.send_template_card(chatid, card_data)

    try:
        click.echo(json.dumps(asyncio.run(run()), ensure_ascii=False))
    except (LongConnError, WXCallbackError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
