"""Level definitions (the console's CRUD) and manual level changes.

Each function is one transaction. Writers first lock the merchant row — as a change of the
program rules does — so level edits and rule edits publish plan versions one at a time, each
from the whole current state.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from app.database import transaction
from app.domain import levels as rules
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.models import Level, Member, Merchant
from app.services import commission_plans, merchants
from app.services.levels import change_to
from app.services.scoping import get_scoped

EDITABLE = ("name", "weight", "tier_rates_bps", "upgrade_rule", "keep_rule")
EMPTY_RULE = {"combine": "all", "conditions": []}


def list_levels(*, merchant_id: int) -> list[tuple[Level, int]]:
    """Every level, lowest first, with how many members hold it."""
    counts = dict(db.session.execute(
        select(Member.level_id, func.count()).where(Member.merchant_id == merchant_id,
                                                    Member.level_id.is_not(None))
        .group_by(Member.level_id)).all())
    levels = db.session.scalars(select(Level).where(Level.merchant_id == merchant_id)
                                .order_by(Level.weight))
    return [(level, counts.get(level.id, 0)) for level in levels]


def get_level(*, merchant_id: int, level_id: int) -> tuple[Level, int]:
    level = get_scoped(Level, merchant_id=merchant_id, id=level_id, what="level")
    return level, _holders(merchant_id, level_id)


def _holders(merchant_id: int, level_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Member).where(
        Member.merchant_id == merchant_id, Member.level_id == level_id))


def create_level(*, merchant_id: int, fields: dict, staff_id: int | None) -> Level:
    """A new level; its rates join the commission plan as a new version."""
    with transaction(db.session):
        program = _lock_program(merchant_id)
        wanted = {"upgrade_rule": EMPTY_RULE, "keep_rule": EMPTY_RULE, **fields}
        _check(merchant_id, wanted, program, level_id=None)
        level = Level(merchant_id=merchant_id, **{k: wanted[k] for k in EDITABLE})
        db.session.add(level)
        db.session.flush()
        commission_plans.publish_if_changed(merchant_id, program, staff_id=staff_id)
    return level


def update_level(*, merchant_id: int, level_id: int, changes: dict,
                 staff_id: int | None) -> Level:
    """Change some fields, validated as a whole; new rates publish a new plan version (orders
    already created keep theirs). New conditions apply from the next event or assessment."""
    with transaction(db.session):
        program = _lock_program(merchant_id)
        level = get_scoped(Level, merchant_id=merchant_id, id=level_id, what="level",
                           for_update=True)
        wanted = {**{k: getattr(level, k) for k in EDITABLE}, **changes}
        _check(merchant_id, wanted, program, level_id=level_id)
        for name in EDITABLE:
            setattr(level, name, wanted[name])
        db.session.flush()
        commission_plans.publish_if_changed(merchant_id, program, staff_id=staff_id)
    return level


def delete_level(*, merchant_id: int, level_id: int, staff_id: int | None) -> None:
    """Refused while members hold the level (move them first: every change has a reason)."""
    with transaction(db.session):
        program = _lock_program(merchant_id)
        level = get_scoped(Level, merchant_id=merchant_id, id=level_id, what="level",
                           for_update=True)
        if held := _holders(merchant_id, level_id):
            raise Conflict(f"{held} members hold this level; move them to another first.",
                           code="level_in_use")
        db.session.delete(level)
        db.session.flush()
        commission_plans.publish_if_changed(merchant_id, program, staff_id=staff_id)


def change_member_level(*, merchant_id: int, member_id: int, level_id: int | None,
                        reason: str, staff_id: int, now: datetime) -> Member:
    """Put a member at ``level_id`` (None: the base level) by hand, with a reason. Orders
    already created keep the rates of their snapshot."""
    with transaction(db.session):
        member = get_scoped(Member, merchant_id=merchant_id, id=member_id, what="distributor",
                            for_update=True)
        if level_id is not None and db.session.get(Level, (merchant_id, level_id)) is None:
            raise InvalidInput(errors={"level_id": ["No such level."]})
        if member.level_id == level_id:
            raise Conflict("The member is at this level already.", code="level_unchanged")
        change_to(member, level_id, cause="manual", reason=reason, at=now, staff_id=staff_id)
    return member


def _lock_program(merchant_id: int):
    merchant = db.session.get(Merchant, merchant_id, with_for_update=True)
    if merchant is None:
        raise NotFound("No such merchant.", code="merchant_not_found")
    return merchants.program_rules(merchant)


def _check(merchant_id: int, wanted: dict, program, *, level_id: int | None) -> None:
    """Validate ``wanted`` whole and put its rules in their stored form (defaults filled)."""
    errors = _field_errors(wanted, program)
    if errors:
        raise InvalidInput(errors=errors)
    for field in ("upgrade_rule", "keep_rule"):
        wanted[field] = rules.rule_from_dict(wanted[field]).to_dict()
    wanted["tier_rates_bps"] = list(wanted["tier_rates_bps"])
    for name in ("name", "weight"):
        clash = db.session.scalar(select(Level.id).where(
            Level.merchant_id == merchant_id, getattr(Level, name) == wanted[name],
            Level.id != (level_id or 0)))
        if clash is not None:
            raise Conflict(f"Another level has this {name}.", code=f"level_{name}_taken",
                           errors={name: ["Taken by another level."]})


def _field_errors(wanted: dict, program) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    name, weight = wanted.get("name"), wanted.get("weight")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 32:
        errors["name"] = ["Give a name of 1 to 32 characters."]
    if not isinstance(weight, int) or isinstance(weight, bool) \
            or not 1 <= weight <= rules.MAX_WEIGHT:
        errors["weight"] = [f"A whole number from 1 to {rules.MAX_WEIGHT} (0 is the base "
                            f"level)."]
    if problems := rules.validate_tier_rates(wanted.get("tier_rates_bps"), tiers=program.tiers,
                                             max_total_bps=program.max_total_bps):
        errors["tier_rates_bps"] = problems
    for field in ("upgrade_rule", "keep_rule"):
        for path, problems in rules.validate_rule(wanted.get(field)).items():
            errors[f"{field}.{path}".rstrip(".")] = problems
    return errors
