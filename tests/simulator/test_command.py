"""``wxcallback simulate`` from the command line: table or JSON, exit status 0 only when all passed."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.conftest import free_port
from wxcallback.simulator.command import simulate

from .conftest import RECEIVE_IDS
from .reference_endpoint import KEY, TOKEN, Endpoint, ReferenceServer

FAST_OPTIONS = ["--get-deadline", "0.5", "--post-deadline", "0.5", "--stream-interval", "0.01",
                "--stream-timeout", "0.5", "--oversize-bytes", str(70 * 1024)]


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(simulate, list(args), env={"WXCALLBACK_TOKEN": None,
                                                          "WXCALLBACK_ENCODING_AES_KEY": None},
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _serve(server: ReferenceServer, platform: str, faults: frozenset[str] = frozenset()) -> str:
    return server.serve(Endpoint(platform, receive_id=RECEIVE_IDS[platform], faults=faults))


def test_correct_endpoint_prints_a_table_and_exits_zero(reference_server: ReferenceServer) -> None:
    url = _serve(reference_server, "wecom-robot")
    code, out, _ = _invoke(url, "--platform", "wecom-robot", "--token", TOKEN, "--key", KEY, "--retries", "2",
                           "--hostile", *FAST_OPTIONS)
    assert code == 0, out
    assert out.splitlines()[0].split() == ["check", "status", "latency", "result", "why"]
    assert "verify URL (GET)" in out and "hostile: bad signature (POST)" in out and "all passed" in out
    assert "FAIL" not in out


def test_broken_endpoint_exits_one_and_json_names_the_failure(reference_server: ReferenceServer) -> None:
    url = _serve(reference_server, "wecom-app", frozenset({"echostr-quoted"}))
    code, out, _ = _invoke(url, "--platform", "wecom-app", "--token", TOKEN, "--key", KEY,
                           "--receive-id", RECEIVE_IDS["wecom-app"], "--json", *FAST_OPTIONS)
    assert code == 1
    report = json.loads(out)
    assert report["passed"] is False
    verify = report["exchanges"][0]
    assert verify["name"] == "verify URL (GET)" and verify["passed"] is False
    assert any("quoted" in check["detail"] for check in verify["checks"] if not check["passed"])


def test_load_mode_prints_throughput_and_percentiles(reference_server: ReferenceServer) -> None:
    url = _serve(reference_server, "official-account")
    code, out, _ = _invoke(url, "--platform", "official-account", "--token", TOKEN, "--key", KEY,
                           "--receive-id", RECEIVE_IDS["official-account"], "--account-id", "gh_wxcallbacksim",
                           "--repeat", "20", "--concurrency", "2", "--retry-fraction", "0.5", "--json")
    assert code == 0, out
    load = json.loads(out)
    assert load["requests"] == 20 and load["status_counts"] == {"200": 20} and load["failures"] == 0
    assert set(load["latency_ms"]) == {"p50", "p90", "p99", "max"}


def test_unusable_key_exits_one_with_the_official_code(reference_server: ReferenceServer) -> None:
    code, _, err = _invoke("http://127.0.0.1:1/", "--platform", "wecom-app", "--token", TOKEN, "--key", "bad")
    assert code == 1
    assert err.startswith("-40004 ")


def test_a_wrong_token_everywhere_ends_with_what_to_check(reference_server: ReferenceServer) -> None:
    url = _serve(reference_server, "wecom-app")
    code, out, _ = _invoke(url, "--platform", "wecom-app", "--token", "WrongToken1", "--key", KEY,
                           "--receive-id", RECEIVE_IDS["wecom-app"], *FAST_OPTIONS)
    assert code == 1
    assert out.splitlines()[-1] == ("every request got 403: check --token and --receive-id; "
                                    "the server's log line says which")


def test_nothing_listening_ends_with_is_the_server_running() -> None:
    url = f"http://127.0.0.1:{free_port()}/wecom"
    code, out, _ = _invoke(url, "--platform", "wecom-app", "--token", TOKEN, "--key", KEY,
                           "--receive-id", RECEIVE_IDS["wecom-app"], *FAST_OPTIONS)
    assert code == 1
    assert out.splitlines()[-1] == f"nothing answered at {url}: is the server running, on this host and port?"


def test_a_url_without_a_scheme_is_one_line_without_a_code() -> None:
    code, out, err = _invoke("127.0.0.1:8000/wecom", "--platform", "wecom-app", "--token", TOKEN, "--key", KEY)
    assert (code, out) == (1, "")
    assert err == "error: the target must be an http:// or https:// URL, not '127.0.0.1:8000/wecom'\n"
