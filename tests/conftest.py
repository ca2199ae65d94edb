"""Fixtures shared by every test package: a real Redis and Redis Cluster; no skipped test in CI.

A test may skip where a tool it needs cannot be installed (atheris, nginx) or started (Redis).
In CI (``WXCALLBACK_CI`` or ``CI`` set; ``.ci/run`` sets the first) every skip is turned into a
failure: CI installs everything, so a skip there would hide a test that never ran.

Redis: the server at 127.0.0.1:6379 when it answers PING, else a ``redis-server`` started here
on a free port for the session. When neither works the Redis tests are skipped (failed in CI).
Every test gets its own key prefix under one per-run prefix, and every key under it is deleted
afterwards, so a shared Redis is left as it was found.

Redis Cluster: three masters (``redis-server --cluster-enabled yes``, no replicas) started on
free loopback ports for the session and joined with ``redis-cli --cluster create``; the same
CI rule applies when ``redis-server`` or ``redis-cli`` is missing. The cluster is private to
the session, so each test's keys are removed by flushing every master afterwards.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
IN_CI = bool(os.environ.get("WXCALLBACK_CI") or os.environ.get("CI"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {reason}"


def _answers_ping(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for batch in _batches(client.scan_iter(match=f"{prefix}*", count=500), 500):
            client.delete(*batch)
    finally:
        client.close()


def _batches(keys: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _unavailable(reason: str) -> NoReturn:
    message = f"no Redis for the Redis store tests: {reason}"
    pytest.skip(message)  # a failure in CI (pytest_runtest_makereport)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis for this test session (local server, or one started for the session)."""
    if _answers_ping(LOCAL_REDIS_URL):
        yield LOCAL_REDIS_URL
        return
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("the redis package is not installed (pip install 'redis>=5.0.1')")
    executable = shutil.which("redis-server")
    if executable is None:
        _unavailable("nothing answers at 127.0.0.1:6379 and redis-server is not on PATH")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wxcallback-redis-")
    server = start_redis_server(executable, port, workdir)
    try:
        yield wait_for_redis(server, port)
    finally:
        stop_servers([server])
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_run_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test run uses; everything under it is deleted at the end."""
    prefix = f"wxcallback-test:{uuid.uuid4().hex}:"
    yield prefix
    _delete_prefix(redis_url, prefix)


_test_numbers = itertools.count()


@pytest.fixture
def redis_prefix(redis_url: str, redis_run_prefix: str) -> Iterator[str]:
    """A key prefix for one test, so each test starts with an empty outbox."""
    prefix = f"{redis_run_prefix}{next(_test_numbers)}:"
    yield prefix
    _delete_prefix(redis_url, prefix)


# -- Redis Cluster -------------------------------------------------------------------------------

CLUSTER_MASTERS = 3


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _cluster_ready(ports: list[int]) -> bool:
    """Every node reports cluster_state:ok and knows all the masters."""
    import redis

    for port in ports:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
        try:
            info = client.execute_command("CLUSTER", "INFO")
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        text = info.decode() if isinstance(info, bytes) else str(info)
        if "cluster_state:ok" not in text or f"cluster_known_nodes:{len(ports)}" not in text:
            return False
    return True


def start_redis_server(executable: str, port: int, workdir: str, *extra: str) -> subprocess.Popen[bytes]:
    """A ``redis-server`` on 127.0.0.1:``port`` keeping its files in ``workdir``."""
    return subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--save", "", "--appendonly", "no", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_redis(server: subprocess.Popen[bytes], port: int) -> str:
    """The URL of ``server`` once it answers PING (the tests fail, in CI, if it never does)."""
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _answers_ping(url):
        if server.poll() is not None or time.monotonic() > deadline:
            _unavailable(f"redis-server on port {port} did not start")
        time.sleep(0.05)
    return url


def stop_servers(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def redis_cluster_ports() -> Iterator[list[int]]:
    """Ports of a 3-master Redis Cluster started on loopback for this session."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("the redis package is not installed (pip install 'redis>=5.0.1')")
    server_binary = shutil.which("redis-server")
    cli_binary = shutil.which("redis-cli")
    if server_binary is None or cli_binary is None:
        _unavailable("redis-server and redis-cli are needed to start a Redis Cluster")
    ports = [_free_cluster_port() for _ in range(CLUSTER_MASTERS)]
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="wxcallback-cluster-") as workdir:
        try:
            for port in ports:
                node_dir = os.path.join(workdir, str(port))
                os.mkdir(node_dir)
                servers.append(start_redis_server(
                    server_binary, port, node_dir, "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                ))
            deadline = time.monotonic() + 10
            while not all(_answers_ping(f"redis://127.0.0.1:{port}/0") for port in ports):
                if any(server.poll() is not None for server in servers) or time.monotonic() > deadline:
                    _unavailable("the Redis Cluster nodes did not start")
                time.sleep(0.05)
            created = subprocess.run(
                [cli_binary, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, timeout=60,
            )
            if created.returncode != 0:
                _unavailable(f"redis-cli --cluster create failed: {created.stdout[-500:]!r}")
            deadline = time.monotonic() + 30
            while not _cluster_ready(ports):
                if time.monotonic() > deadline:
                    _unavailable("the Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.1)
            yield ports
        finally:
            stop_servers(servers)


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster_ports: list[int]) -> str:
    """The store URL of the session's cluster, naming every master as a startup node."""
    return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in redis_cluster_ports)


@pytest.fixture
def redis_cluster_prefix(redis_cluster_ports: list[int]) -> Iterator[str]:
    """A key prefix for one test on the cluster; every master is flushed afterwards."""
    import redis

    yield f"wxcallback-test:{next(_test_numbers)}:"
    for port in redis_cluster_ports:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            client.flushall()
        finally:
            client.close()
