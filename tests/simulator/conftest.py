"""A reference callback endpoint served once per session, and simulators pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wxcallback.simulator import Simulator

from .reference_endpoint import ACCOUNT_ID, APP_ID, CORP_ID, KEY, TOKEN, Endpoint, ReferenceServer

# Short paces so the whole directory runs in seconds; the deadlines are the behaviour under test.
FAST = {"get_deadline": 0.4, "post_deadline": 0.4, "stream_interval": 0.01, "stream_timeout": 0.5,
        "oversize_bytes": 70 * 1024}

RECEIVE_IDS = {"official-account": APP_ID, "signature-only": APP_ID, "wecom-app": CORP_ID, "wecom-robot": ""}


@pytest.fixture(scope="session")
def reference_server() -> Iterator[ReferenceServer]:
    server = ReferenceServer()
    server.start()
    yield server
    server.stop()


SimulatorFactory = Callable[..., tuple[Simulator, Endpoint]]


@pytest.fixture
def simulator_for(reference_server: ReferenceServer) -> SimulatorFactory:
    """simulator_for(platform, mode=…, data_format=…, faults=…, **simulator options)."""

    def build(platform: str, *, mode: str = "safe", data_format: str = "xml", faults: frozenset[str] = frozenset(),
              **options: Any) -> tuple[Simulator, Endpoint]:
        receive_id = RECEIVE_IDS[platform]
        endpoint = Endpoint(platform, receive_id=receive_id, mode=mode, data_format=data_format, faults=faults)
        url = reference_server.serve(endpoint)
        settings: dict[str, Any] = {**FAST, **options}
        simulator = Simulator(url, platform=platform, token=TOKEN, encoding_aes_key=KEY, receive_id=receive_id,
                              mode=mode, data_format=data_format, account_id=ACCOUNT_ID, **settings)
        return simulator, endpoint

    return build
