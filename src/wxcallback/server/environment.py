"""The app each ``wxcallback serve`` worker builds, from what the command left in its environment.

``serve`` checks the configuration, then starts uvicorn with this factory; a worker
process (spawned, so it shares nothing with the command) reads the same configuration
back from ``WXCALLBACK_CONFIG`` (a file) or ``WXCALLBACK_CONFIG_JSON`` (the quick-start
flags), applies ``WXCALLBACK_OVERRIDES`` (the command line's --host, --port …) and
configures logging.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import replace

from .app import CallbackApp, create_app
from .config import load_config, parse_config
from .jsonlog import configure_logging

__all__ = ["app_from_environment"]


def app_from_environment() -> CallbackApp:
    """The app factory each ``wxcallback serve`` worker runs (configuration from the environment)."""
    inline = os.environ.get("WXCALLBACK_CONFIG_JSON")
    config = parse_config(json.loads(inline)) if inline else load_config(os.environ["WXCALLBACK_CONFIG"])
    overrides = json.loads(os.environ.get("WXCALLBACK_OVERRIDES", "{}"))
    if overrides:
        config = replace(config, **overrides)
    # A spawned worker starts with no logging configured: JSON lines to stderr.
    configure_logging(config.log_level)
    app = create_app(config)
    # What is loaded by now (modules, configuration, handlers) lives as long as the worker:
    # out of the collector's sight, a full collection no longer walks those ~40,000 objects
    # (a ~25 ms pause, seen in the p99, down to ~5 ms).
    gc.freeze()
    return app
