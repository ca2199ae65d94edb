"""The access_token cache: one fetch for every process on the store, refreshed ahead of expiry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from wxcallback.server.access_token import AccessTokens, Credential, TokenError
from wxcallback.server.stores import MemoryStore, Store, open_store
from wxcallback.simulator.platform_api import FakePlatformAPI

APPID, SECRET = "wx5823bf96d3bd56c7", "app-secret-never-logged"
CORPID, CORP_SECRET = "ww0123456789", "corp-secret-never-logged"


Scenario = Callable[[FakePlatformAPI, Store, httpx.AsyncClient], Awaitable[None]]


def run(scenario: Scenario, store_url: str = "memory://", **fake_options: Any) -> None:
    async def main() -> None:
        fake = FakePlatformAPI(apps={APPID: SECRET}, corps={CORPID: CORP_SECRET}, **fake_options)
        async with fake.running(), httpx.AsyncClient() as client:
            store: Store = MemoryStore() if store_url == "memory://" else open_store(store_url)
            try:
                await scenario(fake, store, client)
            finally:
                await store.close()

    asyncio.run(main())


def test_processes_needing_a_token_at_once_fetch_it_once(redis_url: str, redis_prefix: str) -> None:
    async def scenario(fake: FakePlatformAPI, store: Store, client: httpx.AsyncClient) -> None:
        fake.token_delay = 0.3  # a slow endpoint: every caller arrives while the first fetch is in flight
        second_store = open_store(f"{redis_url}?prefix={redis_prefix}")
        try:
            workers = [AccessTokens(store, client), AccessTokens(second_store, client)]
            credential = Credential(fake.api_base, APPID, SECRET)
            tokens = await asyncio.gather(*(workers[i % 2].token(credential) for i in range(10)))
        finally:
            await second_store.close()
        assert len(set(tokens)) == 1
        assert fake.token_requests == 1
        assert sum(w.fetches for w in workers) == 1

    run(scenario, f"{redis_url}?prefix={redis_prefix}")


def test_a_token_fetched_elsewhere_is_picked_up_from_the_store() -> None:
    async def scenario(fake: FakePlatformAPI, store: Store, client: httpx.AsyncClient) -> None:
        credential = Credential(fake.api_base, CORPID, CORP_SECRET, wecom=True)
        first = await AccessTokens(store, client).token(credential)
        other = AccessTokens(store, client)
        assert await other.token(credential) == first and other.fetches == 0
        assert fake.token_requests == 1

    run(scenario)


def test_a_token_is_refreshed_a_little_before_it_expires() -> None:
    async def scenario(fake: FakePlatformAPI, store: Store, client: httpx.AsyncClient) -> None:
        tokens = AccessTokens(store, client)
        credential = Credential(fake.api_base, APPID, SECRET)
        first = await tokens.token(credential)
        assert await tokens.token(credential) == first
        await asyncio.sleep(1.6)  # expires_in 2: refreshed after 2 - 2/4 = 1.5 s, while still valid
        assert await tokens.token(credential) != first
        assert fake.token_requests == 2

    run(scenario, token_ttl=2)


def test_a_stale_token_forces_one_refresh_unless_replaced_already() -> None:
    async def scenario(fake: FakePlatformAPI, store: Store, client: httpx.AsyncClient) -> None:
        credential = Credential(fake.api_base, APPID, SECRET)
        one, two = AccessTokens(store, client), AccessTokens(store, client)
        used = await one.token(credential)
        # Both were refused with the same token: one refresh between them.
        fresh = await asyncio.gather(one.token(credential, stale=used), two.token(credential, stale=used))
        assert fresh[0] == fresh[1] != used
        assert fake.token_requests == 2

    run(scenario)


def test_a_refused_secret_is_a_token_error_without_the_secret() -> None:
    async def scenario(fake: FakePlatformAPI, store: Store, client: httpx.AsyncClient) -> None:
        with pytest.raises(TokenError) as info:
            await AccessTokens(store, client).token(Credential(fake.api_base, APPID, "wrong-secret"))
        assert info.value.errcode == 40125 and "wrong-secret" not in str(info.value)
        fake.down_for(5)
        with pytest.raises(TokenError, match="answered 503"):
            await AccessTokens(store, client).token(Credential(fake.api_base, APPID, SECRET))

    run(scenario)


def test_the_store_holds_no_secret_in_its_key_and_the_credential_repr_none() -> None:
    credential = Credential("https://api.weixin.qq.com", APPID, SECRET)
    assert SECRET not in credential.cache_name and SECRET not in repr(credential)
    assert json.dumps(credential.cache_name)


@pytest.mark.parametrize("expires_in", ["soon", None, -5, True, "nan", [7200]])
def test_an_expires_in_that_is_no_positive_number_is_a_token_error(expires_in: Any) -> None:
    # A token endpoint (or a proxy in front of it) answering nonsense: a TokenError, retried later.
    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t0k3n", "expires_in": expires_in})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
            tokens = AccessTokens(MemoryStore(), client)
            with pytest.raises(TokenError, match="expires_in"):
                await tokens.token(Credential("http://api.test", APPID, SECRET))

    asyncio.run(main())


def test_an_expires_in_given_as_digits_is_read() -> None:
    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t0k3n", "expires_in": "7200"})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
            assert await AccessTokens(MemoryStore(), client).token(Credential("http://api.test", APPID, SECRET)) == "t0k3n"

    asyncio.run(main())
