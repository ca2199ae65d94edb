"""Every command that reads a configuration refuses a bad one the same way: one line, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from wxcallback.cli import main

COMMANDS = [["serve", "--check"], ["outbox", "list"], ["outbox", "show", "x"], ["outbox", "retry", "x"],
            ["outbox", "drop", "x"], ["tickets"], ["send", "--chat", "zhangsan", "--markdown", "hi"]]


def _run(args: list[str], config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--config", str(config)], env={"WXCALLBACK_UNSET_TOKEN": None})
    return result.exit_code, result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unset_variable_is_one_line_naming_key_and_variable(args: list[str], tmp_path: Path) -> None:
    config = tmp_path / "wxcallback.toml"
    config.write_text('[channels.c]\npath = "/c"\nplatform = "signature-only"\ntoken = "${WXCALLBACK_UNSET_TOKEN}"\n',
                      encoding="utf-8")
    status, err = _run(args, config)
    assert (status, err) == (2, "configuration error: channels.c.token: environment variable "
                                "WXCALLBACK_UNSET_TOKEN is not set\n")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_missing_file_is_one_line_naming_it(args: list[str], tmp_path: Path) -> None:
    status, err = _run(args, tmp_path / "nope.toml")
    assert status == 2
    assert err == f"configuration error: {tmp_path / 'nope.toml'}: cannot read the configuration: No such file or directory\n"
