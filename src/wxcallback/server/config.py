"""The server's TOML configuration: any number of channels on one host.

::

    [server]
    host = "127.0.0.1"
    port = 8000
    workers = 2
    store = "sqlite:///wxcallback.db"      # memory:// | sqlite:///path | redis://host:6379/0
    max_body_bytes = 1048576

    [channels.oa]
    path = "/wechat/oa"
    platform = "official-account"          # official-account | wecom-app | wecom-robot | miniprogram |
                                           # signature-only | component | wecom-suite
    token = "${OA_TOKEN}"                  # ${NAME} takes the value from the environment
    encoding_aes_key = "${OA_AES_KEY}"
    previous_keys = []                     # keys still accepted after a rotation
    receive_id = "wx5823bf96d3bd56c7"      # or receive_ids = [...], or skip_receive_id_check = true
    modes = ["safe"]                       # Official Accounts: plaintext | compatible | safe
    handler = "myapp.handlers:router"      # or forward = "http://127.0.0.1:9000/wechat"

    [channels.platform]                    # an open-platform third-party platform
    platform = "component"
    path = "/open/{appid}"                 # 消息与事件接收URL: /open/$APPID$ on the console
    auth_path = "/open/auth"               # 授权事件接收URL: component_verify_ticket, authorizations
    token = "${COMPONENT_TOKEN}"
    encoding_aes_key = "${COMPONENT_AES_KEY}"
    receive_id = "wx134c8103faa5a59e"      # the component AppID

    [channels.assistant]                   # a smart robot over its long connection: no URL, no keys
    platform = "wecom-robot"
    transport = "websocket"                # default "http"
    bot_id = "${WECOM_BOT_ID}"
    secret = "${WECOM_BOT_SECRET}"
    handler = "assistant.bot:router"

A bad configuration is refused at start with a line naming the key
(``channels.oa.encoding_aes_key: EncodingAESKey must be 43 characters …``), never
with a traceback; secret values never appear in that line.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..channel import ChannelKind, Mode, Transport
from ..core import MessageCrypto, ReceiveIdPolicy, WXCallbackError
from .routes import PathTemplate, TemplateError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "ChannelConfig",
    "ChannelKind",
    "ConfigError",
    "Mode",
    "ServerConfig",
    "Transport",
    "load_config",
    "parse_config",
]

DEFAULT_MAX_BODY = 1024 * 1024
# The platforms drop the connection after 5 s and retry (OA passive-reply doc, WeCom doc 90238); answer
# with a margin for the network and the reply's own encryption.
PLATFORM_DEADLINE = 5.0
DEFAULT_DEADLINE_MARGIN = 1.0
# The platform's long-connection endpoint (WeCom doc 101463); private deployments have their own.
DEFAULT_LONGCONN_URL = "wss://openws.work.weixin.qq.com"


class ConfigError(WXCallbackError, ValueError):
    """The configuration cannot be used; the message names the key at fault.

    Not a protocol failure, so it carries no official code (0).
    """


_ENCRYPTED_MODES = frozenset({Mode.COMPATIBLE, Mode.SAFE})
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ChannelConfig:
    """One callback URL: an account on a platform, and what answers its messages."""

    name: str
    path: str
    kind: ChannelKind
    token: str
    encoding_aes_key: str | None = None
    previous_keys: tuple[str, ...] = ()
    receive_id: ReceiveIdPolicy = field(default_factory=lambda: ReceiveIdPolicy.exact(""))
    modes: frozenset[Mode] = frozenset({Mode.SAFE})
    digest: str = "sha1"
    handler: str | None = None
    forward: str | None = None
    forward_timeout: float = 3.0
    # how long one delivery by the delivery worker (a retry) may take: a slow backend's late answer
    forward_retry_timeout: float = 30.0
    # how long an undelivered forwarded message is retried before it is a dead letter
    forward_max_age: float = 86400.0
    deadline: float = PLATFORM_DEADLINE - DEFAULT_DEADLINE_MARGIN
    replay_window: float = 300.0
    dedup_ttl: float = 300.0
    debug: bool = False
    # the data format chosen in the console ("xml" or "json": mini programs, Official Accounts)
    data_format: str = "xml"
    # A component's authorization-event URL, a WeCom suite's instruction URL ("": none), and
    # the suite's SuiteID (the receive_id of its instruction callbacks).
    auth_path: str = ""
    instruction_path: str = ""
    suite_id: str = ""
    # a WeCom app's AgentID: tells apart apps sharing a path under one Token, and is what
    # every app message sent (a late reply) carries
    agent_id: int | None = None
    # The long connection (transport = "websocket"): a smart robot's BotID and Secret, and
    # the connection's timing; see docs/longconn.md. Unused by callback-URL channels.
    transport: Transport = Transport.HTTP
    bot_id: str = ""
    secret: str = field(default="", repr=False)
    url: str = DEFAULT_LONGCONN_URL
    heartbeat_interval: float = 30.0
    missed_pings: int = 2
    ack_timeout: float = 5.0
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    max_subscribe_failures: int = 5
    lease_ttl: float = 15.0
    stream_interval: float = 0.5
    # A reply that missed the deadline (server/reply_sender.py): "send" it through the
    # platform's message API, "keep" it for a retry, or "drop" it; and what sending needs.
    late_reply: str = "keep"
    late_reply_max_age: float = 3600.0
    app_secret: str = field(default="", repr=False)
    corp_secret: str = field(default="", repr=False)
    api_base: str = ""
    # A WeCom suite's Secret: with suite_id and the suite_ticket, the start of its token chain
    # (server/third_party.py); a component's chain starts from its app_secret.
    suite_secret: str = field(default="", repr=False)

    @property
    def websocket(self) -> bool:
        """Whether the channel's callbacks come over the long connection (no callback URL)."""
        return self.transport is Transport.WEBSOCKET

    @property
    def accepts_encrypted(self) -> bool:
        """Whether encrypted requests are accepted (always, but for plaintext-only channels)."""
        return bool(self.modes & _ENCRYPTED_MODES)

    @property
    def accepts_plaintext(self) -> bool:
        return Mode.PLAINTEXT in self.modes

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the channel answers: its own, then its auth or instruction path."""
        return (self.path, *(p for p in (self.auth_path, self.instruction_path) if p))

    def crypto(self, receive_id: ReceiveIdPolicy | None = None) -> MessageCrypto | None:
        """The MessageCrypto for this channel (None for plaintext-only channels).

        ``receive_id`` replaces the configured policy: a suite's instruction callbacks carry
        its SuiteID, its data callbacks each authorized corp's id.
        """
        if self.encoding_aes_key is None:
            return None
        return MessageCrypto(self.token, self.encoding_aes_key, receive_id or self.receive_id,
                             previous_keys=self.previous_keys, envelope=self.kind.envelope_for(self.data_format),
                             digest=self.digest)

    def __repr__(self) -> str:
        where = f"bot_id={self.bot_id!r}" if self.websocket else f"path={self.path!r}"
        return f"ChannelConfig(name={self.name!r}, {where}, kind={self.kind.value!r})"


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``wxcallback serve`` needs."""

    channels: tuple[ChannelConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    store: str = "sqlite:///wxcallback.db"
    max_body_bytes: int = DEFAULT_MAX_BODY
    log_level: str = "info"
    shutdown_grace: float = 10.0
    # The platforms send a whole callback at once; a body trickling in holds a worker.
    body_timeout: float = 10.0
    # What one connection may cost (see server/connections.py): the request head's size and
    # field count, the time it may take to arrive, and open connections per worker.
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 5.0
    max_connections: int = 1000
    # where /healthz and /metrics are served: "" the callback port, "host:port", or "off"
    ops_listen: str = ""
    # Where handler modules are imported from first (relative to the working directory).
    app_dir: str = "."


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Read and check a TOML configuration file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, environ)


