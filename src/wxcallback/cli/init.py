"""``wxcallback init``: a new project that serves as written, and what to paste in the console.

Writes ``wxcallback.toml`` (one channel, a fresh Token and EncodingAESKey, the SQLite store)
and a handler module beside it, then prints the values to enter in the chosen platform's
console and the two commands to serve and to test locally. ``wxcallback serve`` imports the
handler from the working directory, so both work from the project directory with no edit.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import string
from dataclasses import dataclass
from pathlib import Path

import click

from wxcallback.core import generate_encoding_aes_key

from .app import main

__all__ = ["ConsoleGuide", "Project", "generate_token", "init", "render_config", "render_handler"]

# The consoles accept 3..32 letters and digits (OA) or up to 32 (WeCom): 32 from the CSPRNG.
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_TOKEN_LENGTH = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLATFORMS = ("official-account", "wecom-app", "wecom-robot")


def generate_token() -> str:
    """A Token for the console: 32 letters and digits from the OS CSPRNG."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(_TOKEN_LENGTH))


@dataclass(frozen=True)
class Project:
    """What ``init`` writes: one channel on one platform."""

    platform: str
    receive_id: str
    token: str
    encoding_aes_key: str
    channel: str = "main"
    path: str = "/wechat"
    host: str = "127.0.0.1"
    port: int = 8000
    module: str = "bot"

    @property
    def local_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True)
class ConsoleGuide:
    """Where a platform's callback settings are, and what each field takes."""

    title: str
    where: str
    id_label: str
    id_where: str
    mode: str
    notes: tuple[str, ...]


GUIDES = {
    "official-account": ConsoleGuide(
        title="WeChat Official Account",
        where="mp.weixin.qq.com > 设置与开发 (Settings and Development) > 基本配置 (Basic configuration) > "
              "服务器配置 (Server configuration) > 修改配置 (Modify); on the newer developer platform: "
              "微信开发者平台 > 我的业务 > 公众号 > 消息与事件推送",
        id_label="AppID",
        id_where="基本配置 > 开发者ID(AppID), starts with wx",
        mode="消息加解密方式 (message encryption): 安全模式 (safe mode); 数据格式 (data format): XML",
        notes=("Submit, then 启用 (Enable): the console sends the URL check at once.",
               "The URL must be http:// on port 80 or https:// on port 443.",
               "Enabling the server URL turns off the console's own auto-reply and custom menu."),
    ),
    "wecom-app": ConsoleGuide(
        title="WeCom self-built app",
        where="work.weixin.qq.com admin > 应用管理 (App Management) > your app > 接收消息 (Receive Messages) > "
              "设置API接收 (Set API Receiving)",
        id_label="CorpID",
        id_where="我的企业 (My Company) > 企业信息 (Company Information) > 企业ID (Company ID), starts with ww",
        mode="no mode to choose: WeCom always encrypts",
        notes=("Save: WeCom sends the URL check at once and must get the answer within 1 s.",
               "The URL's domain must belong to the company (可信域名 / trusted domain) for new apps."),
    ),
    "wecom-robot": ConsoleGuide(
        title="WeCom smart robot (API mode)",
        where="work.weixin.qq.com admin > 智能机器人 (Smart Robot) > 创建机器人 (Create) > API 模式 (API mode, "
              "URL callback; not 长连接 / long connection)",
        id_label="receive_id",
        id_where='none: a smart robot\'s receive_id is "" (doc 101033)',
        mode="no mode to choose: the robot always encrypts (JSON)",
        notes=("Save: WeCom sends the URL check at once and must get the answer within 1 s.",),
    ),
}


