"""Sign-in and sign-out for merchant staff."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app import clients
from app.console.pages import bp
from app.console.session import sign_in, sign_out
from app.errors import Unauthorized
from app.extensions import limiter
from app.services import staff as staff_service


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: clients.settings().login_rate_limit_ip, methods=["POST"])
def login():
    error = None
    if request.method == "POST":
        try:
            staff = staff_service.console_sign_in(
                username=request.form.get("username", "")[:64],
                password=request.form.get("password", "")[:256])
        except Unauthorized:
            error = "用户名或密码不正确。"
        else:
            sign_in(staff)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("console/login.html", error=error), 401 if error else 200


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return url_for("console_pages.dashboard")


@bp.route("/logout", methods=["POST"])
def logout():
    sign_out()
    return redirect(url_for("console_pages.login"))


@bp.route("/")
def index():
    return redirect(url_for("console_pages.dashboard"))
