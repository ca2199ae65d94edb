"""docs/longconn.md's "Try it on this machine": the fake platform, the server and `wxcallback send`, as written."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import free_port
from tests.doc_console import examples, matches, run

DOC = (Path(__file__).resolve().parents[2] / "docs" / "longconn.md").read_text(encoding="utf-8")


def test_the_local_trial_runs_as_written(tmp_path: Path) -> None:
    section = DOC.split("### Try it on this machine\n", 1)[1]
    (config,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    platform_port, server_port = free_port(), free_port()
    (tmp_path / "wxcallback.toml").write_text(config.replace("8765", str(platform_port)), encoding="utf-8")
    found = examples(section)
    assert [e.command.split()[1] for e in found] == ["fake-platform", "serve", "send", "-s"]
    for example in found:
        example.command = (example.command.replace("8765", str(platform_port))
                           .replace("--config wxcallback.toml 2>", f"--config wxcallback.toml --port {server_port} 2>")
                           .replace("127.0.0.1:8000", f"127.0.0.1:{server_port}"))
    run(found, tmp_path)
    for example in found:
        assert example.status == 0 and matches(example), (example, (tmp_path / "serve.log").read_text())
    log = (tmp_path / "fake-platform.log").read_text(encoding="utf-8")
    assert "aibot_subscribe" in log and "aibot_send_msg" in log and "**build** passed" not in log
