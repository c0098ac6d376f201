"""Levels and assessment in the console: level definitions, manual level changes, and each
member's level history.

Roles: every staff role reads. Rates are money: only the owner creates or deletes a level or
changes its ``tier_rates_bps``; operators may rename a level, re-rank it and change its
conditions. A manual level change puts a member on other rates, so it is the owner's too.
"""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.json_fields import ID, Int
from app.api.pagination import PageArgs, page_body, page_of
from app.database import utcnow
from app.domain import levels as rules
from app.errors import Forbidden
from app.security import console_login_required
from app.services import level_definitions, levels
from app.services import members as member_service

blp = Blueprint("console_levels", __name__, url_prefix="/api/console/v1",
                description="Levels and assessment")
BEARER = [{"bearerAuth": []}]
MONEY_FIELDS = {"tier_rates_bps"}


class ConditionIn(Schema):
    metric = fields.String(required=True, validate=validate.OneOf(rules.METRICS))
    threshold = Int(required=True, validate=validate.Range(min=0, max=rules.MAX_THRESHOLD))
    window_days = Int(load_default=0, validate=validate.Range(min=0,
                                                              max=rules.MAX_WINDOW_DAYS))


class RuleIn(Schema):
    combine = fields.String(load_default="all", validate=validate.OneOf(rules.COMBINES))
    conditions = fields.List(fields.Nested(ConditionIn), load_default=list,
                             validate=validate.Length(max=rules.MAX_CONDITIONS))


class LevelPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=32))
    weight = Int(validate=validate.Range(min=1, max=rules.MAX_WEIGHT))
    tier_rates_bps = fields.List(Int(validate=validate.Range(min=0)))
    upgrade_rule = fields.Nested(RuleIn)
    keep_rule = fields.Nested(RuleIn)


class LevelIn(LevelPatch):
    name = fields.String(required=True, validate=validate.Length(min=1, max=32))
    weight = Int(required=True, validate=validate.Range(min=1, max=rules.MAX_WEIGHT))
    tier_rates_bps = fields.List(Int(validate=validate.Range(min=0)), required=True)


class LevelDefinitionOut(LevelPatch):
    id = fields.Integer()
    members = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class LevelSummaryOut(Schema):
    id = fields.Integer()
    name = fields.String()
    weight = fields.Integer()


class LevelChangeOut(Schema):
    id = fields.Integer()
    from_level_id = fields.Integer(allow_none=True)
    from_level = fields.String(allow_none=True)
    to_level_id = fields.Integer(allow_none=True)
    to_level = fields.String(allow_none=True)
    cause = fields.String(metadata={"description": "upgrade | assessment | manual (an "
                                                   "assessment that kept the level has "
                                                   "from = to)"})
    reason = fields.String()
    staff_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class LevelChangeIn(Schema):
    level_id = Int(required=True, allow_none=True, validate=ID,
                   metadata={"description": "null: the base level (the plan's rates)"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class MemberLevelOut(Schema):
    member_id = fields.Integer()
    level = fields.Nested(LevelSummaryOut, allow_none=True)
    level_changed_at = fields.DateTime(allow_none=True)


def level_body(level, members: int) -> dict:
    return {"id": level.id, "name": level.name, "weight": level.weight,
            "tier_rates_bps": level.tier_rates_bps, "upgrade_rule": level.upgrade_rule,
            "keep_rule": level.keep_rule, "members": members, "created_at": level.created_at,
            "updated_at": level.updated_at}


@blp.route("/levels", methods=["GET"])
@console_login_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(LevelDefinitionOut))
@blp.doc(security=BEARER)
def list_levels(args):
    """The program's levels, lowest weight first, each with how many members hold it."""
    rows = level_definitions.list_levels(merchant_id=g.merchant_id)
    start = (args["page"] - 1) * args["per_page"]
    return page_body([level_body(*row) for row in rows[start:start + args["per_page"]]],
                     len(rows), args)


@blp.route("/levels", methods=["POST"])
@console_login_required("owner")
@blp.arguments(LevelIn)
@blp.response(201, LevelDefinitionOut)
@blp.doc(security=BEARER)
def create_level(body):
    """A new level (weight 1 or more: 0 is the base level). Its rates are checked like the
    program's and publish a new commission plan version."""
    level = level_definitions.create_level(merchant_id=g.merchant_id, fields=body,
                                           staff_id=g.staff.id)
    return level_body(level, 0)


@blp.route("/levels/<int:level_id>", methods=["GET"])
@console_login_required()
@blp.response(200, LevelDefinitionOut)
@blp.doc(security=BEARER)
def get_level(level_id):
    return level_body(*level_definitions.get_level(merchant_id=g.merchant_id,
                                                   level_id=level_id))


@blp.route("/levels/<int:level_id>", methods=["PATCH"])
@console_login_required("owner", "operator")
@blp.arguments(LevelPatch)
@blp.response(200, LevelDefinitionOut)
@blp.doc(security=BEARER)
def update_level(changes, level_id):
    """Change some fields. New rates publish a new plan version (existing orders keep
    theirs); operators may not change rates."""
    if g.staff.role != "owner" and (money := sorted(MONEY_FIELDS & set(changes))):
        raise Forbidden("Only the owner changes rates.", code="role_forbidden",
                        errors={name: ["Owner only."] for name in money})
    level = level_definitions.update_level(merchant_id=g.merchant_id, level_id=level_id,
                                           changes=changes, staff_id=g.staff.id)
    return level_body(*level_definitions.get_level(merchant_id=g.merchant_id,
                                                   level_id=level.id))


@blp.route("/levels/<int:level_id>", methods=["DELETE"])
@console_login_required("owner")
@blp.response(204)
@blp.doc(security=BEARER)
def delete_level(level_id):
    """Refused (409 ``level_in_use``) while members hold the level."""
    level_definitions.delete_level(merchant_id=g.merchant_id, level_id=level_id,
                                   staff_id=g.staff.id)


@blp.route("/distributors/<int:member_id>/level", methods=["POST"])
@console_login_required("owner")
@blp.arguments(LevelChangeIn)
@blp.response(200, MemberLevelOut)
@blp.doc(security=BEARER)
def change_member_level(body, member_id):
    """Put a member at another level by hand, with a reason (recorded in its history)."""
    member = level_definitions.change_member_level(
        merchant_id=g.merchant_id, member_id=member_id, level_id=body["level_id"],
        reason=body["reason"], staff_id=g.staff.id, now=utcnow())
    return member_level_body(member)


@blp.route("/distributors/<int:member_id>/level-changes", methods=["GET"])
@console_login_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(LevelChangeOut))
@blp.doc(security=BEARER)
def level_history(args, member_id):
    """A member's level changes and assessments, newest first."""
    member_service.member_with_user(merchant_id=g.merchant_id, member_id=member_id)
    items, total = levels.level_history(merchant_id=g.merchant_id, member_id=member_id,
                                        page=args["page"], per_page=args["per_page"])
    return page_body(items, total, args)


def member_level_body(member) -> dict:
    """A member's level as the console shows it (also on the member page)."""
    return {"member_id": member.id, "level": levels.level_summary(member),
            "level_changed_at": member.level_changed_at}
