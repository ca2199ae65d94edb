"""Replay guard: a timestamp window and a nonce cache, in the shared store.

A platform retry resends the very same request, so it must pass; the dedup cache
then answers it with the reply already given. A *replay* is a request whose nonce was
already used with other content.

- Encrypted requests need only the timestamp window: ``msg_signature`` covers the
  timestamp, the nonce and the ciphertext, so changing any of them breaks the
  signature, and a byte-identical replay is indistinguishable from a platform retry:
  dedup answers it with the cached reply and the handler does not run again.
- Plaintext requests (Official Account plaintext mode, signature-only gateways) also
  need the nonce cache: their ``signature`` covers only token, timestamp and nonce, not
  the body, so a captured URL could carry any body. The guard records the nonce and a
  fingerprint of its first request, in one atomic step (``Store.record_nonce``); the same
  fingerprint again is a retry, any other on a used nonce is refused, however often it is
  sent. The robot doc guarantees nonces are unique for 2 hours (WeCom doc 101033), which
  bounds the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from ..core import WXCallbackError
from ..core.errors import ErrorCode
from .stores import Store

__all__ = ["ReplayError", "ReplayGuard", "replay_scope"]

_NONCE_TTL = 2 * 60 * 60
# Unix seconds have 10 digits until 2286; anything longer is not a time (and a few hundred
# digits overflow the float arithmetic of the window check)
_MAX_TIMESTAMP_DIGITS = 11


class ReplayError(WXCallbackError):
    """The request is stale or reuses a nonce with other content (answered 403)."""

    # Not a protocol failure (the signature was right): no official code applies.
    code = ErrorCode.OK


def replay_scope(token: str, digest: str) -> str:
    """What a plaintext request's signature covers, as a key prefix: its Token (and digest).

    A nonce is spent for every channel sharing the Token, so a request captured on one
    channel cannot be replayed on another channel with the same Token.
    """
    return hashlib.sha256(f"{digest}\0{token}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


class ReplayGuard:
    def __init__(self, store: Store, scope: str, window: float, clock: Callable[[], float] = time.time) -> None:
        """``scope``: ``replay_scope(token, digest)``; channels with the same Token share it."""
        self._store = store
        self._prefix = f"replay:{scope}:"
        self._window = window
        self._clock = clock

    def check_timestamp(self, timestamp: str) -> None:
        if not self._window:
            return
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
            raise ReplayError(f"timestamp {timestamp[:20]!r}{'…' if len(timestamp) > 20 else ''} is not Unix seconds")
        skew = abs(self._clock() - int(timestamp))
        if skew > self._window:
            raise ReplayError(
                f"timestamp is {skew:.0f} s away from this server's clock (window {self._window:.0f} s): "
                "a replayed request, or check the server clock (NTP)"
            )

    async def check(self, timestamp: str, nonce: str, signature: str, body: bytes) -> None:
        """Refuse a stale timestamp or a nonce reused for different content (plaintext requests)."""
        self.check_timestamp(timestamp)
        fingerprint = hashlib.sha256(b"\0".join((timestamp.encode(), signature.encode(), body))).digest()
        # A nonce is spent with its timestamp: the signature binds both, so a replay repeats
        # both, while two of the platform's requests with the same nonce in other seconds (a
        # 10-digit random nonce repeats within hours at a few hundred messages a second) both pass.
        nonce_key = hashlib.sha256(f"{timestamp}\0{nonce}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
        ttl = max(_NONCE_TTL, 2 * self._window)
        # One atomic step: the nonce and the fingerprint of its first request. A key per
        # fingerprint, recorded before the nonce, let a refused replay record its own: its
        # second copy then passed as a "retry".
        first = await self._store.record_nonce(f"{self._prefix}u:{nonce_key}", fingerprint, ttl)
        if first is not None and not hmac.compare_digest(first, fingerprint):
            raise ReplayError("nonce already used by a different request: refused as a replay")
        # None: the first use; the same fingerprint: the same request again, a platform retry
