"""docs/platforms.md's third-party channels, served as written, pass docs/simulator.md's commands for them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.doc_console import Example, examples, matches, run
from tests.e2e.servers import serve
from wxcallback import generate_encoding_aes_key

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
SIMULATOR = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")


def _channel_block(platform: str) -> str:
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", PLATFORMS, re.S) if f'platform = "{platform}"' in b]
    # The handler module is the reader's own; without one the channel answers with the demo echo.
    return "\n".join(line for line in block.splitlines() if not line.startswith("handler = "))


def test_the_documented_component_and_suite_pass_the_documented_simulations(tmp_path: Path) -> None:
    config = tmp_path / "wxcallback.toml"
    config.write_text(f'[server]\nstore = "sqlite:///{tmp_path}/wx.db"\n\n'
                      f'{_channel_block("component")}\n{_channel_block("wecom-suite")}\n', encoding="utf-8")
    env = {"COMPONENT_TOKEN": "componenttoken1", "COMPONENT_AES_KEY": generate_encoding_aes_key(),
           "SUITE_TOKEN": "suitetoken1", "SUITE_AES_KEY": generate_encoding_aes_key()}
    simulations = [e for e in examples(SIMULATOR) if "--tenant" in e.command]
    assert {"component", "wecom-suite"} == {re.search(r"--platform (\S+)", e.command).group(1)  # type: ignore[union-attr]
                                            for e in simulations}
    exports = Example("export " + " ".join(f"{name}='{value}'" for name, value in env.items()), "")
    with serve(config, env=env) as server:
        for example in simulations:
            example.command = example.command.replace("http://127.0.0.1:8000", server.url)
        run([exports, *simulations], tmp_path)
        tickets = subprocess.run([str(Path(sys.executable).parent / "wxcallback"), "tickets", "--config", str(config)],
                                 env={**os.environ, **env}, capture_output=True, text=True, check=True)
    for example in simulations:
        assert example.status == 0 and matches(example), example.output
    kinds = sorted(line.split()[1] for line in tickets.stdout.splitlines())
    assert kinds == ["component_verify_ticket", "suite_ticket"], tickets.stdout
