"""Scheduled jobs. Each is safe to run twice and on several hosts at once: work is claimed
under database locks, so a second runner waits or finds nothing left to do."""

from __future__ import annotations

from sqlalchemy import select

from app.database import transaction
from app.extensions import db
from app.models import TeamDeltaRow
from app.services import tree


def apply_team_deltas() -> dict:
    """Apply the queued team-counter deltas of every merchant that has some."""
    merchant_ids = db.session.scalars(select(TeamDeltaRow.merchant_id).distinct()).all()
    db.session.rollback()
    applied = {}
    for merchant_id in merchant_ids:
        with transaction(db.session):
            tree.lock_tree(merchant_id)
            applied[merchant_id] = tree.apply_team_deltas(merchant_id)
    return {"applied": sum(applied.values()), "merchants": len(applied)}
