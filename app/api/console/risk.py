"""Risk signals in the console: flags to review, a member's flags, release, the log.

Every console role sees the flags (operators review distributors, finance sees why money is
held). Only the owner releases one: a release lets a suspect's held commission settle.
"""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.json_fields import ID
from app.api.pagination import PageArgs, page_body, page_of
from app.database import utcnow
from app.domain.risk import KINDS, RELEASE_REASON_MAX, STATUSES
from app.security import console_login_required
from app.services import risk as risk_service

blp = Blueprint("console_risk", __name__, url_prefix="/api/console/v1",
                description="Risk signals")
BEARER = [{"bearerAuth": []}]
RELEASERS = ("owner",)


class FlagListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    member_id = fields.Integer(validate=ID)


class MemberFlagArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))


class LogListArgs(PageArgs):
    member_id = fields.Integer(validate=ID)


class ReleaseIn(Schema):
    reason = fields.String(required=True,
                           validate=validate.Length(min=1, max=RELEASE_REASON_MAX))


class RiskFlagOut(Schema):
    id = fields.Integer()
    member_id = fields.Integer()
    nickname = fields.String()
    kind = fields.String(metadata={"description": "self_referral | binding_burst | "
                                                  "refund_rate | ip_burst"})
    detail = fields.Dict(metadata={"description": "the evidence: counts, window, threshold"})
    status = fields.String(metadata={"description": "open (settlement held) | released"})
    created_at = fields.DateTime()
    released_at = fields.DateTime(allow_none=True)
    released_by_staff_id = fields.Integer(allow_none=True)
    release_reason = fields.String()


class RiskLogOut(Schema):
    id = fields.Integer()
    flag_id = fields.Integer()
    member_id = fields.Integer()
    action = fields.String(metadata={"description": "raised | released"})
    staff_id = fields.Integer(allow_none=True)
    note = fields.String()
    created_at = fields.DateTime()


class RiskFlagDetailOut(RiskFlagOut):
    log = fields.List(fields.Nested(RiskLogOut))


def _flag_body(flag, nickname: str | None = None) -> dict:
    names = ("id", "member_id", "kind", "detail", "status", "created_at", "released_at",
             "released_by_staff_id", "release_reason")
    body = {name: getattr(flag, name) for name in names}
    return body if nickname is None else {**body, "nickname": nickname}


def _flag_page(args: dict, member_id: int | None) -> dict:
    rows, total = risk_service.list_flags(
        merchant_id=g.merchant_id, page=args["page"], per_page=args["per_page"],
        status=args.get("status"), kind=args.get("kind"), member_id=member_id)
    return page_body([_flag_body(flag, nickname) for flag, nickname in rows], total, args)


@blp.route("/risk/flags", methods=["GET"])
@console_login_required()
@blp.arguments(FlagListArgs, location="query")
@blp.response(200, page_of(RiskFlagOut))
@blp.doc(security=BEARER)
def list_risk_flags(args):
    """Flags newest first; filter by status, kind or member."""
    return _flag_page(args, args.get("member_id"))


@blp.route("/distributors/<int:member_id>/risk-flags", methods=["GET"])
@console_login_required()
@blp.arguments(MemberFlagArgs, location="query")
@blp.response(200, page_of(RiskFlagOut))
@blp.doc(security=BEARER)
def member_risk_flags(args, member_id):
    """One member's flags, newest first (404 for a member of another merchant)."""
    return _flag_page(args, member_id)


@blp.route("/risk/flags/<int:flag_id>", methods=["GET"])
@console_login_required()
@blp.response(200, RiskFlagDetailOut)
@blp.doc(security=BEARER)
def get_risk_flag(flag_id):
    """A flag with its log."""
    flag, nickname, entries = risk_service.flag_with_log(merchant_id=g.merchant_id,
                                                         flag_id=flag_id)
    return {**_flag_body(flag, nickname), "log": entries}


@blp.route("/risk/flags/<int:flag_id>/release", methods=["POST"])
@console_login_required(*RELEASERS)
@blp.arguments(ReleaseIn)
@blp.response(200, RiskFlagOut)
@blp.doc(security=BEARER)
def release_risk_flag(body, flag_id):
    """Release an open flag with a reason (owner only). The member's held commission settles
    on the next settlement run once none of their flags is open; 409 if already released."""
    flag = risk_service.release(merchant_id=g.merchant_id, flag_id=flag_id,
                                reason=body["reason"], staff_id=g.staff.id, now=utcnow())
    return _flag_body(flag)


@blp.route("/risk/logs", methods=["GET"])
@console_login_required()
@blp.arguments(LogListArgs, location="query")
@blp.response(200, page_of(RiskLogOut))
@blp.doc(security=BEARER)
def list_risk_logs(args):
    """The append-only risk log, newest first: every flag raised and released."""
    rows, total = risk_service.list_logs(merchant_id=g.merchant_id, page=args["page"],
                                         per_page=args["per_page"],
                                         member_id=args.get("member_id"))
    return page_body(rows, total, args)
