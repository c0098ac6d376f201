"""Levels: their definitions (weight, tier rates, upgrade and keep conditions), and a member's
level by hand. Roles as in the API: every role reads; rates are money, so only the owner
creates or deletes a level, changes its rates, or moves a member to another level (other
rates); operators rename, re-rank and change conditions."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app.console.pages import bp
from app.console.pages.forms import bps_from_percent, fen_from_yuan, text, whole
from app.console.session import staff_page
from app.database import utcnow
from app.domain import levels as rules
from app.errors import Forbidden, InvalidInput
from app.models import Member
from app.services import level_definitions, levels, merchants
from app.services import risk as risk_service

OWNER = ("owner",)
EDITORS = ("owner", "operator")
RATE_FIELDS = ("rate_1", "rate_2", "rate_3")
HISTORY_SHOWN = 10


@bp.route("/settings/levels")
@staff_page()
def settings_levels():
    return render_template("console/levels.html",
                           rows=level_definitions.list_levels(merchant_id=g.merchant_id),
                           **_form_context())


@bp.route("/settings/levels", methods=["POST"])
@staff_page(*OWNER)
def settings_level_create():
    level = level_definitions.create_level(merchant_id=g.merchant_id,
                                           fields=_level_fields(), staff_id=g.staff.id)
    flash(f"已新增等级「{level.name}」；新的比例只影响之后创建的订单。")
    return redirect(url_for("console_pages.settings_levels"))


@bp.route("/settings/levels/<int:level_id>")
@staff_page()
def settings_level(level_id: int):
    level, holders = level_definitions.get_level(merchant_id=g.merchant_id, level_id=level_id)
    return render_template("console/level.html", level=level, holders=holders,
                           **_form_context())


@bp.route("/settings/levels/<int:level_id>", methods=["POST"])
@staff_page(*EDITORS)
def settings_level_update(level_id: int):
    changes = _level_fields()
    if g.staff.role not in OWNER and "tier_rates_bps" in changes:
        raise Forbidden("等级佣金比例只有店主可以修改。", code="role_forbidden",
                        errors={"tier_rates_bps": ["仅店主。"]})
    level_definitions.update_level(merchant_id=g.merchant_id, level_id=level_id,
                                   changes=changes, staff_id=g.staff.id)
    flash("等级已保存；新的条件从下一次升级检查或考核起生效。")
    return redirect(url_for("console_pages.settings_level", level_id=level_id))


@bp.route("/settings/levels/<int:level_id>/delete", methods=["POST"])
@staff_page(*OWNER)
def settings_level_delete(level_id: int):
    level_definitions.delete_level(merchant_id=g.merchant_id, level_id=level_id,
                                   staff_id=g.staff.id)
    flash("等级已删除。")
    return redirect(url_for("console_pages.settings_levels"))


@bp.route("/distributors/<int:member_id>/level", methods=["POST"])
@staff_page(*OWNER)
def distributors_level(member_id: int):
    """A manual change, with its reason in the member's level history."""
    choice = request.form.get("level_id", "").strip()
    level_definitions.change_member_level(
        merchant_id=g.merchant_id, member_id=member_id,
        level_id=whole("level_id") if choice else None,
        reason=text("reason", required=True, max_length=500), staff_id=g.staff.id,
        now=utcnow())
    flash("等级已调整；已创建的订单仍按下单时的比例计佣。")
    return redirect(url_for("console_pages.distributors_member", member_id=member_id))


def member_level_context(member: Member) -> dict:
    """What the member page shows of levels and risk: the level, its latest changes, the
    levels to choose from, and the member's risk flags."""
    history, history_total = levels.level_history(merchant_id=member.merchant_id,
                                                  member_id=member.id, per_page=HISTORY_SHOWN)
    flags, flag_total = risk_service.list_flags(merchant_id=member.merchant_id, page=1,
                                                per_page=HISTORY_SHOWN, member_id=member.id)
    return {"member_level": levels.level_summary(member), "level_history": history,
            "level_history_total": history_total, "risk_flags": [flag for flag, _ in flags],
            "risk_flag_total": flag_total,
            "level_choices": [level for level, _ in level_definitions.list_levels(
                merchant_id=member.merchant_id)]}


# -- the form ----------------------------------------------------------------------------------

def _form_context() -> dict:
    program = merchants.program_rules(merchants.get_approved_merchant(g.merchant_id))
    return {"tiers": program.tiers, "metrics": rules.METRICS, "combines": rules.COMBINES,
            "max_conditions": rules.MAX_CONDITIONS, "all_time_only": rules.ALL_TIME_ONLY,
            "rates_locked": g.staff.role not in OWNER, "can_edit": g.staff.role in EDITORS}


def _level_fields() -> dict:
    """The level in the form, in the service's names and units (rates only when sent: a
    form whose rates are locked sends none)."""
    fields = {"name": text("name", required=True, max_length=32), "weight": whole("weight"),
              "upgrade_rule": _rule("upgrade"), "keep_rule": _rule("keep")}
    rates = [name for name in RATE_FIELDS if name in request.form]
    if rates:
        fields["tier_rates_bps"] = [bps_from_percent(name) for name in rates]
    return fields


def _rule(prefix: str) -> dict:
    """A rule from rows ``{prefix}_metric_N`` / ``_threshold_N`` / ``_window_N``; a row
    without a metric is left out. Money thresholds are typed in yuan."""
    combine = request.form.get(f"{prefix}_combine", "all")
    if combine not in rules.COMBINES:
        raise InvalidInput(errors={f"{prefix}_combine": ["请选择“全部”或“任一”。"]})
    conditions = []
    for n in range(rules.MAX_CONDITIONS):
        metric = request.form.get(f"{prefix}_metric_{n}", "")
        if not metric:
            continue
        if metric not in rules.METRICS:
            raise InvalidInput(errors={f"{prefix}_metric_{n}": ["请选择指标。"]})
        amount = fen_from_yuan if metric.endswith("_fen") else whole
        conditions.append({"metric": metric, "threshold": amount(f"{prefix}_threshold_{n}"),
                           "window_days": whole(f"{prefix}_window_{n}", required=False) or 0})
    return {"combine": combine, "conditions": conditions}


