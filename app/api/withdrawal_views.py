"""Withdrawal schemas shared by the mini-program and the console."""

from __future__ import annotations

from marshmallow import Schema, fields


class TransferOut(Schema):
    """What ``wx.requestMerchantTransfer`` needs to let the distributor confirm."""

    mch_id = fields.String()
    app_id = fields.String()
    package = fields.String()


class WithdrawalOut(Schema):
    id = fields.Integer()
    member_id = fields.Integer()
    amount_fen = fields.Integer()
    fee_fen = fields.Integer()
    status = fields.String()
    auto_approved = fields.Boolean()
    review_reason = fields.String()
    fail_reason = fields.String()
    offline_reference = fields.String()
    transfer_state = fields.String()
    requested_at = fields.DateTime()
    reviewed_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    transfer = fields.Nested(TransferOut, allow_none=True)


def withdrawal_body(withdrawal) -> dict:
    body = {name: getattr(withdrawal, name) for name in WithdrawalOut._declared_fields
            if name != "transfer"}
    waiting = withdrawal.status == "transferring" and withdrawal.package_info
    body["transfer"] = ({"mch_id": withdrawal.transfer_mch_id,
                         "app_id": withdrawal.transfer_app_id,
                         "package": withdrawal.package_info} if waiting else None)
    return body
