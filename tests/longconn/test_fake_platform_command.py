"""``wxcallback fake-platform`` as a user runs it: a process, a bot, a report."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from wxcallback.longconn import Callback, LongConnection
from wxcallback.messages import TextReply, UpdateTemplateCardReply

from .helpers import WAIT, Bot, run


async def polite(connection: LongConnection, callback: Callback) -> None:
    if callback.eventtype == "enter_chat":
        await connection.respond(callback, TextReply("welcome"))
    elif callback.eventtype == "template_card_event":
        await connection.respond(callback, UpdateTemplateCardReply({"card_type": "text_notice"}))
    elif not callback.is_event:
        async def text():
            yield "echo: "
            yield callback.body.get("text", {}).get("content", "")
        await connection.respond_stream(callback, text())


def test_the_command_pushes_callbacks_prints_the_bots_frames_and_passes_a_good_bot():
    process = subprocess.Popen(
        [sys.executable, "-m", "wxcallback", "fake-platform", "--port", "0", "--bot-id", "b", "--secret", "s",
         "--wait", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split(" on ")[1].split()[0]

        async def scenario() -> None:
            bot = Bot(polite)
            connection = bot.connect(url, bot_id="b", secret="s")
            connection.start()
            await connection.wait_connected(WAIT)
            await asyncio.sleep(1.0)
            await connection.stop()

        run(scenario())
        out, err = process.communicate(timeout=WAIT)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    assert "aibot_subscribe" in out and "bot_id='b'" in out and "'s'" not in out
    assert "aibot_respond_welcome_msg" in out and "aibot_respond_update_msg" in out
    assert 'finish=True 11 bytes "echo: hello"' in out
    assert "0 rules broken, 0 callbacks unanswered" in out
