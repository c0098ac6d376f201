"""Team management: distributors, their applications, freezes and moves."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.console.levels import LevelChangeOut, LevelSummaryOut
from app.api.json_fields import ID, Int
from app.api.member_views import MemberOut, TeamMemberOut, member_dict
from app.api.pagination import PageArgs, page_body, page_of
from app.models.member import DISTRIBUTOR_STATUSES
from app.security import console_login_required
from app.services import levels as level_service
from app.services import members as member_service

blp = Blueprint("console_distributors", __name__, url_prefix="/api/console/v1",
                description="Distributors")
BEARER = [{"bearerAuth": []}]
MANAGERS = ("owner", "operator")


class DistributorListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(DISTRIBUTOR_STATUSES))
    q = fields.String(validate=validate.Length(min=1, max=64))


class ReasonIn(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class MoveIn(Schema):
    upline_id = Int(required=True, validate=ID)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class LogOut(Schema):
    id = fields.Integer()
    outcome = fields.String()
    reason = fields.String()
    rule = fields.String()
    distributor_id = fields.Integer(allow_none=True)
    previous_upline_id = fields.Integer(allow_none=True)
    note = fields.String()
    created_at = fields.DateTime()


class StatusLogOut(Schema):
    from_status = fields.String()
    to_status = fields.String()
    reason = fields.String()
    staff_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class DistributorDetailOut(MemberOut):
    binding_history = fields.List(fields.Nested(LogOut))
    status_history = fields.List(fields.Nested(StatusLogOut))
    level = fields.Nested(LevelSummaryOut, allow_none=True)  # null: the base level
    level_changed_at = fields.DateTime(allow_none=True)
    level_history = fields.List(fields.Nested(LevelChangeOut))  # the latest 20


@blp.route("/distributors", methods=["GET"])
@console_login_required()
@blp.arguments(DistributorListArgs, location="query")
@blp.response(200, page_of(MemberOut))
@blp.doc(security=BEARER)
def list_distributors(args):
    """Members of the program; filter by status, search by member id or nickname."""
    rows, total = member_service.list_members(
        merchant_id=g.merchant_id, page=args["page"], per_page=args["per_page"],
        status=args.get("status"), q=args.get("q"))
    return page_body([member_dict(m, u) for m, u in rows], total, args)


@blp.route("/distributors/<int:member_id>", methods=["GET"])
@console_login_required()
@blp.response(200, DistributorDetailOut)
@blp.doc(security=BEARER)
def get_distributor(member_id):
    member, user = member_service.member_with_user(merchant_id=g.merchant_id,
                                                   member_id=member_id)
    return {**member_dict(member, user),
            "binding_history": member_service.binding_history(merchant_id=g.merchant_id,
                                                              member_id=member_id),
            "status_history": member_service.status_history(merchant_id=g.merchant_id,
                                                            member_id=member_id),
            "level": level_service.level_summary(member),
            "level_changed_at": member.level_changed_at,
            "level_history": level_service.level_history(merchant_id=g.merchant_id,
                                                         member_id=member_id)[0]}


@blp.route("/distributors/<int:member_id>/team", methods=["GET"])
@console_login_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(TeamMemberOut))
@blp.doc(security=BEARER)
def distributor_team(args, member_id):
    """One level of a member's downline: its direct members, each with its own team size."""
    member_service.member_with_user(merchant_id=g.merchant_id, member_id=member_id)
    rows, total = member_service.list_members(merchant_id=g.merchant_id, page=args["page"],
                                              per_page=args["per_page"], direct_of=member_id)
    return page_body([member_dict(m, u) for m, u in rows], total, args)


def _review_route(action: str):
    @console_login_required(*MANAGERS)
    @blp.arguments(ReasonIn)
    @blp.response(200, MemberOut)
    @blp.doc(security=BEARER, summary=f"{action.capitalize()} a distributor")
    def view(body, member_id):
        member = member_service.review(merchant_id=g.merchant_id, member_id=member_id,
                                       action=action, reason=body["reason"],
                                       staff_id=g.staff.id)
        return member_dict(*member_service.member_with_user(merchant_id=g.merchant_id,
                                                            member_id=member.id))

    view.__name__ = f"{action}_distributor"
    blp.route(f"/distributors/<int:member_id>/{action}", methods=["POST"])(view)


for _action in ("approve", "reject", "freeze", "unfreeze"):
    _review_route(_action)


@blp.route("/distributors/<int:member_id>/move", methods=["POST"])
@console_login_required(*MANAGERS)
@blp.arguments(MoveIn)
@blp.response(200, MemberOut)
@blp.doc(security=BEARER)
def move_distributor(body, member_id):
    """Move a member and its whole team under another active distributor (re-validated)."""
    member_service.move(merchant_id=g.merchant_id, member_id=member_id,
                        upline_id=body["upline_id"], reason=body["reason"], staff_id=g.staff.id)
    return member_dict(*member_service.member_with_user(merchant_id=g.merchant_id,
                                                        member_id=member_id))
