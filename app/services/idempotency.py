"""``Idempotency-Key`` for POSTs that create orders or move money (API.md, Conventions).

Claimed inside the caller's transaction: the first request inserts the key; a concurrent
repeat waits on the key until the first commits (then finds its result) or rolls back (then
becomes the first). A repeat with another body is a 409.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.database import utcnow
from app.errors import Conflict
from app.extensions import db
from app.models import IdempotencyRecord


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def claim(*, merchant_id: int, scope: str, key: str, body: dict) -> IdempotencyRecord | None:
    """Claim ``key`` for this request: None when it is new (the caller does the work and calls
    ``record``); the earlier record when this is a repeat of the same request."""
    digest = request_hash(body)
    insert = postgresql_insert if db.session.get_bind().dialect.name == "postgresql" \
        else sqlite_insert
    # ON CONFLICT DO NOTHING waits for a concurrent first claim to commit (then inserts
    # nothing) or to roll back (then inserts): no error, no savepoint.
    claimed = db.session.execute(
        insert(IdempotencyRecord).values(merchant_id=merchant_id, scope=scope, key=key,
                                         request_hash=digest, result={}, created_at=utcnow())
        .on_conflict_do_nothing().returning(IdempotencyRecord.key)).scalar()
    if claimed is not None:
        return None
    earlier = db.session.get(IdempotencyRecord, (merchant_id, scope, key),
                             populate_existing=True)
    if earlier.request_hash != digest:
        raise Conflict("This Idempotency-Key was used for a different request.",
                       code="idempotency_key_reused")
    return earlier


def record(*, merchant_id: int, scope: str, key: str, result: dict) -> None:
    row = db.session.get(IdempotencyRecord, (merchant_id, scope, key))
    row.result = result
