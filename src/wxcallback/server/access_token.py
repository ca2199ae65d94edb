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

Any :class:`TokenSource` is cached the same way: a :class:`Credential` (the GET above), and
the third parties' chains of POSTs (server/third_party.py: component and authorizer tokens,
suite and corp tokens), whose fetches call ``AccessTokens.call`` and may ask it for the
token one step up the chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import httpx

from ..core import WXCallbackError
from ..core.errors import ErrorCode
from .stores import Store

__all__ = ["INVALID_TOKEN_CODES", "AccessTokens", "Credential", "Fetched", "TokenError", "TokenSource", "answer_field",
           "expires_in_of", "fetched_from"]

#: errcodes that mean "this access_token is not (or no longer) valid": refresh once, retry once
INVALID_TOKEN_CODES = frozenset({40001, 40014, 42001})
# Refresh this long before the platform's expiry (the OA doc: refresh ahead, tokens overlap ~5 min).
_REFRESH_AHEAD = 300.0


class TokenError(WXCallbackError):
    """No access_token could be had now (API down, refused credential, no answer in time).

    Usually worth another try later: a whitelist or a secret fixed in the console makes the
    next fetch succeed. ``permanent``: no later try can succeed (an account that revoked its
    authorization of a third party). ``errcode`` is the platform's, when it answered one.
    """

    code = ErrorCode.OK

    def __init__(self, message: str, errcode: int | None = None, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.permanent = permanent


class Fetched(NamedTuple):
    """A token as an endpoint gave it, and its lifetime in seconds."""

    access_token: str
    expires_in: float

    def __repr__(self) -> str:
        return f"Fetched(expires_in={self.expires_in!r})"  # the token stays out of any log of it


class TokenSource(Protocol):
    """What fetches one kind of token; ``cache_name`` is its key in the store (no secret readable in it)."""

    @property
    def cache_name(self) -> str: ...

    async def fetch(self, tokens: AccessTokens) -> Fetched: ...


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

    async def fetch(self, tokens: AccessTokens) -> Fetched:
        url, params = self.token_url()
        answer = await tokens.call("GET", url, params=params)
        return fetched_from(answer, "access_token", url)


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

    @property
    def store(self) -> Store:
        return self._store

    async def token(self, credential: TokenSource, *, stale: str | None = None) -> str:
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

    async def keep(self, credential: TokenSource, fetched: Fetched) -> None:
        """Store a token obtained another way (an authorization exchange answers one too)."""
        expires_in = max(fetched.expires_in, 1.0)
        ahead = min(_REFRESH_AHEAD, expires_in / 4)
        entry = {"access_token": fetched.access_token, "refresh_at": time.time() + expires_in - ahead}
        await self._store.put_value(credential.cache_name, json.dumps(entry).encode(), expires_in)

    async def forget(self, credential: TokenSource) -> None:
        """Drop the stored token (the store keeps no deletion: an entry already due replaces it)."""
        await self._store.put_value(credential.cache_name, json.dumps({"access_token": "", "refresh_at": 0}).encode(),
                                    1.0)

    async def call(self, method: str, url: str, *, params: dict[str, str] | None = None,
                   json_body: dict[str, Any] | None = None, what: str = "token endpoint") -> dict[str, Any]:
        """One request to a token endpoint: its JSON answer, or TokenError saying why not.

        The URL in the error never has its query (a token may be in it); ``errcode`` is set
        when the platform refused.
        """
        self.fetches += 1
        try:
            response = await self._client.request(method, url, params=params, json=json_body,
                                                  timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise TokenError(f"{what} {url} unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise TokenError(f"{what} {url} answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise TokenError(f"{what} {url} answered something other than JSON") from None
        if not isinstance(answer, dict):
            raise TokenError(f"{what} {url} answered something other than a JSON object")
        errcode = answer.get("errcode", 0)
        if errcode:
            errmsg = str(answer.get("errmsg", ""))[:200]
            raise TokenError(f"{what} {url} refused: errcode {errcode} {errmsg}".rstrip(),
                             errcode if isinstance(errcode, int) else None)
        return answer

    async def _cached(self, credential: TokenSource, stale: str | None) -> str | None:
        data = await self._store.get_value(credential.cache_name)
        if data is None:
            return None
        entry = json.loads(data)
        token = str(entry["access_token"])
        if token == stale or float(entry["refresh_at"]) <= time.time():
            return None
        return token

    async def _fetch(self, credential: TokenSource) -> str:
        fetched = await credential.fetch(self)
        await self.keep(credential, fetched)
        return fetched.access_token


def answer_field(answer: dict[str, Any], key: str, url: str) -> str:
    """``answer[key]``, a non-empty string, or TokenError (a 200 without the token is a refusal)."""
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise TokenError(f"token endpoint {url} answered no {key}")
    return value


def expires_in_of(answer: dict[str, Any], url: str) -> float:
    """``answer["expires_in"]`` in seconds (7200 when absent), or TokenError if it is not a positive number."""
    value = answer.get("expires_in", 7200)
    try:
        seconds = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise TokenError(f"token endpoint {url} answered an expires_in that is not a positive number")
    return seconds


def fetched_from(answer: dict[str, Any], key: str, url: str) -> Fetched:
    """The token ``answer[key]`` and its lifetime, checked (one reading for every token endpoint)."""
    return Fetched(answer_field(answer, key, url), expires_in_of(answer, url))
