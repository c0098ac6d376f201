"""Commission plans in the console: the published versions, and a preview of a draft."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.console.settings import ProgramRulesIn
from app.api.json_fields import Int
from app.errors import InvalidInput
from app.security import console_login_required
from app.services import commission_plans
from app.services import merchants as merchant_service

blp = Blueprint("console_commission_plans", __name__, url_prefix="/api/console/v1",
                description="Commission plans")
BEARER = [{"bearerAuth": []}]


class SampleLineIn(Schema):
    unit_price_fen = Int(required=True, validate=validate.Range(min=0, max=10**10))
    quantity = Int(load_default=1, validate=validate.Range(min=1, max=10_000))


class SampleOrderIn(Schema):
    lines = fields.List(fields.Nested(SampleLineIn), required=True,
                        validate=validate.Length(min=1, max=50))
    discount_fen = Int(load_default=0, validate=validate.Range(min=0))


class PreviewIn(Schema):
    draft = fields.Nested(ProgramRulesIn, load_default=dict)
    sample_order = fields.Nested(SampleOrderIn, required=True)


class TierAmountOut(Schema):
    tier = fields.Integer()
    rate_bps = fields.Integer()
    amount_fen = fields.Integer()


class PreviewOut(Schema):
    tiers = fields.List(fields.Nested(TierAmountOut))
    total_fen = fields.Integer()
    paid_fen = fields.Integer()
    warnings = fields.List(fields.String())


class PlanVersionOut(Schema):
    version = fields.Integer()
    tiers = fields.Integer()
    tier_rates_bps = fields.List(fields.Integer())
    max_total_bps = fields.Integer()
    self_purchase = fields.Boolean()
    staff_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


@blp.route("/settings/commission-preview", methods=["POST"])
@console_login_required()
@blp.arguments(PreviewIn)
@blp.response(200, PreviewOut)
@blp.doc(security=BEARER)
def preview(body):
    """What each tier would earn on a sample order under the current rules with the draft's
    changes applied — nothing is saved."""
    sample = body["sample_order"]
    goods = sum(line["unit_price_fen"] * line["quantity"] for line in sample["lines"])
    if sample["discount_fen"] > goods:
        raise InvalidInput(errors={"discount_fen": ["More than the goods total."]})
    merchant = merchant_service.get_approved_merchant(g.merchant_id)
    return commission_plans.preview_draft(merchant, draft=body["draft"],
                                          lines=sample["lines"],
                                          discount_fen=sample["discount_fen"])


@blp.route("/settings/commission-plans", methods=["GET"])
@console_login_required()
@blp.response(200, PlanVersionOut(many=True))
@blp.doc(security=BEARER)
def plan_versions():
    """Every published version, newest first; each order keeps the version it was created
    under."""
    return commission_plans.list_versions(g.merchant_id)
