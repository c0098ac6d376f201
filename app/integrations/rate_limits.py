"""Rate limits keyed by something other than the client IP (an openid, a username).

Flask-Limiter decorates routes by IP; a key that is known only inside the request (the openid
WeChat returns) is checked here with the same ``limits`` library and the same Redis storage.
A Redis outage lets requests through: rate limits protect capacity, they never guard money.
"""

from __future__ import annotations

import logging

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("fenxiao.rate_limits")


class KeyedLimit:
    def __init__(self, *, storage_uri: str, limit: str, namespace: str,
                 storage_options: dict | None = None):
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(storage_uri, **(storage_options or {})))
        self._limit = parse(limit)
        self._namespace = namespace

    def hit(self, key: str) -> bool:
        """Count one request for ``key``; False when the limit is exceeded."""
        try:
            return self._limiter.hit(self._limit, self._namespace, key)
        except Exception:  # noqa: BLE001 — `limits` re-raises each driver's own errors as-is
            log.warning("rate-limit storage unreachable; allowing %s", self._namespace)
            return True
