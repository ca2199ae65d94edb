"""What ``wxcallback serve`` says before it serves: handler imports, the port, demo channels.

The command runs as the installed ``wxcallback`` script, as a user runs it: its ``sys.path``
starts with the script's directory, not the working directory, so a handler found beside
the configuration is found because serve looks there.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.servers import write_config
from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text

SCRIPT = Path(sys.executable).with_name("wxcallback")
HANDLER = '''from wxcallback.messages import Router

router = Router()


@router.text
def answer(message):
    return "from bot.py"
'''


def _serve(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "serve", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _config(directory: Path, handler: str | None = "bot:router", **server: object) -> Path:
    channel = {"path": "/app", "platform": "wecom-app", "token": TOKEN, "encoding_aes_key": KEY, "receive_id": APPID}
    if handler is not None:
        channel["handler"] = handler
    return write_config(directory / "wxcallback.toml", "memory://", {"app": channel}, **server)


def test_a_handler_beside_the_config_imports_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "bot.py").write_text(HANDLER, encoding="utf-8")
    config = _config(tmp_path)
    result = _serve(tmp_path, "--config", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert "configuration OK: 1 channel(s)" in result.stdout


def test_another_directory_is_named_by_app_dir_or_the_option(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bot.py").write_text(HANDLER, encoding="utf-8")
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    plain = _config(tmp_path)
    missing = _serve(elsewhere, "--config", str(plain), "--check")
    assert missing.returncode == 2
    assert "cannot import 'bot' (looked in the application directory " + str(elsewhere) in missing.stderr
    assert "--app-dir" in missing.stderr and "Traceback" not in missing.stderr
    assert _serve(elsewhere, "--config", str(plain), "--check", "--app-dir", str(tmp_path / "src")).returncode == 0
    keyed = _config(tmp_path, app_dir=str(tmp_path / "src"))
    assert _serve(elsewhere, "--config", str(keyed), "--check").returncode == 0


def test_an_error_inside_the_handler_module_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bot.py").write_text("import os\n\nlimit = int(os.environ['NO_SUCH_VARIABLE_HERE'])\n")
    result = _serve(tmp_path, "--config", str(_config(tmp_path)), "--check")
    assert result.returncode == 2
    assert f"cannot import 'bot' ({tmp_path / 'bot.py'} line 3): KeyError" in result.stderr
    (tmp_path / "bot.py").write_text("def broken(:\n    pass\n")
    result = _serve(tmp_path, "--config", str(_config(tmp_path)), "--check")
    assert f"({tmp_path / 'bot.py'} line 1): SyntaxError" in result.stderr


def test_a_port_out_of_range_is_refused(tmp_path: Path) -> None:
    result = _serve(tmp_path, "--config", str(_config(tmp_path, handler=None)), "--port", "99999")
    assert result.returncode == 2
    assert "Invalid value for '--port': 99999 is not in the range 0<=x<=65535" in result.stderr


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_port_in_use_is_reported_with_its_address_and_no_banner(tmp_path: Path) -> None:
    (tmp_path / "bot.py").write_text(HANDLER, encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(tmp_path, "--config", str(_config(tmp_path)), "--port", str(port))
    assert result.returncode == 1
    (line,) = _json_lines(result.stderr)  # nothing but the error: no "starting" line before it
    assert line["outcome"] == "listen_failed" and line["listen"] == f"http://127.0.0.1:{port}"
    assert f"cannot listen on http://127.0.0.1:{port}: Address already in use" in str(line["detail"])


def test_a_channel_without_handler_warns_that_it_echoes(tmp_path: Path) -> None:
    result = _serve(tmp_path, "--config", str(_config(tmp_path, handler=None)), "--check")
    assert result.returncode == 0
    assert "warning: channels.app (/app) has no handler and no forward: it answers every text message by " \
           "echoing it back" in result.stderr
    (tmp_path / "bot.py").write_text(HANDLER, encoding="utf-8")
    assert "warning" not in _serve(tmp_path, "--config", str(_config(tmp_path)), "--check").stderr


def test_serving_a_channel_without_handler_logs_the_warning_as_a_json_line(tmp_path: Path) -> None:
    with socket.socket() as taken:  # stop right after the warnings: the port is taken
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _serve(tmp_path, "--config", str(_config(tmp_path, handler=None)), "--port",
                        str(taken.getsockname()[1]))
    warning, error = _json_lines(result.stderr)
    assert warning["outcome"] == "demo_echo" and warning["channel"] == "app"
    assert "it answers every text message by echoing it back" in str(warning["detail"])
    assert error["outcome"] == "listen_failed"


@pytest.mark.parametrize("workers", [1, 2])
def test_the_workers_answer_with_the_handler_from_the_working_directory(tmp_path: Path, workers: int) -> None:
    (tmp_path / "bot.py").write_text(HANDLER, encoding="utf-8")
    port = free_port()
    process = subprocess.Popen([str(SCRIPT), "serve", "--config", str(_config(tmp_path)), "--port", str(port),
                                "--workers", str(workers)], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert process.poll() is None, process.communicate()[0]
        side = Platform("wecom-app", "/app")
        path, body = side.callback(wecom_text("hello"))
        response = httpx.post(url + path, content=body, timeout=5)
        assert response.status_code == 200
        assert "from bot.py" in side.open_reply(response.content)
    finally:
        process.terminate()
        process.wait(timeout=15)
