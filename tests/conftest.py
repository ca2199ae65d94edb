"""Fixtures shared by every test package: a real Redis; and no skipped test in CI.

A test may skip where a tool it needs cannot be installed (atheris, nginx) or started (Redis).
In CI (``WXCALLBACK_CI`` or ``CI`` set; ``.ci/run`` sets the first) every skip is turned into a
failure: CI installs everything, so a skip there would hide a test that never ran.

Redis: the server at 127.0.0.1:6379 when it answers PING, else a ``redis-server`` started here
on a free port for the session. When neither works the Redis tests are skipped (failed in CI). Every test gets its own key
prefix under one per-run prefix, and every key under it is deleted afterwards, so a shared
Redis is left as it was found.
"""

from __future__ import annotations

import itertools
import os
import shutil
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
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(url):
            if server.poll() is not None or time.monotonic() > deadline:
                _unavailable(f"redis-server on port {port} did not start")
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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