def render_config(project: Project) -> str:
    """The ``wxcallback.toml`` for ``project`` (it holds the secrets: keep it private)."""
    receive_id = (f'receive_id = "{project.receive_id}"' + "     # the AppID" if project.platform == "official-account"
                  else f'receive_id = "{project.receive_id}"' + "     # the CorpID" if project.platform == "wecom-app"
                  else '# receive_id: a smart robot\'s is "" (the default)')
    lines = [
        "# Written by `wxcallback init`. It holds the Token and EncodingAESKey: keep it out of version",
        "# control, or replace the values with \"${ENV_NAME}\" and set them in the environment.",
        "# Every key: docs/configuration.md in the wxcallback repository.",
        "",
        "[server]",
        f'host = "{project.host}"',
        f"port = {project.port}",
        'store = "sqlite:///wxcallback.db"     # relative to the directory serve starts in',
        "",
        f"[channels.{project.channel}]",
        f'path = "{project.path}"',
        f'platform = "{project.platform}"',
        f'token = "{project.token}"',
        f'encoding_aes_key = "{project.encoding_aes_key}"',
        receive_id,
    ]
    if project.platform == "official-account":
        lines.append('modes = ["safe"]                      # as chosen in the console')
    lines.append(f'handler = "{project.module}:router"          # {project.module}.py, beside this file')
    return "\n".join(lines) + "\n"


def render_handler(project: Project) -> str:
    """A handler module that answers as it is, for ``project``'s platform."""
    welcome = {
        "official-account": ("subscribe", "Thanks for following!"),
        "wecom-app": ("enter_agent", "Welcome to the app."),
        "wecom-robot": ("enter_chat", "Hello, send me a message."),
    }[project.platform]
    return f'''"""What answers the {GUIDES[project.platform].title} channel (wxcallback.toml, channels.{project.channel}).

``wxcallback serve`` imports this module from the directory it starts in, as
handler = "{project.module}:router". A handler gets a typed message and returns a reply: a string
is a text reply of the platform's kind, None is "no reply". More: docs/messages.md.
"""

from wxcallback.messages import Router

router = Router()


@router.text
def answer_text(message):
    return f"You said: {{message.content}}"


@router.event("{welcome[0]}")
def welcome(message):
    return "{welcome[1]}"
'''


def simulate_command(project: Project) -> str:
    """The ``wxcallback simulate`` line that plays the platform against the local server."""
    parts = ["wxcallback", "simulate", project.local_url, "--platform", project.platform, "--token", project.token,
             "--key", project.encoding_aes_key, "--receive-id", project.receive_id]
    return " ".join(shlex.quote(part) for part in parts)


def console_text(project: Project, public_url: str, directory: Path) -> str:
    """What to paste into the console, then how to serve and test."""
    guide = GUIDES[project.platform]
    url = public_url.rstrip("/") + project.path
    lines = [
        f"In the {guide.title} console: {guide.where}",
        f"  URL:             {url}",
        f"  Token:           {project.token}",
        f"  EncodingAESKey:  {project.encoding_aes_key}",
        f"  Mode:            {guide.mode}",
        f"  ({guide.id_label} in wxcallback.toml: {project.receive_id!r}; {guide.id_where})",
        *(f"  {note}" for note in guide.notes),
        "",
        f"The console reaches {url}; put a TLS proxy there that forwards to {project.local_url}",
        "(docs/deployment.md). Start the server first: the console checks the URL when you save.",
        "",
        "Serve (from the project directory: serve imports the handler module from there):",
        *([f"  cd {shlex.quote(str(directory))}"] if directory != Path(".") else []),
        "  wxcallback serve --config wxcallback.toml",
        "Test it locally, as the platform would (another terminal):",
        f"  {simulate_command(project)}",
    ]
    return "\n".join(lines)


