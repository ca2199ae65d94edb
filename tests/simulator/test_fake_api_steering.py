"""The fake platform API's /_fake/ endpoints: ?wait=N answers once N sends are in; a bad number is a 400."""

from __future__ import annotations

import asyncio

import httpx

from wxcallback.simulator.platform_api import FakePlatformAPI, Received


def test_received_with_wait_answers_once_the_send_is_in() -> None:
    async def scenario() -> tuple[int, list[dict[str, object]]]:
        fake = FakePlatformAPI()
        async with fake.running(), httpx.AsyncClient(timeout=30) as client:
            waiting = asyncio.ensure_future(client.get(f"{fake.api_base}/_fake/received?wait=1"))
            await asyncio.sleep(0)  # the request goes out before the send is in
            fake.received.append(Received("custom/send", {"touser": "o1"}))
            answer = await waiting
            return answer.status_code, answer.json()

    status, sends = asyncio.run(scenario())
    assert status == 200 and [send["body"] for send in sends] == [{"touser": "o1"}]


def test_a_steering_number_that_is_not_one_is_refused() -> None:
    async def scenario() -> list[int]:
        fake = FakePlatformAPI()
        async with fake.running(), httpx.AsyncClient() as client:
            return [(await client.request(method, f"{fake.api_base}{path}")).status_code
                    for method, path in (("GET", "/_fake/received?wait=x"), ("POST", "/_fake/down?seconds=soon"),
                                         ("GET", "/_fake/nothing"))]

    assert asyncio.run(scenario()) == [400, 400, 404]
