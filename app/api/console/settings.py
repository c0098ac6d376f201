"""The merchant's distribution program rules (DOMAIN.md names), with compliance warnings."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.api.json_fields import Int
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
    join_spend_threshold_fen = Int()
    bind_mode = fields.String()
    bind_trigger = fields.String()
    bind_days = Int()
    protection_days = Int()
    register_window_minutes = Int()
    tiers = Int()
    tier_rates_bps = fields.List(Int())
    max_total_bps = Int()
    third_tier_acknowledged = fields.Boolean()
    self_purchase = fields.Boolean()
    auto_receive_days = Int()
    freeze_days = Int()
    withdraw_min_fen = Int()
    withdraw_max_fen = Int()
    withdraw_daily_count = Int()
    withdraw_fee_bps = Int()
    withdraw_auto_approve_below_fen = Int()
    # Risk thresholds are not money rules: operators, who review distributors, may tune them.
    risk_binding_burst_per_hour = Int()
    risk_refund_rate_bps = Int()
    risk_refund_min_orders = Int()
    risk_ip_burst_members = Int()
    risk_ip_burst_minutes = Int()
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
