"""Levels: definitions, upgrades as events happen, the periodic assessment, manual changes."""

from __future__ import annotations

from datetime import datetime

from app.models import Member


def consider_upgrade(member: Member | None, *, at: datetime) -> None:
    """TODO(issue 7): move ``member`` to the highest level whose upgrade conditions hold."""


def assess_due(*, now: datetime) -> dict:
    """TODO(issue 7): the periodic assessment (downgrades by keep conditions)."""
    return {"assessed": 0}
