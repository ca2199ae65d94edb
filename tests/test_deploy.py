"""The deployment files in deploy/ are valid for the tools that read them, and agree with each other.

nginx, Caddy and systemd check their own files where they are installed (CI installs them:
a missing tool is a skip here and a failure in CI). The Dockerfile cannot be built without a
docker engine, so it is linted: its instructions, the files it copies, the extras it installs
and the command it runs are checked against the repository and the CLI.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.platform_requests import APPID, KEY, TOKEN, Platform, wecom_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCRIPT = Path(sys.executable).with_name("wxcallback")
UPSTREAMS = {"127.0.0.1:8001", "127.0.0.1:8002"}


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


def _check_config(config: Path, *args: str, env: dict[str, str] | None = None,
                  cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "serve", "--config", str(config), *args, "--check"], cwd=cwd,
                          capture_output=True, text=True, timeout=60, env=env)


def _minimal_config(tmp_path: Path) -> Path:
    path = tmp_path / "wxcallback.toml"
    path.write_text(f'[server]\nstore = "memory://"\n[channels.a]\npath = "/a"\nplatform = "wecom-app"\n'
                    f'token = "{TOKEN}"\nencoding_aes_key = "{KEY}"\nreceive_id = "{APPID}"\n', encoding="utf-8")
    return path


# -- Grafana ------------------------------------------------------------------------------------

def _exported_series() -> dict[str, set[str]]:
    """Series name -> label names, as GET /metrics of a server that answered, deduplicated and forwarded."""
    from wxcallback.server.app import create_app
    from wxcallback.server.config import parse_config
    from wxcallback.server.stores import MemoryStore

    config = parse_config({"channels": {"w": {"path": "/w", "platform": "wecom-app", "token": TOKEN,
                                              "encoding_aes_key": KEY, "receive_id": APPID}}})
    app = create_app(config, store=MemoryStore())
    side = Platform("wecom-app", "/w")

    async def scrape() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            message = wecom_text("metrics")
            for _ in range(2):  # the second is a platform retry: a dedup hit
                url, body = side.callback(message)
                assert (await client.post(url, content=body)).status_code == 200
            assert (await client.get("/nowhere")).status_code == 404
            text = (await client.get("/metrics")).text
        await app.state.wxcallback.stop()
        return text

    series: dict[str, set[str]] = {}
    for line in asyncio.run(scrape()).splitlines():
        match = re.match(r"(wxcallback_\w+)(?:\{([^}]*)\})? ", line)
        if match:
            labels = set(re.findall(r'(\w+)="', match.group(2) or ""))
            series.setdefault(match.group(1), set()).update(labels)
    return series


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana" / "wxcallback-dashboard.json").read_text(encoding="utf-8"))
    return data


def test_the_dashboard_queries_only_series_the_server_exports() -> None:
    exported = _exported_series()
    assert {"wxcallback_requests_total", "wxcallback_request_seconds_bucket", "wxcallback_dedup_hits_total",
            "wxcallback_outbox_depth"} <= set(exported)
    dashboard = _dashboard()
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [variable["definition"] for variable in dashboard["templating"]["list"]]
    assert expressions
    for expression in expressions:
        names = re.findall(r"\b(wxcallback_\w+)", expression)
        assert names, expression
        for name in names:
            assert name in exported, f"{name} is not exported: {expression}"
            allowed = exported[name] | {"le"}
            used = set(re.findall(r"(\w+)\s*(?:=~|!=|=)\s*\"", expression))
            used |= {label.strip() for group in re.findall(r"by \(([^)]*)\)", expression) for label in group.split(",")}
            used |= set(re.findall(r"label_values\(\w+, (\w+)\)", expression))
            assert used <= allowed, f"{expression} uses labels {used - allowed} that {name} does not have"


def test_the_dashboard_shows_outcomes_latency_against_the_deadline_dedup_and_outbox() -> None:
    panels = {panel["title"]: panel for panel in _dashboard()["panels"]}
    exprs = {title: " ".join(t["expr"] for t in panel["targets"]) for title, panel in panels.items()}
    assert any("by (outcome)" in e and "wxcallback_requests_total" in e for e in exprs.values())
    latency = next(p for t, p in panels.items() if "histogram_quantile(0.99" in exprs[t])
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert 5 in [step["value"] for step in steps] and latency["fieldConfig"]["defaults"]["unit"] == "s"
    assert any("wxcallback_dedup_hits_total" in e for e in exprs.values())
    assert any("wxcallback_outbox_depth" in e for e in exprs.values())
    ids = [panel["id"] for panel in panels.values()]
    assert len(ids) == len(set(ids))


# -- nginx and Caddy ----------------------------------------------------------------------------

def _self_signed(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bot.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    nginx = _tool("nginx")
    _self_signed(tmp_path)
    site = (DEPLOY / "nginx" / "wxcallback.conf").read_text(encoding="utf-8")
    assert "/etc/letsencrypt/live/bot.example.com/" in site
    (tmp_path / "site.conf").write_text(site.replace("/etc/letsencrypt/live/bot.example.com/", f"{tmp_path}/"))
    (tmp_path / "nginx.conf").write_text(f"events {{}}\nhttp {{\n    include {tmp_path}/site.conf;\n}}\n")
    result = subprocess.run([nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                             "-g", f"pid {tmp_path}/nginx.pid;"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_caddy_accepts_the_caddyfile(tmp_path: Path) -> None:
    caddy = _tool("caddy")
    result = subprocess.run([caddy, "validate", "--config", str(DEPLOY / "caddy" / "Caddyfile"), "--adapter",
                             "caddyfile"], capture_output=True, text=True, timeout=60,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_the_proxies_and_compose_agree_on_the_two_instances() -> None:
    nginx = (DEPLOY / "nginx" / "wxcallback.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream wxcallback \{(.*?)\}", nginx, re.S).group(1)  # type: ignore[union-attr]
    assert set(re.findall(r"^\s*server (\S+?)[ ;]", upstream, re.M)) == UPSTREAMS
    caddy = (DEPLOY / "caddy" / "Caddyfile").read_text(encoding="utf-8")
    assert set(re.search(r"reverse_proxy ([^{]*)\{", caddy).group(1).split()) == UPSTREAMS  # type: ignore[union-attr]
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    published = {port.rsplit(":", 1)[0] for name, service in compose["services"].items()
                 if name.startswith("wxcallback") for port in service["ports"]}
    assert published == UPSTREAMS


# -- systemd ------------------------------------------------------------------------------------

def _unit() -> str:
    return (DEPLOY / "systemd" / "wxcallback@.service").read_text(encoding="utf-8")


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    # verify checks that the command exists: point it at this environment's wxcallback.
    unit = tmp_path / "wxcallback@8001.service"
    unit.write_text(_unit().replace("/srv/wxcallback/.venv/bin/wxcallback", str(SCRIPT)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_units_command_is_one_the_cli_accepts(tmp_path: Path) -> None:
    (command,) = re.findall(r"^ExecStart=(.*)$", _unit(), re.M)
    argv = shlex.split(command.replace("%i", "8001"))
    assert argv[0] == "/srv/wxcallback/.venv/bin/wxcallback" and argv[1] == "serve"
    argv[argv.index("--config") + 1] = str(_minimal_config(tmp_path))
    result = subprocess.run([str(SCRIPT), *argv[1:], "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^ReadWritePaths=/var/lib/wxcallback$", _unit(), re.M)


# -- Docker -------------------------------------------------------------------------------------

_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                 "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "docker" / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n\s*", " ", text)
    instructions = []
    for line in logical.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword, rest.strip()))
    return instructions


def _dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    return any(Path(path).match(p) or path == p or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_the_dockerfile_is_well_formed_and_copies_files_that_exist() -> None:
    instructions = _dockerfile()
    assert instructions[0][0] == "FROM"
    for keyword, _ in instructions:
        assert keyword in _INSTRUCTIONS and keyword == keyword.upper(), keyword
    stages = [rest.split()[-1] for keyword, rest in instructions if keyword == "FROM" and " AS " in rest]
    for keyword, rest in instructions:
        if keyword == "COPY":
            parts = rest.split()
            origin = next((p.split("=", 1)[1] for p in parts if p.startswith("--from=")), None)
            sources = [p for p in parts if not p.startswith("--")][:-1]
            if origin is not None:
                assert origin in stages, rest
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert not _dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    assert _dockerignored(".venv") and _dockerignored(".git")


def test_the_image_installs_real_extras_runs_as_a_user_and_checks_its_own_port(tmp_path: Path) -> None:
    instructions = _dockerfile()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    installs = [rest for keyword, rest in instructions if keyword == "RUN" and "wxcallback-*.whl" in rest]
    (install,) = installs
    assert set(re.search(r"\)\[([^\]]+)\]", install).group(1).split(",")) <= extras  # type: ignore[union-attr]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    (exposed,) = [rest for keyword, rest in instructions if keyword == "EXPOSE"]
    entrypoint = json.loads(next(rest for keyword, rest in instructions if keyword == "ENTRYPOINT"))
    command = json.loads(next(rest for keyword, rest in instructions if keyword == "CMD"))
    assert entrypoint == ["wxcallback", "serve"]
    assert command[command.index("--port") + 1] == exposed
    health = next(rest for keyword, rest in instructions if keyword == "HEALTHCHECK")
    assert f"127.0.0.1:{exposed}/healthz" in health
    assert json.loads(health.split("CMD ", 1)[1])[0] == "python"
    # The image's command line is one the CLI accepts.
    command[command.index("--config") + 1] = str(_minimal_config(tmp_path))
    result = subprocess.run([str(SCRIPT), "serve", *command, "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        if name.startswith("wxcallback"):
            assert all(port.endswith(f":{exposed}") for port in service["ports"])


def test_compose_runs_two_instances_on_one_redis_with_a_configuration_that_loads() -> None:
    directory = DEPLOY / "docker"
    compose = yaml.safe_load((directory / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    instances = [service for name, service in services.items() if name.startswith("wxcallback")]
    assert len(instances) == 2 and "redis" in services
    for service in instances:
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (directory / service["build"]["context"]).resolve() == ROOT
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        mounted = {volume.split(":")[1]: directory / volume.split(":")[0] for volume in service["volumes"]}
        assert all(path.is_file() for path in mounted.values())
    config = tomllib.loads((directory / "wxcallback.toml").read_text(encoding="utf-8"))
    assert config["server"]["store"].startswith("redis://redis:6379/")
    # The mounted configuration and handler load as the containers load them (store aside).
    names = re.findall(r"^(\w+)=", (directory / "env.example").read_text(encoding="utf-8"), re.M)
    env = {"PATH": "/usr/bin:/bin", "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": KEY, "WECOM_CORP_ID": APPID}
    assert set(names) == set(env) - {"PATH"}
    result = _check_config(directory / "wxcallback.toml", "--store", "memory://", env=env, cwd=directory)
    assert result.returncode == 0, result.stderr
