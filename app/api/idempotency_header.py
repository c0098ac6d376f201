"""The ``Idempotency-Key`` header of POSTs that create orders or move money (API.md)."""

from __future__ import annotations

from flask import request

from app.errors import InvalidInput

MAX_LENGTH = 128
PARAMETER = {"name": "Idempotency-Key", "in": "header", "required": False,
             "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH}}


def idempotency_key() -> str | None:
    """The header's value, or None without one; an over-long key is refused, never cut (two
    different long keys must not become one)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_LENGTH:
        raise InvalidInput(errors={"Idempotency-Key": [f"1 to {MAX_LENGTH} characters."]})
    return key
