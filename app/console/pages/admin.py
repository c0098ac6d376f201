"""The platform administrator's area: approve or reject merchants that applied."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app import clients
from app.console.pages import bp
from app.console.pages.forms import page_number, text
from app.console.session import admin_page, sign_in_admin, sign_out
from app.errors import Unauthorized
from app.extensions import limiter
from app.services import merchants as merchant_service
from app.services import staff as staff_service

PER_PAGE = 20


@bp.route("/admin/login", methods=["GET", "POST"])
@limiter.limit(lambda: clients.settings().login_rate_limit_ip, methods=["POST"])
def admin_login():
    error = None
    if request.method == "POST":
        try:
            admin = staff_service.admin_sign_in(username=request.form.get("username", "")[:64],
                                                password=request.form.get("password", "")[:256])
        except Unauthorized:
            error = "用户名或密码不正确。"
        else:
            sign_in_admin(admin)
            return redirect(url_for("console_pages.admin_merchants"))
    return render_template("console/admin_login.html", error=error), 401 if error else 200


@bp.route("/admin/logout", methods=["POST"])
def admin_logout():
    sign_out()
    return redirect(url_for("console_pages.admin_login"))


@bp.route("/admin/merchants")
@admin_page
def admin_merchants():
    status = request.args.get("status", "pending")
    status = status if status in ("pending", "approved", "rejected", "suspended") else None
    page = page_number()
    rows, total = merchant_service.list_merchants(status=status, page=page, per_page=PER_PAGE)
    return render_template("console/admin_merchants.html", rows=rows, total=total, page=page,
                           per_page=PER_PAGE, status=status)


@bp.route("/admin/merchants/<int:merchant_id>/<any(approve,reject):action>", methods=["POST"])
@admin_page
def admin_review(merchant_id: int, action: str):
    merchant_service.review_application(merchant_id=merchant_id, admin_id=g.admin.id,
                                        approve=action == "approve", reason=text("reason"))
    flash("已通过入驻申请。" if action == "approve" else "已拒绝入驻申请。")
    return redirect(url_for("console_pages.admin_merchants"))
