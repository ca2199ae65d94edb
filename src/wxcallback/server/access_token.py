"""The platforms' access_token: fetched once for the whole cluster, cached in the shared store.

Official Accounts and mini programs get it with ``GET {api_base}/cgi-bin/token?grant_type=
client_credential&appid=…&secret=…``, WeCom with ``GET {api_base}/cgi-bin/gettoken?corpid=…
&corpsecret=…``; both answer ``{"access_token": …, "expires_in": 7200}`` (WeCom adds
``"errcode": 0``). Each fetch may invalidate the token the others hold (the OA doc says the
new token replaces the old after a short overlap), so two workers refreshing at once can undo
each other: the refresh is **single-flight** across every worker and host. One process takes
the store's lease on the credential, fetches and stores the token with its expiry; the others
poll the stored value until it appears. A token refreshed elsewhere is picked up from the
store; it is refreshed a little before it expires.

An API that answers ``invalid credential`` (40001), ``access_token expired`` (42001) or
``invalid access_token`` (40014) to a token still stored gets one forced refresh:
``token(credential, stale=used)`` fetches again unless another process already replaced
``used``. Secrets and tokens never appear in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field

import httpx

from ..core import WXCallbackError
from ..core.errors import ErrorCode
from .stores import Store

__all__ = ["INVALID_TOKEN_CODES", "AccessTokens", "Credential", "TokenError"]

#: errcodes that mean "this access_token is not (or no longer) valid": refresh once, retry once
INVALID_TOKEN_CODES = frozenset({40001, 40014, 42001})
# Refresh this long before the platform's expiry (the OA doc: refresh ahead, tokens overlap ~5 min).
_REFRESH_AHEAD = 300.0


class TokenError(WXCallbackError):
    """No access_token could be had now (API down, refused credential, no answer in time).

    Always worth another try later: a whitelist or a secret fixed in the console makes the
    next fetch succeed. ``errcode`` is the platform's, when it answered one.
    """

    code = ErrorCode.OK

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


@dataclass(frozen=True)
class Credential:
    """What fetches one access_token: the API, the AppID or CorpID, the AppSecret or app Secret."""

    api_base: str
    app_id: str
    secret: str = field(repr=False)
    wecom: bool = False

    @property
    def cache_name(self) -> str:
        """The store name of its token: a digest, so the secret is not readable from the store's keys."""
        digest = hashlib.blake2b(f"{self.api_base}\0{self.app_id}\0{self.secret}".encode(), digest_size=16)
        return f"access-token:{digest.hexdigest()}"

    def token_url(self) -> tuple[str, dict[str, str]]:
        base = self.api_base.rstrip("/")
        if self.wecom:
            return f"{base}/cgi-bin/gettoken", {"corpid": self.app_id, "corpsecret": self.secret}
        return f"{base}/cgi-bin/token", {"grant_type": "client_credential", "appid": self.app_id,
                                         "secret": self.secret}


class AccessTokens:
    """access_tokens of any number of credentials, shared through ``store`` by every process."""

    def __init__(self, store: Store, client: httpx.AsyncClient, *, holder: str | None = None,
                 lease_ttl: float = 15.0, poll_interval: float = 0.05, timeout: float = 10.0) -> None:
        self._store = store
        self._client = client
        self._holder = holder or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self._lease_ttl = lease_ttl
        self._poll = poll_interval
        self._timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}
        #: fetches this process made (each is one request to the token endpoint)
        self.fetches = 0

    async def token(self, credential: Credential, *, stale: str | None = None) -> str:
        """A valid access_token; ``stale``: the one the API just refused, not to be given back."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._timeout + self._lease_ttl
        while True:
            cached = await self._cached(credential, stale)
            if cached is not None:
                return cached
            # One refresh per process (the lease is per holder, and every task here is the same
            # holder), then one per cluster (the lease).
            async with self._locks.setdefault(credential.cache_name, asyncio.Lock()):
                cached = await self._cached(credential, stale)  # refreshed while this task waited
                if cached is not None:
                    return cached
                lease = f"{credential.cache_name}:refresh"
                if await self._store.acquire_lease(lease, self._holder, self._lease_ttl):
                    try:
                        # Another process may have stored one between our look and the lease.
                        cached = await self._cached(credential, stale)
                        return cached if cached is not None else await self._fetch(credential)
                    finally:
                        await self._store.release_lease(lease, self._holder)
            if loop.time() >= give_up:
                raise TokenError("no access_token: another process is refreshing it and none appeared in "
                                 f"{self._timeout + self._lease_ttl:g} s")
            # Someone else is fetching: wait for its token (or for its lease to lapse if it died).
            await asyncio.sleep(self._poll)

    async def _cached(self, credential: Credential, stale: str | None) -> str | None:
        data = await self._store.get_value(credential.cache_name)
        if data is None:
            return None
        entry = json.loads(data)
        token = str(entry["access_token"])
        if token == stale or float(entry["refresh_at"]) <= time.time():
            return None
        return token

    async def _fetch(self, credential: Credential) -> str:
        url, params = credential.token_url()
        self.fetches += 1
        try:
            response = await self._client.get(url, params=params, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint {url} unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise TokenError(f"token endpoint {url} answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise TokenError(f"token endpoint {url} answered something other than JSON") from None
        errcode = answer.get("errcode", 0) if isinstance(answer, dict) else None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if errcode or not isinstance(token, str) or not token:
            errmsg = str(answer.get("errmsg", ""))[:200] if isinstance(answer, dict) else ""
            raise TokenError(f"token endpoint {url} refused: errcode {errcode} {errmsg}".rstrip(),
                             errcode if isinstance(errcode, int) else None)
        expires_in = float(answer.get("expires_in", 7200))
        ahead = min(_REFRESH_AHEAD, expires_in / 4)
        entry = {"access_token": token, "refresh_at": time.time() + expires_in - ahead}
        await self._store.put_value(credential.cache_name, json.dumps(entry).encode(), max(expires_in, 1.0))
        return token
