"""`flask demo seed`: a demo merchant with a living program, in an empty database only."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import Merchant


def seed() -> str:
    if db.session.scalar(select(func.count()).select_from(Merchant)):
        return "the database already has data; nothing seeded"
    return "demo seed: nothing to seed yet"