def parse_config(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Check a configuration already loaded as a mapping (the TOML document)."""
    env = os.environ if environ is None else environ
    _only(data, "", {"server", "channels"})
    server = _table(data.get("server", {}), "server")
    _only(server, "server", {"host", "port", "workers", "store", "max_body_bytes", "log_level",
                             "shutdown_grace", "body_timeout", "max_header_bytes", "max_headers",
                             "header_timeout", "max_connections", "ops_listen", "app_dir"})
    channels_table = _table(data.get("channels", {}), "channels")
    if not channels_table:
        raise ConfigError("channels: at least one channel is needed ([channels.NAME] with path, platform, token)")
    channels = tuple(_channel(name, _table(value, f"channels.{name}"), env) for name, value in channels_table.items())
    paths: dict[str, list[ChannelConfig]] = {}
    bots: dict[str, str] = {}
    for channel in channels:
        if channel.websocket:
            # Two connections for one bot evict each other (one connection per bot, doc 101463).
            if channel.bot_id in bots:
                raise ConfigError(f"channels.{channel.name}.bot_id: {channel.bot_id!r} is already used by "
                                  f"channels.{bots[channel.bot_id]} (the platform keeps one connection per bot)")
            bots[channel.bot_id] = channel.name
            continue
        for key, path in zip(("path", "auth_path" if channel.auth_path else "instruction_path"), channel.paths):
            for other in paths.get(path, ()):
                _check_shared_path(channel, other, key, path)
            paths.setdefault(path, []).append(channel)
    return ServerConfig(
        channels=channels,
        host=_get(server, "server", "host", str, "127.0.0.1"),
        port=_int(server, "server", "port", 8000, 0, 65535),
        workers=_int(server, "server", "workers", 1, 1, 256),
        store=_expand(_get(server, "server", "store", str, "sqlite:///wxcallback.db"), "server.store", env),
        max_body_bytes=_int(server, "server", "max_body_bytes", DEFAULT_MAX_BODY, 1024, 1 << 31),
        log_level=_get(server, "server", "log_level", str, "info").lower(),
        shutdown_grace=_number(server, "server", "shutdown_grace", 10.0, 0.0, 3600.0),
        body_timeout=_number(server, "server", "body_timeout", 10.0, 0.1, 3600.0),
        max_header_bytes=_int(server, "server", "max_header_bytes", 64 * 1024, 1024, 1 << 24),
        max_headers=_int(server, "server", "max_headers", 100, 8, 10_000),
        header_timeout=_number(server, "server", "header_timeout", 5.0, 0.1, 600.0),
        max_connections=_int(server, "server", "max_connections", 1000, 1, 1_000_000),
        ops_listen=_ops_listen(server),
        app_dir=_get(server, "server", "app_dir", str, "."),
    )


_SHAREABLE = (ChannelKind.WECOM_APP, ChannelKind.WECOM_ROBOT)


def _check_shared_path(channel: ChannelConfig, other: ChannelConfig, key: str, path: str) -> None:
    """Several WeCom apps or robots may share a path if the request tells which one it is for.

    The platform sends no channel name: the Token that verifies the signature picks the
    channel, and between WeCom apps under one Token the envelope's AgentID does.
    """
    where = f"channels.{channel.name}.{key}"
    used = f"{path!r} is already used by channels.{other.name}"
    if key != "path" or path not in (other.path,) or channel.kind is not other.kind or channel.kind not in _SHAREABLE:
        raise ConfigError(f"{where}: {used} (only WeCom apps, or robots, of one kind may share a path)")
    if channel.token != other.token:
        return
    if channel.kind is ChannelKind.WECOM_APP and channel.agent_id is not None and other.agent_id is not None:
        if channel.agent_id != other.agent_id:
            return
        raise ConfigError(f"{where}: {used} with the same Token and agent_id {channel.agent_id}: channels sharing "
                          "a path need distinct tokens, or distinct agent_id")
    raise ConfigError(f"{where}: {used} with the same Token: channels sharing a path need distinct tokens"
                      + (", or distinct agent_id on each" if channel.kind is ChannelKind.WECOM_APP else "")
                      + " (the signature is all that tells them apart)")


def parse_listen(value: str) -> tuple[str, int] | None:
    """``ops_listen`` as (host, port); ``""`` (the callback port) and ``"off"`` give None."""
    if value in ("", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port (or \"off\")")
    return host.strip("[]") or "127.0.0.1", int(port)


def _ops_listen(server: Mapping[str, Any]) -> str:
    value: str = _get(server, "server", "ops_listen", str, "")
    try:
        parse_listen(value)
    except ValueError as exc:
        raise ConfigError(f"server.ops_listen: {exc}") from None
    return value


# What only a callback URL has, and what only the long connection has: each is refused on
# the other transport, naming the key.
_HTTP_KEYS = {
    "path", "token", "encoding_aes_key", "previous_keys", "receive_id", "receive_ids", "skip_receive_id_check",
    "modes", "require_encryption", "digest", "replay_window", "data_format", "auth_path", "instruction_path",
    "suite_id", "agent_id", "late_reply", "late_reply_max_age", "app_secret", "corp_secret", "api_base",
    "suite_secret",
}
_WEBSOCKET_KEYS = {
    "bot_id", "secret", "url", "heartbeat_interval", "missed_pings", "ack_timeout", "reconnect_delay",
    "reconnect_max_delay", "max_subscribe_failures", "lease_ttl", "stream_interval",
}
_CHANNEL_KEYS = _HTTP_KEYS | _WEBSOCKET_KEYS | {
    "platform", "transport", "handler", "forward", "forward_timeout", "forward_retry_timeout", "forward_max_age", "deadline",
    "dedup_ttl", "debug",
}


def _channel(name: str, table: Mapping[str, Any], env: Mapping[str, str]) -> ChannelConfig:
    where = f"channels.{name}"
    _only(table, where, _CHANNEL_KEYS)
    kind = _kind(_get(table, where, "platform", str, None), where)
    transport = _transport(table, where, kind)
    if transport is Transport.WEBSOCKET:
        return _websocket_channel(name, table, env, kind)
    for refused in sorted(_WEBSOCKET_KEYS & set(table)):
        raise ConfigError(f"{where}.{refused}: only a long-connection channel (transport = \"websocket\") "
                          f"takes {refused}")
    path = _path(table, where, "path", None)
    auth_path, instruction_path, suite_id, agent_id = _third_party(table, where, kind, path, env)
    token = _expand(_get(table, where, "token", str, None), f"{where}.token", env)
    if not token:
        raise ConfigError(f"{where}.token: must not be empty")

    modes = _modes(table, where, kind)
    needs_key = bool(modes & _ENCRYPTED_MODES)
    key = table.get("encoding_aes_key")
    encoding_aes_key = _expand(_get(table, where, "encoding_aes_key", str, None), f"{where}.encoding_aes_key",
                               env) if key is not None or needs_key else None
    previous = tuple(
        _expand(_str(value, f"{where}.previous_keys[{i}]"), f"{where}.previous_keys[{i}]", env)
        for i, value in enumerate(_list(table.get("previous_keys", []), f"{where}.previous_keys"))
    )
    policy = _receive_id(table, where, kind, env, required=needs_key)
    handler, forward = _answerer(table, where, env)
    deadline = _number(table, where, "deadline", PLATFORM_DEADLINE - DEFAULT_DEADLINE_MARGIN, 0.05, 30.0)
    replay_window = _number(table, where, "replay_window", 300.0, 0.0, 86400.0)
    # An encrypted request replayed inside the window is answered from the dedup cache
    # (its signature binds timestamp, nonce and ciphertext): the cache must outlive the window.
    dedup_ttl = _number(table, where, "dedup_ttl", max(300.0, replay_window), 30.0, 86400.0)
    if dedup_ttl < replay_window:
        raise ConfigError(f"{where}.dedup_ttl ({dedup_ttl:g} s) is shorter than {where}.replay_window "
                          f"({replay_window:g} s): a request replayed after the dedup entry expired would run the "
                          "handler again; make dedup_ttl at least replay_window")
    config = ChannelConfig(
        name=name,
        path=path,
        kind=kind,
        token=token,
        encoding_aes_key=encoding_aes_key,
        previous_keys=previous,
        receive_id=policy,
        modes=modes,
        digest=_get(table, where, "digest", str, "sha1"),
        handler=handler,
        forward=forward,
        forward_timeout=_number(table, where, "forward_timeout", min(3.0, deadline), 0.05, 60.0),
        forward_retry_timeout=_number(table, where, "forward_retry_timeout", 30.0, 1.0, 300.0),
        forward_max_age=_number(table, where, "forward_max_age", 86400.0, 60.0, 30 * 86400.0),
        deadline=deadline,
        replay_window=replay_window,
        dedup_ttl=dedup_ttl,
        debug=_get(table, where, "debug", bool, False),
        data_format=_data_format(table, where, kind),
        auth_path=auth_path,
        instruction_path=instruction_path,
        suite_id=suite_id,
        agent_id=agent_id,
        **_late_reply(table, where, kind, env, agent_id),
    )
    # Build the crypto once now so a bad key or digest is refused at start, naming the key.
    try:
        config.crypto()
    except WXCallbackError as exc:
        field_name = "digest" if exc.code == -40003 else "receive_id" if exc.code == -40005 else "encoding_aes_key"
        raise ConfigError(f"{where}.{field_name}: {exc}") from None
    return config


def _path(table: Mapping[str, Any], where: str, key: str, default: str | None) -> str:
    path: str = _get(table, where, key, str, default)
    # The consoles write the placeholders $APPID$ / $CORPID$: a path pasted from one means the same.
    path = path.replace("$APPID$", "{appid}").replace("$CORPID$", "{corpid}")
    if not path.startswith("/"):
        raise ConfigError(f"{where}.{key}: must start with '/', not {path!r}")
    return path


# Which kinds take a path template, and the placeholder each takes: the consoles that offer one.
_TEMPLATES = {ChannelKind.COMPONENT: "appid", ChannelKind.WECOM_SUITE: "corpid"}
# The keys of a third party's second URL, and the one kind that takes each.
_THIRD_PARTY_KEYS = {"auth_path": ChannelKind.COMPONENT, "instruction_path": ChannelKind.WECOM_SUITE,
                     "suite_id": ChannelKind.WECOM_SUITE}


def _third_party(table: Mapping[str, Any], where: str, kind: ChannelKind, path: str,
                 env: Mapping[str, str]) -> tuple[str, str, str, int | None]:
    """A channel's second URL, SuiteID and AgentID, checked against its kind and path."""
    try:
        template = PathTemplate.parse(path)
    except TemplateError as exc:
        raise ConfigError(f"{where}.path: {exc}") from None
    placeholder = _TEMPLATES.get(kind)
    if template is not None and template.placeholder != placeholder:
        raise ConfigError(f"{where}.path: {{{template.placeholder}}} is for "
                          + " or ".join(f"{k} channels ({{{p}}})" for k, p in _TEMPLATES.items())
                          + f", not {kind}")
    if kind is ChannelKind.WECOM_SUITE and template is None:
        raise ConfigError(f"{where}.path: a wecom-suite data callback path needs {{corpid}} (the console's "
                          "$CORPID$): each authorized corp's messages are encrypted for its own CorpID")
    for key, owner in _THIRD_PARTY_KEYS.items():
        if key in table and kind is not owner:
            raise ConfigError(f"{where}.{key}: only a {owner} channel takes {key}")
    own = {ChannelKind.COMPONENT: "auth_path", ChannelKind.WECOM_SUITE: "instruction_path"}.get(kind)
    second = _path(table, where, own, None) if own else ""
    if "{" in second or "}" in second:
        raise ConfigError(f"{where}.{own}: must be an exact path (the console's URL has no placeholder here)")
    if second and second == path:
        raise ConfigError(f"{where}.{own}: must differ from path")
    suite_id = ""
    if kind is ChannelKind.WECOM_SUITE:
        suite_id = _expand(_get(table, where, "suite_id", str, None), f"{where}.suite_id", env)
        if not suite_id:
            raise ConfigError(f"{where}.suite_id: must not be empty (the SuiteID, or the 代开发 template id)")
    agent_id = None
    if "agent_id" in table:
        if kind is not ChannelKind.WECOM_APP:
            raise ConfigError(f"{where}.agent_id: only a wecom-app channel has an AgentID")
        agent_id = _int(table, where, "agent_id", 0, 1, 2**31 - 1)
    return (second, "", suite_id, agent_id) if kind is ChannelKind.COMPONENT else ("", second, suite_id, agent_id)


# Where the message APIs live unless api_base says otherwise (a private deployment, a local fake).
DEFAULT_API_BASES = {ChannelKind.WECOM_APP: "https://qyapi.weixin.qq.com",
                     ChannelKind.WECOM_ROBOT: "https://qyapi.weixin.qq.com",
                     ChannelKind.WECOM_SUITE: "https://qyapi.weixin.qq.com"}
DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"


def _late_reply(table: Mapping[str, Any], where: str, kind: ChannelKind, env: Mapping[str, str],
                agent_id: int | None) -> dict[str, Any]:
    """``late_reply`` and what sending needs: AppSecret (OA, mini program) or Secret and AgentID (WeCom app)."""
    if kind is ChannelKind.WECOM_APP:
        allowed = {"corp_secret"}
    elif kind in (ChannelKind.OFFICIAL_ACCOUNT, ChannelKind.MINIPROGRAM, ChannelKind.COMPONENT):
        allowed = {"app_secret"}  # a component's: the third-party platform's own AppSecret
    elif kind is ChannelKind.WECOM_SUITE:
        allowed = {"suite_secret"}
    else:
        allowed = set()  # a robot's response_url needs nothing; a signature-only gateway has no API
    for key in sorted(({"app_secret", "corp_secret", "suite_secret"} - allowed) & set(table)):
        raise ConfigError(f"{where}.{key}: {kind} channels have no {key} (app_secret: official-account, "
                          "miniprogram and component; corp_secret: wecom-app; suite_secret: wecom-suite)")
    app_secret = _expand(_get(table, where, "app_secret", str, ""), f"{where}.app_secret", env)
    corp_secret = _expand(_get(table, where, "corp_secret", str, ""), f"{where}.corp_secret", env)
    suite_secret = _expand(_get(table, where, "suite_secret", str, ""), f"{where}.suite_secret", env)
    # The first key sending still needs ("" when none, "-" when the platform has no message API).
    if kind is ChannelKind.WECOM_ROBOT:
        missing = ""
    elif kind is ChannelKind.WECOM_APP:
        missing = "corp_secret" if not corp_secret else "agent_id" if agent_id is None else ""
    elif kind is ChannelKind.WECOM_SUITE:
        missing = "" if suite_secret else "suite_secret"
    elif allowed:
        missing = "" if app_secret else "app_secret"
    else:
        missing = "-"
    # A forwarding channel's backend that answers after forward_timeout is sent the same way.
    can_send = missing == ""
    late_reply = _get(table, where, "late_reply", str, "send" if can_send else "keep")
    if late_reply not in ("send", "keep", "drop"):
        raise ConfigError(f"{where}.late_reply: must be \"send\", \"keep\" or \"drop\", not {late_reply!r}")
    if late_reply == "send" and not can_send:
        reason = f"{kind} channels have no message API" if missing == "-" else f"sending needs {where}.{missing}"
        raise ConfigError(f"{where}.late_reply: \"send\" is refused: {reason}")
    api_base = _expand(_get(table, where, "api_base", str, DEFAULT_API_BASES.get(kind, DEFAULT_WECHAT_API_BASE)),
                       f"{where}.api_base", env)
    if not re.match(r"https?://", api_base):
        raise ConfigError(f"{where}.api_base: must be an http:// or https:// URL, not {api_base[:100]!r}")
    return {"late_reply": late_reply, "app_secret": app_secret, "corp_secret": corp_secret,
            "suite_secret": suite_secret,
            "api_base": api_base.rstrip("/"),
            "late_reply_max_age": _number(table, where, "late_reply_max_age", 3600.0, 1.0, 48 * 3600.0)}


def _answerer(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The channel's ``handler`` or ``forward`` (at most one), checked; ``forward`` expanded."""
    handler = table.get("handler")
    written = table.get("forward")
    if handler is not None and written is not None:
        raise ConfigError(f"{where}: set either handler or forward, not both")
    if handler is not None and (not isinstance(handler, str) or ":" not in handler):
        raise ConfigError(f"{where}.handler: must be 'module:attribute', not {handler!r}")
    if written is None:
        return handler, None
    forward = _expand(_str(written, f"{where}.forward"), f"{where}.forward", env)
    if not re.match(r"https?://", forward):
        # The value as written: an expanded one may carry credentials.
        expanded = " once its variables are expanded" if forward != written else ""
        raise ConfigError(f"{where}.forward: must be an http:// or https:// URL{expanded}, not {written!r}")
    return handler, forward


def _transport(table: Mapping[str, Any], where: str, kind: ChannelKind) -> Transport:
    value = _get(table, where, "transport", str, Transport.HTTP.value)
    try:
        transport = Transport(value)
    except ValueError:
        raise ConfigError(f"{where}.transport: must be http or websocket, not {value!r}") from None
    if transport not in kind.transports:
        raise ConfigError(f"{where}.transport: only wecom-robot channels have a long connection (websocket); "
                          f"{kind} channels use http")
    return transport


def _websocket_channel(name: str, table: Mapping[str, Any], env: Mapping[str, str],
                       kind: ChannelKind) -> ChannelConfig:
    """A smart robot over its long connection: BotID and Secret instead of a URL and keys."""
    where = f"channels.{name}"
    for key in sorted(_HTTP_KEYS & set(table)):
        raise ConfigError(f"{where}.{key}: a long-connection channel (transport = \"websocket\") has no "
                          f"{key}: it subscribes with bot_id and secret, and its frames are not encrypted")
    bot_id = _expand(_get(table, where, "bot_id", str, None), f"{where}.bot_id", env)
    if not bot_id:
        raise ConfigError(f"{where}.bot_id: must not be empty (the robot's BotID)")
    secret = _expand(_get(table, where, "secret", str, None), f"{where}.secret", env)
    if not secret:
        raise ConfigError(f"{where}.secret: must not be empty (the robot's long-connection Secret)")
    url = _expand(_get(table, where, "url", str, DEFAULT_LONGCONN_URL), f"{where}.url", env)
    if not url.startswith(("wss://", "ws://")):
        raise ConfigError(f"{where}.url: must be a wss:// (or ws://) address, not {url[:100]!r}")
    handler, forward = _answerer(table, where, env)
    deadline = _number(table, where, "deadline", PLATFORM_DEADLINE - DEFAULT_DEADLINE_MARGIN, 0.05, 30.0)
    reconnect_delay = _number(table, where, "reconnect_delay", 1.0, 0.01, 600.0)
    reconnect_max_delay = _number(table, where, "reconnect_max_delay", 30.0, 0.01, 3600.0)
    if reconnect_max_delay < reconnect_delay:
        raise ConfigError(f"{where}.reconnect_max_delay ({reconnect_max_delay:g} s) is shorter than "
                          f"{where}.reconnect_delay ({reconnect_delay:g} s)")
    return ChannelConfig(
        name=name,
        path="",
        kind=kind,
        token="",
        handler=handler,
        forward=forward,
        forward_timeout=_number(table, where, "forward_timeout", min(3.0, deadline), 0.05, 60.0),
        forward_retry_timeout=_number(table, where, "forward_retry_timeout", 30.0, 1.0, 300.0),
        forward_max_age=_number(table, where, "forward_max_age", 86400.0, 60.0, 30 * 86400.0),
        deadline=deadline,
        dedup_ttl=_number(table, where, "dedup_ttl", 300.0, 30.0, 86400.0),
        debug=_get(table, where, "debug", bool, False),
        transport=Transport.WEBSOCKET,
        bot_id=bot_id,
        secret=secret,
        url=url,
        heartbeat_interval=_number(table, where, "heartbeat_interval", 30.0, 0.05, 3600.0),
        missed_pings=_int(table, where, "missed_pings", 2, 1, 100),
        ack_timeout=_number(table, where, "ack_timeout", 5.0, 0.05, 600.0),
        reconnect_delay=reconnect_delay,
        reconnect_max_delay=reconnect_max_delay,
        max_subscribe_failures=_int(table, where, "max_subscribe_failures", 5, 1, 1000),
        lease_ttl=_number(table, where, "lease_ttl", 15.0, 0.5, 3600.0),
        stream_interval=_number(table, where, "stream_interval", 0.5, 0.0, 60.0),
    )


def _kind(value: str, where: str) -> ChannelKind:
    try:
        return ChannelKind(value)
    except ValueError:
        names = sorted(kind.value for kind in ChannelKind)
        close = difflib.get_close_matches(value, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}.platform: must be one of {', '.join(names)}, not {value!r}{hint}") from None


def _data_format(table: Mapping[str, Any], where: str, kind: ChannelKind) -> str:
    value: str = _get(table, where, "data_format", str, "xml").lower()
    if value not in ("xml", "json"):
        raise ConfigError(f"{where}.data_format: must be \"xml\" or \"json\", not {value!r}")
    if value == "json" and not kind.json_allowed:
        raise ConfigError(f"{where}.data_format: {kind.value} channels have no JSON format "
                          f"(robots are always JSON, WeCom apps always XML)")
    return value


def _modes(table: Mapping[str, Any], where: str, kind: ChannelKind) -> frozenset[Mode]:
    if not kind.has_modes:
        if "modes" in table:
            raise ConfigError(f"{where}.modes: only Official Account and mini-program channels have "
                              "encryption modes")
        return kind.default_modes
    raw = _list(table.get("modes", ["safe"]), f"{where}.modes")
    try:
        modes = frozenset(Mode(_str(m, f"{where}.modes")) for m in raw)
    except ValueError:
        raise ConfigError(f"{where}.modes: each mode is one of plaintext, compatible, safe; got {raw!r}") from None
    if not modes:
        raise ConfigError(f"{where}.modes: at least one mode is needed")
    if _get(table, where, "require_encryption", bool, False) and Mode.PLAINTEXT in modes:
        raise ConfigError(f"{where}.require_encryption: conflicts with 'plaintext' in modes")
    return modes


def _receive_id(table: Mapping[str, Any], where: str, kind: ChannelKind, env: Mapping[str, str], *,
                required: bool) -> ReceiveIdPolicy:
    given = [k for k in ("receive_id", "receive_ids", "skip_receive_id_check") if k in table]
    if len(given) > 1:
        raise ConfigError(f"{where}: set only one of receive_id, receive_ids, skip_receive_id_check")
    if "receive_ids" in table:
        ids = [_expand(_str(v, f"{where}.receive_ids"), f"{where}.receive_ids", env)
               for v in _list(table["receive_ids"], f"{where}.receive_ids")]
        if not ids:
            raise ConfigError(f"{where}.receive_ids: must not be empty")
        return ReceiveIdPolicy.one_of(ids)
    if _get(table, where, "skip_receive_id_check", bool, False):
        return ReceiveIdPolicy.any()
    if "receive_id" in table:
        return ReceiveIdPolicy.exact(_expand(_str(table["receive_id"], f"{where}.receive_id"),
                                             f"{where}.receive_id", env))
    if kind is ChannelKind.WECOM_ROBOT:
        return ReceiveIdPolicy.exact("")  # smart robots: receive_id is "" (doc 101033)
    if not required:
        return ReceiveIdPolicy.exact("")  # plaintext channels decrypt nothing
    what = {ChannelKind.COMPONENT: "the component AppID",
            ChannelKind.WECOM_SUITE: "the provider's own CorpID: the URL checks decrypt with it"}
    raise ConfigError(f"{where}.receive_id: required for {kind} "
                      f"({what.get(kind, 'the AppID or CorpID the messages are for')})")


def _expand(value: str, where: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return env[name]

    return _ENV.sub(replace, value)


def _only(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            if close:  # a typo: name the key it most likely is, not the whole list
                raise ConfigError(f"{prefix}{key}: unknown key; did you mean {close[0]!r}?")
            raise ConfigError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a table")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string")
    return value


def _get(table: Mapping[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    if key not in table:
        if default is None:
            raise ConfigError(f"{where}.{key}: required")
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: must be a {kind.__name__}")
    return value


def _int(table: Mapping[str, Any], where: str, key: str, default: int, low: int, high: int) -> int:
    value = _get(table, where, key, int, default)
    if not low <= value <= high:
        raise ConfigError(f"{where}.{key}: must be between {low} and {high}")
    return int(value)


def _number(table: Mapping[str, Any], where: str, key: str, default: float, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}.{key}: must be a number")
    if not low <= value <= high:
        raise ConfigError(f"{where}.{key}: must be between {low} and {high}")
    return float(value)
