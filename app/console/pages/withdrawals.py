"""Withdrawals: the review queue, approve, reject, mark paid offline (owner and finance)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app.clients import pay_config
from app.console.pages import bp
from app.console.pages.forms import page_number, text
from app.console.session import staff_page
from app.database import utcnow
from app.extensions import redis
from app.models.withdrawal import WITHDRAWAL_STATUSES
from app.services import wallets
from app.services import withdrawals as withdrawal_service

PER_PAGE = 20
MONEY = ("owner", "finance")
LABELS = {"requested": "待审核", "approved": "已通过", "transferring": "待确认收款",
          "paid_out": "已打款", "rejected": "已拒绝", "failed": "打款失败"}


@bp.route("/withdrawals")
@staff_page(*MONEY)
def withdrawals():
    status = request.args.get("status", "requested")
    status = status if status in WITHDRAWAL_STATUSES else None
    page = page_number()
    rows, total = withdrawal_service.list_withdrawals(merchant_id=g.merchant_id, page=page,
                                                      per_page=PER_PAGE, status=status)
    return render_template("console/withdrawals.html", rows=rows, total=total, page=page,
                           per_page=PER_PAGE, status=status, labels=LABELS)


@bp.route("/withdrawals/<int:withdrawal_id>/approve", methods=["POST"])
@staff_page(*MONEY)
def withdrawals_approve(withdrawal_id: int):
    withdrawal_service.approve(merchant_id=g.merchant_id, withdrawal_id=withdrawal_id,
                               staff_id=g.staff.id, now=utcnow())
    withdrawal = withdrawal_service.start_transfer(merchant_id=g.merchant_id,
                                                   withdrawal_id=withdrawal_id,
                                                   config=pay_config(), now=utcnow())
    flash("已通过，等待分销员在微信中确认收款。" if withdrawal.status == "transferring"
          else "已通过，请线下打款后标记。")
    return redirect(url_for("console_pages.withdrawals"))


@bp.route("/withdrawals/<int:withdrawal_id>/reject", methods=["POST"])
@staff_page(*MONEY)
def withdrawals_reject(withdrawal_id: int):
    outcome = withdrawal_service.reject(merchant_id=g.merchant_id, withdrawal_id=withdrawal_id,
                                        staff_id=g.staff.id, reason=text("reason"),
                                        now=utcnow())
    wallets.mirror_members(redis.client, merchant_id=g.merchant_id,
                           member_ids=outcome.member_ids)
    flash("已拒绝，金额已退回可提现余额。")
    return redirect(url_for("console_pages.withdrawals"))


@bp.route("/withdrawals/<int:withdrawal_id>/mark-paid", methods=["POST"])
@staff_page(*MONEY)
def withdrawals_mark_paid(withdrawal_id: int):
    outcome = withdrawal_service.mark_paid_offline(
        merchant_id=g.merchant_id, withdrawal_id=withdrawal_id, staff_id=g.staff.id,
        reference=text("reference", max_length=64), now=utcnow())
    wallets.mirror_members(redis.client, merchant_id=g.merchant_id,
                           member_ids=outcome.member_ids)
    flash("已标记为线下打款。")
    return redirect(url_for("console_pages.withdrawals", status="paid_out"))
