"""Run the shell examples of a Markdown page as a reader would paste them, and compare.

A ```console block holds commands (``$ `` lines; a line ending in ``\\`` and a heredoc continue
one) each followed by what it prints; a ```sh block holds commands whose output is not shown.
All blocks of a page run in order in one directory, so a file one example writes is there for
the next, and ``echo $?`` reads the status of the command before it; what an example starts in
the background (``… &``) is stopped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Example", "examples", "matches", "run"]

_BLOCK = re.compile(r"```(console|sh)\n(.*?)```", re.S)
_HEREDOC = re.compile(r"<<'?(\w+)'?")


@dataclass
class Example:
    command: str
    expected: str  # what the page shows; "…" stands for any text
    output: str = ""
    status: int = 0


def examples(text: str) -> list[Example]:
    found: list[Example] = []
    for kind, body in _BLOCK.findall(text):
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if kind == "console" and not line.startswith("$ "):
                found[-1].expected += line + "\n"
                i += 1
                continue
            command = [line[2:] if kind == "console" else line]
            while command[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            heredoc = _HEREDOC.search(command[0])
            if heredoc:
                while i + 1 < len(lines):
                    i += 1
                    command.append(lines[i])
                    if lines[i] == heredoc.group(1):
                        break
            found.append(Example("\n".join(command), ""))
            i += 1
    return found


def run(found: list[Example], workdir: Path) -> None:
    """Run every example in ``workdir`` in one shell, filling in output and status."""
    script = ["status=0"]
    for n, example in enumerate(found):
        script += [f"(exit $status); {{\n{example.command}\n}} >{n}.out 2>&1; status=$?; echo $status >{n}.status"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "80", "LC_ALL": "C.UTF-8"}
    for name in ("WXCALLBACK_TOKEN", "WXCALLBACK_ENCODING_AES_KEY", "WXCALLBACK_PREVIOUS_ENCODING_AES_KEYS"):
        env.pop(name, None)
    script.append("kill $(jobs -p) 2>/dev/null; wait")  # what an example left running (`… &`)
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=workdir, env=env, check=True, timeout=120)
    for n, example in enumerate(found):
        example.output = (workdir / f"{n}.out").read_text(encoding="utf-8")
        example.status = int((workdir / f"{n}.status").read_text(encoding="utf-8"))


def _latencies(text: str) -> str:
    # A table's latency cells ("1006.8 ms") and the padding that follows them vary from run to run.
    return re.sub(r"\d+(\.\d+)? ms +", "<ms> ", text)


def matches(example: Example) -> bool:
    """Whether the output is what the page shows ("…" matching any text, on one line or several;
    latencies in a table any figure)."""
    pattern = ".*?".join(re.escape(part) for part in _latencies(example.expected).split("…"))
    output = _latencies(example.output)
    output = output if output.endswith("\n") or not output else output + "\n"
    return re.fullmatch(pattern, output, re.S) is not None  # (a terminal shows the next prompt on a line of its own)
