"""The ``wxcallback`` command group, its error reporting and its output.

Every command of the group is a :class:`CallbackCommand`: it takes ``--json`` and turns a
library error into exit status 1 and one line on stderr, ``<code> <explanation>``, the
official return code first so a log line can be matched against the SDK docs. Usage
errors stay click's (exit status 2). New commands join with ``@main.command()`` and get
the same behaviour.
"""

from __future__ import annotations

import json
from typing import Any

import click

from wxcallback.core import WXCallbackError

__all__ = ["CallbackCommand", "CallbackGroup", "emit", "main"]

_JSON_KEY = "wxcallback.json"


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    ctx.meta[_JSON_KEY] = value


def _wants_json(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(_JSON_KEY, False))


def _write(text: str, *, err: bool = False) -> None:
    # Text that came from the command line or from stdin may carry undecodable bytes as
    # lone surrogates; surrogateescape writes those bytes back out unchanged.
    click.echo(text.encode("utf-8", "surrogateescape") + b"\n", err=err, nl=False)


def _dumps(document: dict[str, Any]) -> str:
    text = json.dumps(document, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be UTF-8; \u escapes keep the output valid JSON.
        text = json.dumps(document)
    return text


def emit(text: str, **fields: Any) -> None:
    """Print a command's result: ``text`` normally, ``{"ok": true, **fields}`` with --json."""
    if _wants_json(click.get_current_context()):
        _write(_dumps({"ok": True, **fields}))
    else:
        _write(text)


def _fail(ctx: click.Context, code: int | None, explanation: str) -> None:
    line = " ".join(explanation.split())  # one line, whatever the message holds
    if _wants_json(ctx):
        _write(_dumps({"ok": False, "code": code, "error": line}))
    # 0 is no official code (a configuration or usage problem, not the protocol's): no number then.
    _write(f"{code} {line}" if code else f"error: {line}", err=True)
    ctx.exit(1)


class CallbackCommand(click.Command):
    """A command with ``--json`` whose library errors become ``<code> <explanation>``, exit 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["--json", "json_output"],
                is_flag=True,
                expose_value=False,
                callback=_remember_json,
                help='Print one JSON object: {"ok": true, ...} or {"ok": false, "code": ..., "error": ...}.',
            )
        )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except WXCallbackError as err:
            _fail(ctx, int(err.code), str(err))
        except Exception as exc:  # noqa: BLE001 - no input may end in a traceback
            _fail(ctx, None, f"unexpected {type(exc).__name__}: {exc} (this is a bug in wxcallback)")
        return None


class CallbackGroup(click.Group):
    """The command group; its commands are CallbackCommands unless they say otherwise."""

    command_class = CallbackCommand


@click.group(cls=CallbackGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wxcallback", prog_name="wxcallback")
def main() -> None:
    """WeChat / WeCom callback security (WXBizMsgCrypt) from the command line.

    Start a project (init), run the callback server (serve), play the platform
    against it (simulate, fake-platform, fake-api), look into its store (outbox,
    tickets) or send through a robot's long connection (send); verify a callback
    URL, decrypt a logged callback, encrypt a reply, compute a signature or make a
    new EncodingAESKey. The Token and the EncodingAESKey can come from
    WXCALLBACK_TOKEN and WXCALLBACK_ENCODING_AES_KEY so they stay out of shell
    history. Exit status: 0 success, 1 failure (a protocol error: stderr "<code>
    <explanation>"; simulate: a check failed), 2 usage or configuration error.
    """
