"""``wxcallback simulate``: play WeChat / WeCom against a callback URL from the command line.

Prints one line per check (or ``--json``) and exits 0 only when every check passed.
With ``--repeat`` / ``--duration`` it runs the load mode instead and prints throughput
and latency percentiles. A setting it cannot use exits 1 with one line on stderr, like every
other wxcallback command: ``<code> <explanation>`` for a protocol error (a key the protocol
refuses, -40004), ``error: <explanation>`` for any other mistake.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from wxcallback.channel import ChannelKind, Mode
from wxcallback.core import WXCallbackError

from .runner import GET_DEADLINE, OVERSIZE_BYTES, POST_DEADLINE, STREAM_INTERVAL, STREAM_TIMEOUT, Simulator
from .target import DataFormat

__all__ = ["simulate"]

_POSITIVE = click.FloatRange(min=0, min_open=True)


def _choices(enum: Any) -> click.Choice[str]:
    return click.Choice([member.value for member in enum])


@click.command("simulate")
@click.argument("url")
@click.option("--platform", type=_choices(ChannelKind), required=True, help="The platform to play.")
@click.option("--token", envvar="WXCALLBACK_TOKEN", show_envvar=True, required=True,
              help="The Token set in the console.")
@click.option("--key", "--encoding-aes-key", "encoding_aes_key", envvar="WXCALLBACK_ENCODING_AES_KEY", show_envvar=True,
              help="The 43-character EncodingAESKey (not needed in plaintext mode).")
@click.option("--receive-id", default="", show_default=True,
              help="AppID (Official Account), CorpID (WeCom app), or '' (smart robot).")
@click.option("--mode", type=_choices(Mode), default=Mode.SAFE.value, show_default=True,
              help="Official Account encryption mode.")
@click.option("--format", "data_format", type=_choices(DataFormat), default=DataFormat.XML.value,
              show_default=True, help="Official Account data format.")
@click.option("--account-id", default="gh_wxcallbacksim", show_default=True,
              help="The Official Account's original id (ToUserName of its pushes).")
@click.option("--agent-id", type=int, default=1000002, show_default=True, help="The WeCom app's AgentID.")
@click.option("--tenant", default="", help="Third parties: the authorized account the URL's {appid} / $APPID$ "
              "(component) or {corpid} / $CORPID$ (wecom-suite: its data callbacks are sealed for it) stands for.")
@click.option("--notice-url", default=None, help="Third parties: the second URL (a component's authorization-event "
              "URL, a suite's instruction URL), sent its ticket and authorization notices.")
@click.option("--notice-id", default="", help="The notices' receive_id: a suite's SuiteID (a component's notices "
              "use --receive-id, its AppID).")
@click.option("--retries", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Send each callback this many times (same query and body); every reply must match.")
@click.option("--hostile", is_flag=True, help="Also send hostile requests, which must be refused with a 4xx.")
@click.option("--get-deadline", type=_POSITIVE, default=GET_DEADLINE, show_default=True,
              help="Seconds the URL check may take.")
@click.option("--post-deadline", type=_POSITIVE, default=POST_DEADLINE, show_default=True,
              help="Seconds a callback may take.")
@click.option("--stream-interval", type=_POSITIVE, default=STREAM_INTERVAL, show_default=True,
              help="Seconds between robot stream refreshes.")
@click.option("--stream-timeout", type=_POSITIVE, default=STREAM_TIMEOUT, show_default=True,
              help="Seconds a robot stream may take to finish.")
@click.option("--oversize-bytes", type=click.IntRange(min=1), default=OVERSIZE_BYTES, show_default=True,
              help="Body size of the oversized hostile request.")
@click.option("--repeat", type=click.IntRange(min=1), default=None,
              help="Load mode: send this many text callbacks.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Load mode: concurrent connections.")
@click.option("--duration", type=_POSITIVE, default=None, help="Load mode: stop after this many seconds.")
@click.option("--retry-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Load mode: share of requests that resend an earlier callback.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
def simulate(
    url: str, platform: str, token: str, encoding_aes_key: str | None, receive_id: str, mode: str,
    data_format: str, account_id: str, agent_id: int, tenant: str, notice_url: str | None, notice_id: str,
    retries: int, hostile: bool, get_deadline: float,
    post_deadline: float, stream_interval: float, stream_timeout: float, oversize_bytes: int,
    repeat: int | None, concurrency: int, duration: float | None, retry_fraction: float, as_json: bool,
) -> None:
    """Play WeChat / WeCom against the callback URL and check every answer.

    Sends the URL check, the platform's common callbacks (signed and encrypted as the
    platform does), resends and robot stream refreshes, and judges status, time,
    signature, decryption, receive_id and reply format.
    """
    try:
        simulator = Simulator(
            url, platform=platform, token=token, encoding_aes_key=encoding_aes_key, receive_id=receive_id,
            mode=mode, data_format=data_format, account_id=account_id, agent_id=agent_id,
            get_deadline=get_deadline, post_deadline=post_deadline, stream_interval=stream_interval,
            stream_timeout=stream_timeout, oversize_bytes=oversize_bytes, tenant=tenant, notice_url=notice_url,
            notice_id=notice_id,
        )
        passed = asyncio.run(_run(simulator, retries=retries, hostile=hostile, repeat=repeat,
                                  concurrency=concurrency, duration=duration, retry_fraction=retry_fraction,
                                  as_json=as_json))
    except WXCallbackError as exc:
        line = " ".join(str(exc).split())
        if as_json:
            click.echo(json.dumps({"ok": False, "code": int(exc.code), "error": line}, ensure_ascii=False))
        # A setting the simulator cannot use has no official code (0): no number then.
        click.echo(f"{int(exc.code)} {line}" if int(exc.code) else f"error: {line}", err=True)
        click.get_current_context().exit(1)
    click.get_current_context().exit(0 if passed else 1)


async def _run(
    simulator: Simulator, *, retries: int, hostile: bool, repeat: int | None, concurrency: int,
    duration: float | None, retry_fraction: float, as_json: bool,
) -> bool:
    async with simulator:
        if repeat is not None or duration is not None:
            load = await simulator.load(repeat, concurrency, duration=duration, retry_fraction=retry_fraction)
            click.echo(json.dumps(load.to_dict(), ensure_ascii=False, indent=2) if as_json else load.summary())
            return load.passed
        report = await simulator.run_suite(retries=retries, hostile=hostile)
        click.echo(report.to_json() if as_json else report.table())
        return report.passed
