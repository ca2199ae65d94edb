"""``wxcallback serve``: run the callback server with uvicorn.

Either a configuration file (``--config wxcallback.toml``, any number of channels) or,
for a quick start, one channel given by flags::

    wxcallback serve --platform wecom-app --token T --encoding-aes-key K --receive-id wx…

With no handler, that channel answers text messages by echoing them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Any

import click

from ..channel import ChannelKind
from .config import ConfigError, ServerConfig, load_config, parse_config
from .preflight import ListenError, check_can_listen, echo_warnings

__all__ = ["serve"]

_LOG = logging.getLogger("wxcallback.server")

# The quick start has one URL per channel: third parties (two URLs, a SuiteID) need a file.
_PLATFORMS = [kind.value for kind in ChannelKind if kind not in (ChannelKind.COMPONENT, ChannelKind.WECOM_SUITE)]


def _flag_config(platform: str, token: str | None, key: str | None, receive_id: str | None, path: str,
                 handler: str | None, forward: str | None, store: str, modes: tuple[str, ...]) -> dict[str, Any]:
    if token is None:
        raise ConfigError("--token: required without --config (or set WXCALLBACK_TOKEN)")
    channel: dict[str, Any] = {"path": path, "platform": platform, "token": token}
    if key is not None:
        channel["encoding_aes_key"] = key
    if receive_id is not None:
        channel["receive_id"] = receive_id
    if handler is not None:
        channel["handler"] = handler
    if forward is not None:
        channel["forward"] = forward
    if modes:
        channel["modes"] = list(modes)
    return {"server": {"store": store}, "channels": {"default": channel}}


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML configuration file.")
@click.option("--platform", type=click.Choice(_PLATFORMS), help="Quick start: the one channel's platform.")
@click.option("--token", envvar="WXCALLBACK_TOKEN", show_envvar=True, help="Quick start: the Token.")
@click.option("--key", "--encoding-aes-key", "key", envvar="WXCALLBACK_ENCODING_AES_KEY", show_envvar=True,
              help="Quick start: the 43-character EncodingAESKey.")
@click.option("--receive-id", help="Quick start: CorpID / AppID ('' for a smart robot).")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["plaintext", "compatible", "safe"]),
              help="Quick start, Official Accounts: accepted encryption modes (repeatable; default safe).")
@click.option("--path", default="/", show_default=True, help="Quick start: the callback path.")
@click.option("--handler", help="Quick start: 'module:attribute' answering the messages (default: echo).")
@click.option("--forward", help="Quick start: forward messages to this backend URL instead.")
@click.option("--store", default=None, help="memory:// | sqlite:///file.db | redis://host:port/0 "
                                            "(default: the config's, or sqlite:///wxcallback.db).")
@click.option("--host", default=None, help="Listen address (default: the config's host, or 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Listen port (default: the config's port, or 8000; 0: any free port).")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: the config's workers, or 1).")
@click.option("--log-level", default=None, type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level (default: the config's log_level, or info).")
@click.option("--app-dir", type=click.Path(file_okay=False), default=None,
              help="Import handler modules from this directory first (default: the config's app_dir, "
                   "or the working directory).")
@click.option("--check", is_flag=True, help="Check the configuration and exit.")
def serve(config_path: str | None, platform: str | None, token: str | None, key: str | None,
          receive_id: str | None, modes: tuple[str, ...], path: str, handler: str | None, forward: str | None,
          store: str | None, host: str | None, port: int | None, workers: int | None, log_level: str | None,
          app_dir: str | None, check: bool) -> None:
    """Run the callback server (all channels of --config, or one channel from flags)."""
    try:
        if config_path is not None:
            if platform is not None:
                raise ConfigError("--platform: give either --config or the quick-start flags, not both")
            config = load_config(config_path)
            env_config = {"WXCALLBACK_CONFIG": os.path.abspath(config_path)}
        elif platform is not None:
            raw = _flag_config(platform, token, key, receive_id, path, handler, forward,
                               store or "sqlite:///wxcallback.db", modes)
            config = parse_config(raw)
            env_config = {"WXCALLBACK_CONFIG_JSON": json.dumps(raw)}
        else:
            raise ConfigError("give --config FILE, or --platform with --token (see --help)")
        overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers, "log_level": log_level,
                                       "store": store, "app_dir": app_dir}.items() if v is not None}
        # The workers import the handlers too: give them the directory this command resolved.
        overrides["app_dir"] = os.path.abspath(app_dir if app_dir is not None else config.app_dir)
        config = _with(config, overrides)
        if config.workers > 1 and config.store.startswith("memory:") and any(c.websocket for c in config.channels):
            raise ConfigError("server.store: memory:// is private to each worker, so every worker would open the "
                              "bot's long connection and they would evict each other; use sqlite:// or redis://")
        # Build the app once here so every problem (keys, handler imports) shows before binding.
        from .app import create_app

        create_app(config)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    if check:
        for _, warning in echo_warnings(config):
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"configuration OK: {len(config.channels)} channel(s): "
                   + ", ".join(f"{c.name} {c.kind} " + (f"websocket {c.bot_id}" if c.websocket else c.path)
                               for c in config.channels))
        return
    _check_store(config)
    _run(config, env_config)


def _check_store(config: ServerConfig) -> None:
    """Open the store once before any worker starts: an unusable or (when required) non-durable
    store is refused here, with one message, rather than by every worker in a restart loop."""
    import asyncio

    from .stores import StoreError, open_store

    async def check() -> None:
        store = open_store(config.store)
        try:
            await store.start()
        finally:
            await store.close()

    try:
        asyncio.run(check())
    except StoreError as exc:
        click.echo(f"store error: {exc}", err=True)
        sys.exit(2)


def _with(config: ServerConfig, overrides: dict[str, Any]) -> ServerConfig:
    from dataclasses import replace

    return replace(config, **overrides) if overrides else config


def _run(config: ServerConfig, env_config: dict[str, str]) -> None:
    import uvicorn

    from .connections import LIMITS_ENV, ConnectionLimits, raise_open_file_limit
    from .worker_counts import RUNTIME_DIR_ENV
    from .jsonlog import configure_logging, redact_url, uvicorn_log_config

    configure_logging(config.log_level)
    for channel_name, warning in echo_warnings(config):
        _LOG.warning(json.dumps({"outcome": "demo_echo", "channel": channel_name, "detail": warning},
                                ensure_ascii=False))
    # Before the "starting" line: a port in use is reported with its address, and nothing else.
    try:
        check_can_listen(config.host, config.port)
    except ListenError as exc:
        _LOG.error(json.dumps({"outcome": "listen_failed", "listen": f"http://{config.host}:{config.port}",
                               "detail": str(exc)}, ensure_ascii=False))
        sys.exit(1)
    for name in ("WXCALLBACK_CONFIG", "WXCALLBACK_CONFIG_JSON"):
        os.environ.pop(name, None)
    os.environ.update(env_config)
    # The config's overrides travel to the workers too.
    os.environ["WXCALLBACK_OVERRIDES"] = json.dumps({"host": config.host, "port": config.port,
                                                      "store": config.store, "log_level": config.log_level,
                                                      "app_dir": config.app_dir})
    # Room for every allowed connection plus the store, the logs and the listener.
    reserve = 64
    files = raise_open_file_limit(config.max_connections + reserve)
    max_connections = min(config.max_connections, max(1, files - reserve))
    if max_connections < config.max_connections:
        _LOG.warning(json.dumps({"outcome": "max_connections_lowered", "max_connections": max_connections,
                                 "detail": f"the open-file limit is {files}"}))
    os.environ[LIMITS_ENV] = ConnectionLimits(config.max_header_bytes, config.max_headers, config.header_timeout,
                                              max_connections).to_environment()
    runtime_dir = None
    if config.workers > 1:
        # Each worker writes its counts here; /healthz and /metrics on any worker sum them.
        runtime_dir = tempfile.mkdtemp(prefix="wxcallback-run-")
        os.environ[RUNTIME_DIR_ENV] = runtime_dir
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(runtime_dir, "metrics")
            os.mkdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    _LOG.info(json.dumps({"outcome": "starting", "listen": f"http://{config.host}:{config.port}",
                          "workers": config.workers, "store": redact_url(config.store), "channels": [
                              {"name": c.name, "platform": str(c.kind)}
                              | ({"transport": "websocket", "bot_id": c.bot_id, "url": redact_url(c.url)}
                                 if c.websocket else {"path": c.path})
                              | ({"forward": redact_url(c.forward)} if c.forward else {})
                              for c in config.channels]}, ensure_ascii=False))
    for channel in config.channels:
        if channel.replay_window == 0:
            _LOG.warning(json.dumps({"outcome": "replay_guard_off", "channel": channel.name,
                                     "detail": f"channels.{channel.name}.replay_window = 0: captured requests can "
                                               "be replayed at any time; set a window (300 s is the default)"}))
    if any(c.websocket for c in config.channels):
        import asyncio

        from .longconn_channel import clear_stay_down

        # A connection that ended for good (evicted, refused) kept every worker down until now.
        asyncio.run(clear_stay_down(config))
    try:
        uvicorn.run("wxcallback.server.environment:app_from_environment", factory=True, host=config.host,
                    port=config.port, workers=config.workers, log_level=config.log_level, access_log=False,
                    # nothing here reads the client's address: no X-Forwarded-For rewriting per request
                    proxy_headers=False,
                    http="wxcallback.server.connections:GuardedHTTPProtocol",
                    # the grace as given (annotated int, used as a timeout): int() made 0 and 0.5
                    # None, which waits for in-flight requests for ever
                    timeout_graceful_shutdown=config.shutdown_grace,  # type: ignore[arg-type]
                    log_config=uvicorn_log_config(config.log_level))
    finally:
        if runtime_dir is not None:  # the workers are gone: nobody reads or writes their counts now
            shutil.rmtree(runtime_dir, ignore_errors=True)
