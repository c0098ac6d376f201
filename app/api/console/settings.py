"""The merchant's distribution program rules (DOMAIN.md names), with compliance warnings."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.errors import Forbidden
from app.security import console_login_required
from app.services import merchants as merchant_service

blp = Blueprint("console_settings", __name__, url_prefix="/api/console/v1",
                description="Program settings")
BEARER = [{"bearerAuth": []}]

# Operators run the program but do not set money: rates, depth, settlement and payouts.
MONEY_RULES = {"tiers", "tier_rates_bps", "max_total_bps", "third_tier_acknowledged",
               "self_purchase", "freeze_days", "withdraw_min_fen", "withdraw_max_fen",
               "withdraw_daily_count", "withdraw_fee_bps", "withdraw_auto_approve_below_fen"}


class ProgramRulesIn(Schema):
    join_mode = fields.String()
    join_spend_threshold_fen = fields.Integer()
    bind_mode = fields.String()
    bind_trigger = fields.String()
    bind_days = fields.Integer()
    protection_days = fields.Integer()
    register_window_minutes = fields.Integer()
    tiers = fields.Integer()
    tier_rates_bps = fields.List(fields.Integer())
    max_total_bps = fields.Integer()
    third_tier_acknowledged = fields.Boolean()
    self_purchase = fields.Boolean()
    auto_receive_days = fields.Integer()
    freeze_days = fields.Integer()
    withdraw_min_fen = fields.Integer()
    withdraw_max_fen = fields.Integer()
    withdraw_daily_count = fields.Integer()
    withdraw_fee_bps = fields.Integer()
    withdraw_auto_approve_below_fen = fields.Integer()
    agreement_version = fields.String()


class ProgramRulesOut(ProgramRulesIn):
    warnings = fields.List(fields.String())


def _rules_body(rules) -> dict:
    return {**rules.to_dict(), "warnings": rules.warnings}


@blp.route("/settings/distribution", methods=["GET"])
@console_login_required()
@blp.response(200, ProgramRulesOut)
@blp.doc(security=BEARER)
def get_distribution_settings():
    merchant = merchant_service.get_approved_merchant(g.merchant_id)
    return _rules_body(merchant_service.program_rules(merchant))


@blp.route("/settings/distribution", methods=["PUT"])
@console_login_required("owner", "operator")
@blp.arguments(ProgramRulesIn)
@blp.response(200, ProgramRulesOut)
@blp.doc(security=BEARER)
def put_distribution_settings(changes):
    """Change some rules; the result is validated whole. Operators may not change money rules."""
    if g.staff.role != "owner" and (money := sorted(MONEY_RULES & set(changes))):
        raise Forbidden("Only the owner changes money rules.", code="role_forbidden",
                        errors={name: ["Owner only."] for name in money})
    return _rules_body(merchant_service.update_program_rules(
        merchant_id=g.merchant_id, changes=changes, staff_id=g.staff.id))
