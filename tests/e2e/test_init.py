"""``wxcallback init``, then ``serve`` and ``simulate`` exactly as it printed them, with no edit."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import free_port
from wxcallback.cli import main
from wxcallback.core import EncodingAESKey
from wxcallback.server.config import load_config

BIN = Path(sys.executable).parent


def _init(directory: Path, *args: str) -> str:
    result = subprocess.run([str(BIN / "wxcallback"), "init", str(directory), "--no-input", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _printed(output: str, label: str) -> str:
    match = re.search(rf"^  {label}:\s+(\S+)$", output, re.M)
    assert match, output
    return match.group(1)


@pytest.mark.parametrize("platform, receive_id", [
    ("official-account", "wx5823bf96d3bd56c7"),
    ("wecom-app", "ww1436e0e65a779aee"),
    ("wecom-robot", None),
])
def test_init_then_serve_and_simulate_work_with_no_edit(tmp_path: Path, platform: str, receive_id: str | None) -> None:
    project = tmp_path / "project"
    port = free_port()
    output = _init(project, "--platform", platform, "--public-url", "https://bot.example.com", "--port", str(port),
                   *(["--receive-id", receive_id] if receive_id else []))
    assert _printed(output, "URL") == "https://bot.example.com/wechat"
    token, key = _printed(output, "Token"), _printed(output, "EncodingAESKey")
    config = load_config(project / "wxcallback.toml")
    (channel,) = config.channels
    assert (channel.token, channel.encoding_aes_key, channel.kind.value) == (token, key, platform)
    assert stat.S_IMODE(os.stat(project / "wxcallback.toml").st_mode) == 0o600

    commands = [line.strip() for line in output.splitlines() if line.startswith("  wxcallback ")]
    serve_line, simulate_line = commands
    assert serve_line == "wxcallback serve --config wxcallback.toml"
    assert f"  cd {project}" in output
    server = subprocess.Popen([str(BIN / "wxcallback"), *shlex.split(serve_line)[1:]], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert server.poll() is None, server.communicate()[0]
        simulated = subprocess.run([str(BIN / "wxcallback"), *shlex.split(simulate_line)[1:]],
                                   capture_output=True, text=True, timeout=120)
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert "all passed" in simulated.stdout
    finally:
        server.terminate()
        log = server.communicate(timeout=15)[0]
    assert "warning" not in log  # the generated handler answers: no demo echo
    assert token not in log and key not in log


def test_the_generated_secrets_are_fresh_and_valid(tmp_path: Path) -> None:
    outputs = [_init(tmp_path / str(n), "--platform", "wecom-robot") for n in range(2)]
    tokens = [_printed(o, "Token") for o in outputs]
    keys = [_printed(o, "EncodingAESKey") for o in outputs]
    assert tokens[0] != tokens[1] and keys[0] != keys[1]
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", t) for t in tokens)
    for key in keys:
        EncodingAESKey(key)  # raises on an invalid key


def test_the_prompts_ask_for_what_the_flags_do_not_give(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init"], input="official-account\nwx5823bf96d3bd56c7\nhttps://mp.example.com\n")
    assert result.exit_code == 0, result.output
    assert "AppID of the Official Account" in result.output
    assert "URL:             https://mp.example.com/wechat" in result.output
    assert "安全模式 (safe mode)" in result.output
    config = load_config("wxcallback.toml")
    config.channels[0].receive_id.check("wx5823bf96d3bd56c7")  # raises on another id
    again = CliRunner().invoke(main, ["init", "--no-input", "--platform", "wecom-robot"])
    assert again.exit_code == 1 and "already exist" in again.output


@pytest.mark.parametrize("args, message", [
    (["--platform", "wecom-app"], "--receive-id: the CorpID is required"),
    (["--platform", "wecom-robot", "--receive-id", "ww1"], "a smart robot has no receive_id"),
    (["--platform", "wecom-app", "--receive-id", "ww1", "--token", "a b"], "--token: 3 to 32 letters and digits"),
    (["--platform", "wecom-app", "--receive-id", "ww1", "--encoding-aes-key", "short"], "--encoding-aes-key"),
    ([], "--platform is required"),
])
def test_bad_flags_are_refused_before_anything_is_written(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "p"), "--no-input", *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "p").exists()
