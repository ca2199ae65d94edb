"""docs/simulator.md's late reply through `wxcallback fake-api`: the handler, the channel and the commands, as written."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import free_port
from tests.doc_console import examples, matches, run

DOC = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text(encoding="utf-8")


def test_a_late_reply_reaches_the_fake_api_as_written(tmp_path: Path) -> None:
    section = DOC.split("### Late replies: the platform's API too", 1)[1].split("\n### ", 1)[0]
    (handler,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (config,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    api_port, server_port = free_port(), free_port()
    (tmp_path / "slow.py").write_text(handler, encoding="utf-8")
    (tmp_path / "wxcallback.toml").write_text(
        f'[server]\nstore = "sqlite:///{tmp_path}/wx.db"\n\n' + config.replace("9100", str(api_port)), encoding="utf-8")
    found = examples(section)
    assert [e.command.split()[1] for e in found] == ["fake-api", "serve", "curl", "simulate", "-s"]
    for example in found:
        example.command = (example.command.replace("wxcallback fake-api", f"wxcallback fake-api --port {api_port}")
                           .replace("9100", str(api_port))
                           .replace("--config wxcallback.toml 2>", f"--config wxcallback.toml --port {server_port} 2>")
                           .replace("127.0.0.1:8000", f"127.0.0.1:{server_port}"))
    run(found, tmp_path)
    for example in found:
        assert example.status == 0 and matches(example), (example, (tmp_path / "serve.log").read_text())
    assert '"outcome": "late_reply_sent"' in (tmp_path / "serve.log").read_text(encoding="utf-8")
