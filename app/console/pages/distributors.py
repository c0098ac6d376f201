"""Distributors: search and filter, applications, a member's page, the team browser, freeze,
move (owner and operator)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app.console.pages import bp
from app.console.pages.forms import page_number, text, whole
from app.console.pages.levels import member_level_context
from app.console.session import staff_page
from app.extensions import redis
from app.services import members as member_service
from app.services import orders as order_service
from app.services import wallets

PER_PAGE = 20
PROGRAM = ("owner", "operator")
STATUS_LABELS = {"none": "会员", "pending": "待审核", "active": "分销员", "rejected": "已拒绝",
                 "frozen": "已冻结", "left": "已退出"}


@bp.route("/distributors")
@staff_page(*PROGRAM)
def distributors():
    status = request.args.get("status") or None
    status = status if status in STATUS_LABELS else None
    q = request.args.get("q", "").strip()[:32] or None
    page = page_number()
    rows, total = member_service.list_members(merchant_id=g.merchant_id, page=page,
                                              per_page=PER_PAGE, status=status, q=q)
    return render_template("console/distributors.html", rows=rows, total=total, page=page,
                           per_page=PER_PAGE, status=status, q=q or "", labels=STATUS_LABELS)


@bp.route("/distributors/<int:member_id>")
@staff_page(*PROGRAM)
def distributors_member(member_id: int):
    member, user = member_service.member_with_user(merchant_id=g.merchant_id,
                                                   member_id=member_id)
    team, team_total = member_service.list_members(merchant_id=g.merchant_id, page=1,
                                                   per_page=PER_PAGE, direct_of=member.id)
    orders, _ = order_service.list_orders(merchant_id=g.merchant_id, page=1, per_page=10,
                                          user_id=user.id)
    return render_template(
        "console/member.html", member=member, user=user, team=team, team_total=team_total,
        orders=orders, labels=STATUS_LABELS,
        wallet=wallets.read_wallet(redis.client, merchant_id=g.merchant_id,
                                   member_id=member.id),
        upline=(member_service.member_with_user(merchant_id=g.merchant_id,
                                                member_id=member.upline_id)
                if member.upline_id else None),
        bindings=member_service.binding_history(merchant_id=g.merchant_id, member_id=member.id,
                                                limit=10),
        statuses=member_service.status_history(merchant_id=g.merchant_id, member_id=member.id,
                                               limit=10),
        **member_level_context(member))


@bp.route("/distributors/<int:member_id>/team")
@staff_page(*PROGRAM)
def distributors_team(member_id: int):
    """One level of a member's downline; each row opens the next level."""
    member, user = member_service.member_with_user(merchant_id=g.merchant_id,
                                                   member_id=member_id)
    page = page_number()
    rows, total = member_service.list_members(merchant_id=g.merchant_id, page=page,
                                              per_page=PER_PAGE, direct_of=member.id)
    return render_template("console/team.html", member=member, user=user, rows=rows,
                           total=total, page=page, per_page=PER_PAGE, labels=STATUS_LABELS)


@bp.route("/distributors/<int:member_id>/<any(approve,reject,freeze,unfreeze):action>",
          methods=["POST"])
@staff_page(*PROGRAM)
def distributors_review(member_id: int, action: str):
    member_service.review(merchant_id=g.merchant_id, member_id=member_id, action=action,
                          reason=text("reason"), staff_id=g.staff.id)
    flash({"approve": "已通过申请。", "reject": "已拒绝申请。", "freeze": "已冻结。",
           "unfreeze": "已解冻。"}[action])
    return redirect(request.referrer if _same_site(request.referrer) else
                    url_for("console_pages.distributors_member", member_id=member_id))


@bp.route("/distributors/<int:member_id>/move", methods=["POST"])
@staff_page(*PROGRAM)
def distributors_move(member_id: int):
    member_service.move(merchant_id=g.merchant_id, member_id=member_id,
                        upline_id=whole("upline_id"), reason=text("reason", required=True),
                        staff_id=g.staff.id)
    flash("已调整上级。")
    return redirect(url_for("console_pages.distributors_member", member_id=member_id))


def _same_site(url: str | None) -> bool:
    return bool(url) and url.startswith(request.host_url + "console/")
