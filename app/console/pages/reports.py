"""Reports: consumer analysis, performance per distributor, exports."""

from __future__ import annotations

from flask import render_template

from app.console.pages import bp
from app.console.session import staff_page


@bp.route("/reports")
@staff_page()
def reports():
    return render_template("console/reports.html")
