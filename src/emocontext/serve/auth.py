"""API keys and the per-key request limit: who is calling (:func:`caller`, a FastAPI dependency).

With keys (``--api-key-file``, ``$EMOCONTEXT_API_KEYS``) every ``/v1/*`` request and ``/metrics`` needs
``Authorization: Bearer KEY``; the key is compared with every known key in constant time
(:func:`hmac.compare_digest`, no early exit) and never logged or stored: a job records its key's
:func:`key_id` (a SHA-256 prefix). Without keys everyone is the same caller (``""``).

Requests a minute are limited per key (without keys: per client address) with the ``limits`` package's
moving window; beyond, 429 with ``Retry-After`` (seconds until the oldest request of the window
leaves it).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .errors import ApiError
from .uploads import discard_body

__all__ = ["Auth", "caller", "key_id"]

_bearer = HTTPBearer(auto_error=False, description="an API key of the server (`--api-key-file`)")


def key_id(key: str) -> str:
    """The id a job records for its key: the first 16 hex digits of the key's SHA-256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


class Auth:
    """The keys and the request limiter of one app.

    Args:
        keys: the accepted keys (empty: no key needed).
        requests_per_minute: per key (or client address); 0: no limit.
    """

    def __init__(self, keys: tuple[str, ...], requests_per_minute: int):
        self._keys = [(k.encode("utf-8"), key_id(k)) for k in keys]
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._item = RateLimitItemPerMinute(requests_per_minute) if requests_per_minute else None

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def owner(self, token: str | None) -> str:
        """The key id of ``token``; :class:`ApiError` 401 when keys are set and ``token`` is none of them."""
        if not self._keys:
            return ""
        given = (token or "").encode("utf-8")
        found = None
        for key, kid in self._keys:
            if hmac.compare_digest(given, key):
                found = kid
        if found is None:
            what = "a wrong API key" if token else "no API key"
            raise ApiError(
                401,
                "unauthorized",
                f"{what}: send the header Authorization: Bearer KEY with a key of this server",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return found

    def count(self, who: str) -> None:
        """Count one request of ``who``; :class:`ApiError` 429 with ``Retry-After`` beyond the limit."""
        if self._item is None or self._limiter.hit(self._item, who):
            return
        reset = self._limiter.get_window_stats(self._item, who).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {self._item.amount} requests in a minute; wait {wait} s",
            headers={"Retry-After": str(wait)},
        )


async def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """FastAPI dependency of the ``/v1`` routes and ``/metrics``: the caller's key id (``""`` without keys).

    Raises:
        ApiError: 401 without a valid key (when keys are set); 429 over the request limit. The request's
            body is read and dropped first, so a refused upload gets its answer instead of a broken pipe.
    """
    auth: Auth = request.app.state.auth
    try:
        owner = auth.owner(credentials.credentials if credentials is not None else None)
        auth.count(owner if auth.required else f"addr:{request.client.host if request.client else ''}")
    except ApiError:
        await discard_body(request)
        raise
    return owner
