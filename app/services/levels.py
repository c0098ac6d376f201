"""Levels: definitions, upgrades as events happen, the periodic assessment, manual changes
(DOMAIN.md, Levels and assessment; the rules themselves are app/domain/levels.py).

Every change of a member's level is a conditional update (it applies only if the level is
still the one the decision was taken from, so a concurrent change is never overwritten) and a
``LevelChange`` row with its cause (upgrade, assessment, manual) and reason. A level's rates
are part of the commission plan: creating, re-rating or deleting a level publishes a new plan
version, and orders keep the rates their snapshot recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, exists, func, or_, select, update

from app.domain import levels as rules
from app.domain.business_time import business_date, merchant_zone
from app.extensions import db
from app.models import Level, LevelChange, Member, Merchant
from app.services.level_figures import COUNTERS, figures_of, from_counter

# The assessment period (DOMAIN.md default: monthly): a member's level is reviewed one period
# after it was last set or confirmed.
PERIOD_MONTHS = 1
CHUNK = 500


def level_terms(merchant_id: int) -> list[rules.LevelTerms]:
    rows = db.session.scalars(select(Level).where(Level.merchant_id == merchant_id)
                              .order_by(Level.weight))
    return [rules.LevelTerms(id=r.id, weight=r.weight, name=r.name,
                             upgrade=rules.rule_from_dict(r.upgrade_rule),
                             keep=rules.rule_from_dict(r.keep_rule)) for r in rows]


def _weight(levels: Sequence[rules.LevelTerms], level_id: int | None) -> int:
    return next((lv.weight for lv in levels if lv.id == level_id), rules.BASE_WEIGHT)


def _today(merchant_id: int, at: datetime) -> date:
    return business_date(at, timezone=db.session.get(Merchant, merchant_id).timezone)


def change_to(member: Member, level_id: int | None, *, cause: str, reason: str,
              at: datetime, staff_id: int | None = None) -> bool:
    """Move ``member`` to ``level_id`` unless its level changed meanwhile (then nothing is
    written: the decision was taken on a level it no longer has). Flushes only."""
    from_id = member.level_id
    moved = db.session.execute(
        update(Member).where(Member.merchant_id == member.merchant_id, Member.id == member.id,
                             Member.level_id.is_not_distinct_from(from_id))
        .values(level_id=level_id, level_changed_at=at)
        .execution_options(synchronize_session="fetch")).rowcount
    if moved:
        db.session.add(LevelChange(merchant_id=member.merchant_id, member_id=member.id,
                                   from_level_id=from_id, to_level_id=level_id, cause=cause,
                                   reason=reason, staff_id=staff_id, created_at=at))
        db.session.flush()
    return bool(moved)


# -- upgrades ----------------------------------------------------------------------------------

def consider_upgrade(member: Member | None, *, at: datetime) -> None:
    """Called by services/events.py in the transaction of a binding, a payment or a
    settlement: an active distributor jumps to the highest level above its own whose upgrade
    conditions hold (never down). Flushes only."""
    if member is None or not member.is_active_distributor:
        return
    levels = level_terms(member.merchant_id)
    _upgrade_many(member.merchant_id, [member], levels, at=at, with_queued=True)


def _upgrade_many(merchant_id: int, members: Sequence[Member],
                  levels: Sequence[rules.LevelTerms], *, at: datetime,
                  with_queued: bool = False) -> int:
    lowest = min((_weight(levels, m.level_id) for m in members), default=0)
    above = [lv for lv in levels if lv.weight > lowest and lv.upgrade.conditions]
    if not above:
        return 0
    figures = figures_of(merchant_id, members, rules.measures(lv.upgrade for lv in above),
                         today=_today(merchant_id, at), with_queued=with_queued)
    upgraded = 0
    for member in members:
        target = rules.upgrade_target(above, current_weight=_weight(levels, member.level_id),
                                      figures=figures[member.id])
        if target is not None:
            upgraded += change_to(member, target.id, cause="upgrade", at=at,
                                  reason=f"upgrade conditions of {target.name} met")
    return upgraded


def _sweep_upgrades(merchant_id: int, levels: Sequence[rules.LevelTerms], *,
                    at: datetime) -> int:
    """Team counters grow for every ancestor, but only the nearest uplines hear of the event
    (and counters arrive through a queue): members whose counters reach a higher level's
    all-time conditions are considered here, each time the assessment job runs."""
    upgraded = 0
    for level in levels:
        floors = [getattr(Member, COUNTERS[c.metric]) >= c.threshold
                  for c in level.upgrade.conditions if from_counter(c.measure)]
        if not floors:
            continue
        lower = [lv.id for lv in levels if lv.weight < level.weight]
        ids = db.session.scalars(select(Member.id).where(
            Member.merchant_id == merchant_id, Member.distributor_status == "active",
            or_(Member.level_id.is_(None), Member.level_id.in_(lower)),
            (and_ if level.upgrade.combine == "all" else or_)(*floors))
            .order_by(Member.id)).all()
        for start in range(0, len(ids), CHUNK):
            members = db.session.scalars(select(Member).where(
                Member.merchant_id == merchant_id, Member.id.in_(ids[start:start + CHUNK]),
                Member.distributor_status == "active")).all()
            upgraded += _upgrade_many(merchant_id, members, levels, at=at)
    return upgraded


# -- assessment --------------------------------------------------------------------------------

def assess_due(*, now: datetime, limit: int = 2000) -> dict:
    """The assess-levels job's work, in the caller's transaction.

    First the upgrade sweep (see ``_sweep_upgrades``). Then every member whose level was set
    or last confirmed one period ago (or earlier) is assessed: it keeps its level when the
    level's keep conditions hold, else drops to the highest lower level whose keep conditions
    hold, else to the base level. Either way a ``LevelChange`` row with cause ``assessment``
    is written — from and to the same level when it was kept — and that row starts the next
    period. At most ``limit`` members per merchant per run; rows another runner holds are
    skipped, and a second run finds nobody due.
    """
    totals = {"assessed": 0, "downgraded": 0, "upgraded": 0}
    for merchant_id in db.session.scalars(select(Level.merchant_id).distinct()).all():
        levels = level_terms(merchant_id)
        totals["upgraded"] += _sweep_upgrades(merchant_id, levels, at=now)
        due = _due_members(merchant_id, now=now, limit=limit)
        for start in range(0, len(due), CHUNK):
            assessed, dropped = _assess(merchant_id, due[start:start + CHUNK], levels, now)
            totals["assessed"] += assessed
            totals["downgraded"] += dropped
    return totals


def _day_start(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=merchant_zone(timezone)).astimezone(UTC)


def _due_members(merchant_id: int, *, now: datetime, limit: int) -> list[Member]:
    timezone = db.session.get(Merchant, merchant_id).timezone
    cutoff_day = rules.review_cutoff(business_date(now, timezone=timezone),
                                     months=PERIOD_MONTHS)
    reviewed_since = _day_start(cutoff_day + timedelta(days=1), timezone)
    confirmed = exists().where(LevelChange.merchant_id == Member.merchant_id,
                               LevelChange.member_id == Member.id,
                               LevelChange.cause == "assessment",
                               LevelChange.created_at >= reviewed_since)
    return list(db.session.scalars(
        select(Member).where(Member.merchant_id == merchant_id, Member.level_id.is_not(None),
                             or_(Member.level_changed_at.is_(None),
                                 Member.level_changed_at < reviewed_since), ~confirmed)
        .order_by(Member.id).limit(limit).with_for_update(of=Member, skip_locked=True)))


def _assess(merchant_id: int, members: Sequence[Member],
            levels: Sequence[rules.LevelTerms], now: datetime) -> tuple[int, int]:
    figures = figures_of(merchant_id, members, rules.measures(lv.keep for lv in levels),
                         today=_today(merchant_id, now))
    dropped = 0
    for member in members:
        current = next((lv for lv in levels if lv.id == member.level_id), None)
        if current is None:  # its level was deleted under it: back to the base level
            dropped += change_to(member, None, cause="assessment", at=now,
                                 reason="its level no longer exists")
            continue
        target = rules.keep_target(levels, current=current, figures=figures[member.id])
        if target is not None and target.id == current.id:
            db.session.add(LevelChange(merchant_id=merchant_id, member_id=member.id,
                                       from_level_id=current.id, to_level_id=current.id,
                                       cause="assessment", reason="keep conditions met",
                                       created_at=now))
            continue
        missed = "; ".join(rules.unmet(current.keep, figures[member.id]))
        dropped += change_to(member, target.id if target else None, cause="assessment",
                             at=now, reason=f"keep conditions of {current.name} not met: "
                                            f"{missed}")
    db.session.flush()
    return len(members), dropped


# -- reading -----------------------------------------------------------------------------------

def level_names(merchant_id: int) -> dict[int, str]:
    return dict(db.session.execute(select(Level.id, Level.name).where(
        Level.merchant_id == merchant_id)).all())


def level_name(member: Member) -> str | None:
    """The name of the member's level; None at the base level."""
    if member.level_id is None:
        return None
    return level_names(member.merchant_id).get(member.level_id)


def level_summary(member: Member) -> dict | None:
    """{"id", "name", "weight"} of the member's level; None at the base level."""
    if member.level_id is None:
        return None
    level = db.session.get(Level, (member.merchant_id, member.level_id))
    return None if level is None else {"id": level.id, "name": level.name,
                                       "weight": level.weight}


def level_history(*, merchant_id: int, member_id: int, page: int = 1,
                  per_page: int = 20) -> tuple[list[dict], int]:
    """A member's level changes and assessments, newest first, with level names (None: the
    base level, or a level deleted since)."""
    query = select(LevelChange).where(LevelChange.merchant_id == merchant_id,
                                      LevelChange.member_id == member_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(LevelChange.id.desc()).limit(per_page)
                              .offset((page - 1) * per_page)).all()
    names = level_names(merchant_id)
    return [{"id": r.id, "from_level_id": r.from_level_id, "to_level_id": r.to_level_id,
             "from_level": names.get(r.from_level_id), "to_level": names.get(r.to_level_id),
             "cause": r.cause, "reason": r.reason, "staff_id": r.staff_id,
             "created_at": r.created_at} for r in rows], total
