"""``wxcallback fake-platform``: play WeCom's long-connection side for a bot on this machine.

Point the bot at the printed ``ws://`` address instead of ``wss://openws.work.weixin.qq.com``.
Once it subscribes, the fake pushes the chosen callbacks, prints every frame the bot sends
and every rule it broke, and exits 0 only when none was broken. With ``--forever`` it keeps
serving (and pushing again on each new subscribe) until interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import click

from wxcallback.longconn.frames import Cmd, Frame

from .longconn import EVENT_KINDS, MESSAGE_KINDS, FakePlatform, Received, Violation

__all__ = ["fake_platform"]

_DEFAULT_PUSHES = ("text", "enter_chat", "template_card_event")


def describe(frame: Frame | None, raw: str) -> str:
    """One line for a frame from the bot (never its secret)."""
    if frame is None:
        return f"unreadable frame ({len(raw)} characters)"
    body = dict(frame.body or {})
    head = f"{frame.cmd} req_id={frame.req_id}"
    if frame.cmd == Cmd.SUBSCRIBE:
        return f"{head} bot_id={body.get('bot_id')!r}"
    if frame.cmd == Cmd.UPLOAD_CHUNK:
        return f"{head} chunk_index={body.get('chunk_index')} base64={len(str(body.get('base64_data', '')))} chars"
    stream = body.get("stream")
    if isinstance(stream, dict):
        content = str(stream.get("content", ""))
        preview = content if len(content) <= 40 else content[:39] + "…"
        return (f"{head} stream id={stream.get('id')} finish={stream.get('finish')} "
                f"{len(content.encode('utf-8'))} bytes {json.dumps(preview, ensure_ascii=False)}")
    kind = body.get("msgtype") or body.get("response_type") or body.get("type")
    return f"{head} {kind}" if kind else head


@click.command("fake-platform")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--bot-id", envvar="WXCALLBACK_BOT_ID", show_envvar=True, default="fake-bot-id", show_default=True,
              help="The bot_id the fake accepts.")
@click.option("--secret", envvar="WXCALLBACK_BOT_SECRET", show_envvar=True, default="fake-bot-secret",
              help="The secret the fake accepts (others get 853000).")
@click.option("--push", "pushes", multiple=True, type=click.Choice(MESSAGE_KINDS + EVENT_KINDS),
              help=f"A callback to push after the subscribe (repeatable; default: {', '.join(_DEFAULT_PUSHES)}).")
@click.option("--text", default="hello", show_default=True, help="The text of pushed text messages.")
@click.option("--wait", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds to wait for the bot to connect, and then for its answers.")
@click.option("--forever", is_flag=True, help="Keep serving until interrupted.")
def fake_platform(host: str, port: int, bot_id: str, secret: str, pushes: tuple[str, ...], text: str,
                  wait: float, forever: bool) -> None:
    """Play WeCom's long-connection platform for a smart robot on this machine."""
    chosen = pushes or _DEFAULT_PUSHES
    with contextlib.suppress(KeyboardInterrupt):
        broken = asyncio.run(_serve(host, port, bot_id, secret, chosen, text, wait, forever))
        click.get_current_context().exit(1 if broken else 0)


async def _serve(host: str, port: int, bot_id: str, secret: str, pushes: tuple[str, ...], text: str,
                 wait: float, forever: bool) -> bool:
    def show(record: Received, violations: list[Violation]) -> None:
        click.echo(f"conn#{record.connection} <- {describe(record.frame, record.raw)}")
        for violation in violations:
            click.echo(f"  !! {violation}")

    async with FakePlatform(bot_id=bot_id, secret=secret, host=host, port=port, on_frame=show) as platform:
        click.echo(f"fake WeCom long-connection platform on {platform.url} (bot_id {bot_id!r})")
        pushed_for = 0
        while True:
            try:
                await platform.wait_until(lambda: platform.subscribes_ok > pushed_for and platform.subscribed,
                                          wait if not forever else 365 * 86400)
            except TimeoutError:
                click.echo(f"no bot subscribed within {wait:g} s")
                return True
            pushed_for = platform.subscribes_ok
            for kind in pushes:
                record = await (platform.push_event(kind) if kind in EVENT_KINDS
                                else platform.push_message(kind, text=text))
                click.echo(f"conn#{record.connection} -> {record.cmd} {kind} req_id={record.req_id}")
            if not forever:
                await asyncio.sleep(wait)
                break
        unanswered = [p for p in platform.pushed.values() if p.kind != "feedback_event" and not p.replies]
        click.echo(f"{len(platform.received)} frames from the bot, {len(platform.violations)} rules broken, "
                   f"{len(unanswered)} callbacks unanswered")
        return bool(platform.violations)
