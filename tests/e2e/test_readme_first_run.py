"""The README's first run: the example configuration served, and the simulator it shows, as written."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import free_port
from tests.doc_console import examples, matches, run
from tests.e2e.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_simulator_passes_against_make_run(tmp_path: Path) -> None:
    make = README.split("## Two commands\n", 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
    assert "$ make run     # the server on examples/wxcallback.toml" in make
    # (Under `make test` itself, make also prints the directories it enters: look for the line.)
    recipe = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert any(line.endswith("/wxcallback serve --config examples/wxcallback.toml")
               for line in recipe.splitlines()), recipe
    (simulate,) = examples(README.split("With `make run` going", 1)[1].split("\n## ", 1)[0])
    # What `make run` serves, from a directory of its own so that its SQLite file lands there.
    server = ServerProcess(ROOT / "examples" / "wxcallback.toml", free_port(), workers=2, cwd=tmp_path)  # its workers = 2
    try:
        simulate.command = (simulate.command.replace(".venv/bin/wxcallback", "wxcallback")
                            .replace("http://127.0.0.1:8000", server.url))
        run([simulate], tmp_path)
    finally:
        server.stop()
    assert simulate.status == 0 and matches(simulate), simulate.output
