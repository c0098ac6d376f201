"""The Redis deny-list of revoked token ids (logout).

Entries expire with the token they revoke, so the list never outgrows the live tokens. If Redis
is unreachable the check lets the token through and logs it: tokens are short-lived and signed,
and an outage must not sign every user out; revocation resumes when Redis returns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis as redis_lib

from app.integrations import redis_keys

log = logging.getLogger("fenxiao.auth")


def revoke(client: redis_lib.Redis, token_id: str, *, expires_at: datetime) -> None:
    ttl = int((expires_at - datetime.now(UTC)).total_seconds()) + 1
    if ttl > 0:
        client.set(redis_keys.revoked_token(token_id), "1", ex=ttl)


def is_revoked(client: redis_lib.Redis, token_id: str) -> bool:
    try:
        return bool(client.exists(redis_keys.revoked_token(token_id)))
    except redis_lib.RedisError:
        log.warning("token deny-list unreachable; accepting a signed, unexpired token")
        return False
