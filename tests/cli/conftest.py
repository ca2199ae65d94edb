"""Running the CLI in-process, with stdout and stderr kept apart."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from click.testing import CliRunner, Result

from wxcallback.cli import main

DOC_TOKEN = "QDG6eK"
DOC_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
DOC_CORP_ID = "wx5823bf96d3bd56c7"
SECRET_VARIABLES = ("WXCALLBACK_TOKEN", "WXCALLBACK_ENCODING_AES_KEY", "WXCALLBACK_PREVIOUS_ENCODING_AES_KEYS")


class Cli:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        # Secrets set in the developer's shell must not leak into the tests.
        environment: dict[str, str | None] = {name: None for name in SECRET_VARIABLES}
        environment.update(env or {})
        return self.runner.invoke(main, list(args), input=input, env=environment, catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()
