"""A merchant's program as the mini-program sees it: profile, joining, my membership, my team."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app import clients
from app.api.json_fields import ID
from app.api.member_views import TeamMemberOut, member_dict
from app.api.pagination import PageArgs, page_body, page_of
from app.security import mp_login_required
from app.services import levels as level_service
from app.services import members as member_service
from app.services import merchants as merchant_service

blp = Blueprint("mp_programs", __name__, url_prefix="/api/mp/v1/merchants",
                description="Distribution programs")
BEARER = [{"bearerAuth": []}]


class ProgramOut(Schema):
    join_mode = fields.String()
    join_spend_threshold_fen = fields.Integer()
    bind_mode = fields.String()
    bind_days = fields.Integer()
    tiers = fields.Integer()
    tier_rates_bps = fields.List(fields.Integer())
    self_purchase = fields.Boolean()
    freeze_days = fields.Integer()
    withdraw_min_fen = fields.Integer()
    withdraw_max_fen = fields.Integer()
    withdraw_daily_count = fields.Integer()
    withdraw_fee_bps = fields.Integer()
    agreement_version = fields.String()


class MerchantProfileOut(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    logo_url = fields.String()
    program = fields.Nested(ProgramOut)


class JoinIn(Schema):
    real_name = fields.String(validate=validate.Length(min=1, max=32))
    phone = fields.String(validate=validate.Regexp(r"^\+?\d{6,20}$"))
    agreement_version = fields.String(required=True, validate=validate.Length(min=1, max=32))


class UplineOut(Schema):
    id = fields.Integer()
    nickname = fields.String()
    avatar_url = fields.String()


class MembershipOut(Schema):
    merchant_id = fields.Integer()
    member_id = fields.Integer(attribute="id")
    status = fields.String(attribute="distributor_status")
    status_reason = fields.String()
    level = fields.String(allow_none=True, dump_default=None)  # name; null: the base level
    upline = fields.Nested(UplineOut, allow_none=True)
    direct_members = fields.Integer()
    team_size = fields.Integer()
    team_sales_fen = fields.Integer()
    agreement_version = fields.String()


class TeamArgs(PageArgs):
    member_id = fields.Integer(validate=ID)


def _membership(member) -> dict:
    upline = None
    if member.upline_id is not None:
        upline_member, upline_user = member_service.member_with_user(
            merchant_id=member.merchant_id, member_id=member.upline_id)
        upline = {"id": upline_member.id, "nickname": upline_user.nickname,
                  "avatar_url": upline_user.avatar_url}
    fields_ = ("merchant_id", "id", "distributor_status", "status_reason", "direct_members",
               "team_size", "team_sales_fen", "agreement_version")
    return {**{name: getattr(member, name) for name in fields_}, "upline": upline,
            "level": level_service.level_name(member)}


@blp.route("/<int:merchant_id>", methods=["GET"])
@blp.response(200, MerchantProfileOut)
def merchant_profile(merchant_id):
    """The public profile and the program rules a distributor needs to see."""
    merchant = merchant_service.get_approved_merchant(merchant_id)
    return {"id": merchant.id, "name": merchant.name, "description": merchant.description,
            "logo_url": merchant.logo_url,
            "program": merchant_service.program_rules(merchant).to_dict()}


@blp.route("/<int:merchant_id>/distributor", methods=["POST"])
@mp_login_required
@blp.arguments(JoinIn)
@blp.response(200, MembershipOut)
@blp.doc(security=BEARER)
def join(body, merchant_id):
    """Apply (join_mode apply: real name and phone required, status pending) or join (active)."""
    member = member_service.join_program(merchant_id=merchant_id, user_id=g.user_id,
                                         box=clients.secret_box(), real_name=body.get("real_name"),
                                         phone=body.get("phone"),
                                         agreement_version=body["agreement_version"])
    return _membership(member)


@blp.route("/<int:merchant_id>/distributor", methods=["GET"])
@mp_login_required
@blp.response(200, MembershipOut)
@blp.doc(security=BEARER)
def my_membership(merchant_id):
    merchant_service.get_approved_merchant(merchant_id)
    return _membership(member_service.my_membership(merchant_id=merchant_id, user_id=g.user_id))


@blp.route("/<int:merchant_id>/team", methods=["GET"])
@mp_login_required
@blp.arguments(TeamArgs, location="query")
@blp.response(200, page_of(TeamMemberOut))
@blp.doc(security=BEARER)
def my_team(args, merchant_id):
    """My direct members with their team sizes; ``member_id`` opens one inside my team."""
    viewer = member_service.my_membership(merchant_id=merchant_id, user_id=g.user_id)
    rows, total = member_service.team_page(merchant_id=merchant_id, viewer=viewer,
                                           member_id=args.get("member_id"), page=args["page"],
                                           per_page=args["per_page"])
    return page_body([member_dict(m, u) for m, u in rows], total, args)
