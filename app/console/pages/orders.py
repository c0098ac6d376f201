"""Orders: list and filters, shipment entry, refunds and their review."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app.clients import pay_config
from app.console.pages import ORDER_LABELS, bp
from app.console.pages.forms import fen_from_yuan, page_number, text
from app.console.session import staff_page
from app.database import utcnow
from app.services import orders as order_service
from app.services import refunds as refund_service

PER_PAGE = 20
FULFILMENT = ("owner", "operator")
MONEY = ("owner", "finance")


@bp.route("/orders")
@staff_page()
def orders():
    status = request.args.get("status")
    status = status if status in ORDER_LABELS else None
    page = page_number()
    rows, total = order_service.list_orders(merchant_id=g.merchant_id, page=page,
                                            per_page=PER_PAGE, status=status)
    requested, _ = refund_service.list_refunds(merchant_id=g.merchant_id, status="requested",
                                               page=1, per_page=50)
    return render_template("console/orders.html", rows=rows, total=total, page=page,
                           per_page=PER_PAGE, status=status, requested=requested)


@bp.route("/orders/<int:order_id>/shipment", methods=["POST"])
@staff_page(*FULFILMENT)
def orders_ship(order_id: int):
    order_service.ship(merchant_id=g.merchant_id, order_id=order_id,
                       carrier=text("carrier", required=True, max_length=32),
                       tracking_no=text("tracking_no", required=True, max_length=64),
                       now=utcnow())
    flash("已发货。")
    return redirect(url_for("console_pages.orders", status=request.args.get("status")))


@bp.route("/orders/<int:order_id>/refunds", methods=["POST"])
@staff_page(*MONEY)
def orders_refund(order_id: int):
    refund = refund_service.start_refund(
        merchant_id=g.merchant_id, order_id=order_id,
        amount_fen=fen_from_yuan("amount", required=False),
        reason=text("reason", required=True), staff_id=g.staff.id, config=pay_config(),
        now=utcnow())
    flash("退款已提交微信支付。" if refund.status == "processing" else "退款未成功。",
          "message" if refund.status == "processing" else "error")
    return redirect(url_for("console_pages.orders"))


@bp.route("/refunds/<int:refund_id>/<any(approve,reject):action>", methods=["POST"])
@staff_page(*MONEY)
def orders_refund_review(refund_id: int, action: str):
    refund_service.review(merchant_id=g.merchant_id, refund_id=refund_id,
                          approve=action == "approve", reason=text("reason"),
                          staff_id=g.staff.id, config=pay_config(), now=utcnow())
    flash("已同意退款。" if action == "approve" else "已拒绝退款申请。")
    return redirect(url_for("console_pages.orders"))
