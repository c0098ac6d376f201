"""Risk: flags to review and release."""

from __future__ import annotations

from flask import render_template

from app.console.pages import bp
from app.console.session import staff_page


@bp.route("/risk")
@staff_page("owner", "operator")
def risk():
    return render_template("console/risk.html")
