"""Risk: flags to review and release. As in the API, every role sees the flags (operators
review distributors, finance sees why money is held) and only the owner releases one: a
release lets a suspect's held commission settle."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app.console.pages import bp
from app.console.pages.forms import page_number, text
from app.console.session import staff_page
from app.database import utcnow
from app.domain.risk import KINDS, RELEASE_REASON_MAX, STATUSES
from app.services import risk as risk_service

PER_PAGE = 20
RELEASERS = ("owner",)  # as app/api/console/risk.py


@bp.route("/risk")
@staff_page()
def risk():
    status = request.args.get("status", "open")
    status = status if status in STATUSES else None
    kind = request.args.get("kind")
    kind = kind if kind in KINDS else None
    page = page_number()
    rows, total = risk_service.list_flags(merchant_id=g.merchant_id, page=page,
                                          per_page=PER_PAGE, status=status, kind=kind)
    return render_template("console/risk.html", rows=rows, total=total, page=page,
                           per_page=PER_PAGE, status=status, kind=kind, kinds=KINDS)


@bp.route("/risk/<int:flag_id>")
@staff_page()
def risk_flag(flag_id: int):
    flag, nickname, log = risk_service.flag_with_log(merchant_id=g.merchant_id,
                                                     flag_id=flag_id)
    return render_template("console/risk_flag.html", flag=flag, nickname=nickname, log=log,
                           can_release=g.staff.role in RELEASERS,
                           reason_max=RELEASE_REASON_MAX)


@bp.route("/risk/<int:flag_id>/release", methods=["POST"])
@staff_page(*RELEASERS)
def risk_release(flag_id: int):
    risk_service.release(merchant_id=g.merchant_id, flag_id=flag_id,
                         reason=text("reason", required=True, max_length=RELEASE_REASON_MAX),
                         staff_id=g.staff.id, now=utcnow())
    flash("已解除；该分销员没有其他待处理风险时，暂停的佣金将在下次结算时入账。")
    return redirect(url_for("console_pages.risk_flag", flag_id=flag_id))
