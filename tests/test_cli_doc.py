"""docs/cli.md against the command line: its commands are the CLI's, and its examples print what it shows."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from tests.doc_console import Example, examples, matches, run
from wxcallback.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
KEY = re.compile(r"[A-Za-z0-9+/]{43}\n")


def _documented_commands() -> set[str]:
    table = DOC.read_text(encoding="utf-8").split("| command | what it does | reference |", 1)[1].split("\n\n", 1)[0]
    return {name for row in table.splitlines()[2:] for name in re.findall(r"`([a-z-]+)`", row.split("|")[1])}


def test_the_command_table_names_every_command() -> None:
    assert _documented_commands() == set(main.commands)


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
    return found


@pytest.mark.parametrize("name, command", _commands(main), ids=[name for name, _ in _commands(main)])
def test_the_key_option_has_one_pair_of_names_everywhere(name: str, command: click.Command) -> None:
    for param in command.params:
        names = set(param.opts)
        if names & {"--key", "--encoding-aes-key"}:
            assert param.opts == ["--key", "--encoding-aes-key"], name


def _check(found: list[Example]) -> None:
    for example in found:
        if example.command.startswith("wxcallback keygen"):  # fresh keys: the shape, not the value
            count = example.expected.count("\n") or 1
            assert example.status == 0 and re.fullmatch(f"({KEY.pattern}){{{count}}}", example.output), example
        elif example.expected:
            assert matches(example), f"$ {example.command}\nshown:\n{example.expected}\nprinted:\n{example.output}"
        else:
            assert example.status == 0, f"$ {example.command}\n{example.output}"


def test_every_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    found = examples(DOC.read_text(encoding="utf-8"))
    assert len(found) >= 15
    run(found, tmp_path)
    _check(found)


def test_the_readme_cli_tour_prints_what_it_shows(tmp_path: Path) -> None:
    # The tour decrypts the body.xml that docs/cli.md writes, as its comment says.
    text = README.read_text(encoding="utf-8").split("## The CLI\n", 1)[1].split("\n## ", 1)[0]
    body = next(e for e in examples(DOC.read_text(encoding="utf-8")) if e.command.startswith("cat > body.xml"))
    found = [body, *examples(text)]
    assert len(found) >= 6
    run(found, tmp_path)
    _check(found)