def _ask_receive_id(platform: str, given: str | None, interactive: bool) -> str:
    if platform == "wecom-robot":
        if given:
            raise click.UsageError('a smart robot has no receive_id (it is ""): drop --receive-id')
        return ""
    if given is None and interactive:
        label = "AppID of the Official Account (wx…)" if platform == "official-account" else "CorpID (ww…)"
        given = click.prompt(label, type=str).strip()
    if not given:
        name = "the AppID" if platform == "official-account" else "the CorpID"
        raise click.UsageError(f"--receive-id: {name} is required for {platform}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", given):
        raise click.UsageError(f"--receive-id: {given!r} does not look like an AppID / CorpID")
    return given


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--platform", type=click.Choice(_PLATFORMS), help="Which console the callback is set up in.")
@click.option("--receive-id", help="The Official Account's AppID, or the WeCom CorpID (none for a smart robot).")
@click.option("--public-url", help="The public https:// base URL the platform will call (e.g. https://bot.example.com).")
@click.option("--path", "callback_path", default="/wechat", show_default=True, help="The callback path.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Local listen port.")
@click.option("--channel", default="main", show_default=True, help="The channel's name in the configuration.")
@click.option("--module", default="bot", show_default=True, help="Name of the handler module to write.")
@click.option("--token", help="Use this Token instead of a generated one (3..32 letters and digits).")
@click.option("--key", "--encoding-aes-key", "key", help="Use this EncodingAESKey instead of a generated one.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--no-input", is_flag=True, help="Never prompt: take flags and defaults only.")
def init(directory: Path, platform: str | None, receive_id: str | None, public_url: str | None, callback_path: str,
         port: int, channel: str, module: str, token: str | None, key: str | None, force: bool,
         no_input: bool) -> None:
    """Start a project: wxcallback.toml, a handler module, and what to paste into the console.

    Asks for what the flags do not give (platform, AppID / CorpID, public URL) unless
    --no-input; generates the Token and EncodingAESKey from the OS CSPRNG.
    """
    interactive = not no_input
    if platform is None:
        if not interactive:
            raise click.UsageError("--platform is required with --no-input")
        platform = click.prompt("Platform", type=click.Choice(_PLATFORMS), default="wecom-app")
    receive_id = _ask_receive_id(platform, receive_id, interactive)
    if public_url is None:
        public_url = (click.prompt("Public HTTPS URL the platform will call (scheme and host)",
                                   default="https://your.domain") if interactive else "https://your.domain")
    if not re.match(r"https?://[^/\s]+", public_url):
        raise click.UsageError(f"--public-url: {public_url!r} must be an http(s):// URL")
    if not callback_path.startswith("/"):
        raise click.UsageError(f"--path: must start with '/', not {callback_path!r}")
    for option, value in (("--channel", channel), ("--module", module)):
        if not _NAME.match(value):
            raise click.UsageError(f"{option}: {value!r} must be a Python identifier")
    if token is not None and not re.fullmatch(r"[A-Za-z0-9]{3,32}", token):
        raise click.UsageError("--token: 3 to 32 letters and digits, as the consoles accept")
    if key is not None:
        from wxcallback.core import EncodingAESKey, WXCallbackError

        try:
            EncodingAESKey(key)
        except WXCallbackError as exc:
            raise click.UsageError(f"--encoding-aes-key: {exc}") from None
    project = Project(platform=platform, receive_id=receive_id, token=token or generate_token(),
                      encoding_aes_key=key or generate_encoding_aes_key(), channel=channel, path=callback_path,
                      port=port, module=module)

    directory.mkdir(parents=True, exist_ok=True)
    config_file, handler_file = directory / "wxcallback.toml", directory / f"{module}.py"
    existing = [str(p) for p in (config_file, handler_file) if p.exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} already exist(s): use --force to overwrite")
    _write_private(config_file, render_config(project))
    handler_file.write_text(render_handler(project), encoding="utf-8")
    click.echo(f"wrote {config_file} (Token and EncodingAESKey inside, mode 600) and {handler_file}\n")
    click.echo(console_text(project, public_url, directory))


def _write_private(path: Path, text: str) -> None:
    # Secrets: readable by the owner only, from the moment the file exists.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
