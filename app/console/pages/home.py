"""The dashboard (the console's first page)."""

from __future__ import annotations

from flask import render_template

from app.console.pages import bp
from app.console.session import staff_page


@bp.route("/dashboard")
@staff_page()
def dashboard():
    return render_template("console/dashboard.html")
