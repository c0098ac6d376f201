"""Tenant scoping: every read of merchant-owned rows names the merchant (ARCHITECTURE.md 8).

An id that exists under another merchant is simply not found, so a 404 reveals nothing.
"""

from __future__ import annotations

from app.errors import NotFound
from app.extensions import db


def get_scoped(model, *, merchant_id: int, id: int, what: str, for_update: bool = False):
    if for_update:
        obj = db.session.get(model, (merchant_id, id), with_for_update=True)
    else:
        obj = db.session.get(model, (merchant_id, id))
    if obj is None:
        raise NotFound(f"No such {what}.", code=f"{what.replace(' ', '_')}_not_found")
    return obj
