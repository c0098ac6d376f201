"""Reports: consumer analysis and performance per distributor (every role reads them, as in
the API), and exports — asked for, watched while the job writes them, downloaded — for the
owner and finance only (they carry money and personal data)."""

from __future__ import annotations

from datetime import date

from flask import flash, g, jsonify, redirect, render_template, request, send_file, url_for

from app.clients import settings as app_settings
from app.console import charts
from app.console.pages import bp
from app.console.pages.forms import page_number
from app.console.pages.home import span_of_request
from app.console.session import staff_page
from app.database import utcnow
from app.errors import InvalidInput
from app.models.export import EXPORT_FORMATS, EXPORT_KINDS
from app.services import exports as export_service
from app.services import stats, stats_consumers, stats_distributors

PER_PAGE = 20
EXPORTERS = ("owner", "finance")  # as app/api/console/exports.py
QUARTERS_OFFERED = 8
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@bp.route("/reports")
@staff_page()
def reports():
    """Consumer analysis for a range: who buys, where, when, new or returning."""
    span = span_of_request()
    analysis = stats_consumers.consumer_analysis(merchant_id=g.merchant_id, span=span)
    hours = charts.bars("各时段支付订单（时）",
                        [f"{row['hour']}" if row["hour"] % 3 == 0 else ""
                         for row in analysis["by_hour"]],
                        [row["orders_paid"] for row in analysis["by_hour"]], "支付订单")
    weekdays = charts.bars("每周各天支付订单", list(WEEKDAYS),
                           [row["orders_paid"] for row in analysis["by_weekday"]], "支付订单")
    return render_template("console/reports.html", span=span, analysis=analysis,
                           charts=[hours, weekdays])


@bp.route("/reports/performance")
@staff_page()
def reports_performance():
    """Each distributor's figures for a range, best tier-1 sales first."""
    span, page = span_of_request(), page_number()
    distributor = request.args.get("distributor_id", "").strip()
    distributor_id = int(distributor) if distributor.isdigit() else None
    rows, total = stats_distributors.performance(
        merchant_id=g.merchant_id, span=span, page=page, per_page=PER_PAGE,
        distributor_id=distributor_id)
    return render_template("console/performance.html", span=span, rows=rows, total=total,
                           page=page, per_page=PER_PAGE, distributor_id=distributor_id)


# -- exports -----------------------------------------------------------------------------------

@bp.route("/reports/exports")
@staff_page(*EXPORTERS)
def reports_exports():
    page = page_number()
    rows, total = export_service.list_exports(merchant_id=g.merchant_id, page=page,
                                              per_page=PER_PAGE)
    return render_template("console/exports.html", rows=rows, total=total, page=page,
                           per_page=PER_PAGE, kinds=EXPORT_KINDS, formats=EXPORT_FORMATS,
                           quarters=_recent_quarters(), percent=export_service.percent)


@bp.route("/reports/exports", methods=["POST"])
@staff_page(*EXPORTERS)
def reports_export_create():
    """The income report covers the quarter chosen, the others the dates typed: the field
    that does not belong to the kind is ignored (the form always sends both)."""
    kind, fmt = request.form.get("kind", ""), request.form.get("format", "")
    if kind not in EXPORT_KINDS:
        raise InvalidInput(errors={"kind": ["请选择导出内容。"]})
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(errors={"format": ["请选择文件格式。"]})
    income = kind == "income"
    export = export_service.create_export(
        merchant_id=g.merchant_id, staff_id=g.staff.id, kind=kind, fmt=fmt,
        since_on=None if income else _form_day("from"),
        until_on=None if income else _form_day("to"),
        quarter=request.form.get("quarter", "").strip() if income else None, now=utcnow())
    flash(f"已提交导出 #{export.id}，完成后可在下方下载。")
    return redirect(url_for("console_pages.reports_exports"))


@bp.route("/reports/exports/<int:export_id>/progress")
@staff_page(*EXPORTERS)
def reports_export_progress(export_id: int):
    """How far the job is (JSON for the page's poll)."""
    export = export_service.get_export(merchant_id=g.merchant_id, export_id=export_id)
    return jsonify({"id": export.id, "status": export.status,
                    "percent": export_service.percent(export),
                    "rows_written": export.rows_written, "rows_total": export.rows_total})


@bp.route("/reports/exports/<int:export_id>/file")
@staff_page(*EXPORTERS)
def reports_export_file(export_id: int):
    """The finished file, streamed from disk (never read whole into memory)."""
    path, name, content_type = export_service.finished_file(
        merchant_id=g.merchant_id, export_id=export_id, root=app_settings().instance_dir)
    return send_file(path, mimetype=content_type, as_attachment=True, download_name=name,
                     max_age=0)


def _form_day(name: str) -> date | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(errors={name: ["请用 YYYY-MM-DD 格式。"]}) from None


def _recent_quarters() -> list[str]:
    """The merchant's current quarter and the ones before it, newest first (the current one
    is offered too: a quarter may be filed before it ends)."""
    period = stats.current_period(merchant_id=g.merchant_id, now=utcnow())
    year, quarter = int(period[:4]), (int(period[5:]) - 1) // 3 + 1
    offered = []
    for _ in range(QUARTERS_OFFERED):
        offered.append(f"{year}Q{quarter}")
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return offered
