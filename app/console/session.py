"""Who is signed in to the console: the staff member (or platform admin) in the session
cookie, re-read from the database on every request so deactivation and role changes apply at
once. Pages declare the roles they need; the check runs on the server for every request."""

from __future__ import annotations

import functools

from flask import g, redirect, request, session, url_for

from app.errors import AppError, Forbidden

# What each role may open (DOMAIN.md, Actors and roles); the navigation shows only these.
NAVIGATION = (
    ("console_pages.dashboard", "概览", ("owner", "operator", "finance")),
    ("console_pages.distributors", "分销员", ("owner", "operator")),
    ("console_pages.orders", "订单", ("owner", "operator", "finance")),
    ("console_pages.withdrawals", "提现", ("owner", "finance")),
    ("console_pages.reports", "报表", ("owner", "operator", "finance")),
    ("console_pages.risk", "风控", ("owner", "operator", "finance")),
    ("console_pages.settings", "设置", ("owner", "operator")),
)


def sign_in(staff) -> None:
    session.clear()  # a fresh session: no fixation across sign-ins
    session.permanent = True
    session["staff_id"] = staff.id


def sign_in_admin(admin) -> None:
    session.clear()
    session.permanent = True
    session["admin_id"] = admin.id


def sign_out() -> None:
    session.clear()


def staff_page(*roles: str):
    """The view needs a signed-in staff member with one of ``roles`` (any role if none)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            from app.services.staff import active_staff

            staff_id = session.get("staff_id")
            if staff_id is None:
                return redirect(url_for("console_pages.login", next=request.path))
            try:
                staff = active_staff(staff_id)
            except AppError:
                session.clear()
                return redirect(url_for("console_pages.login"))
            if roles and staff.role not in roles:
                raise Forbidden("你的角色无权打开此页面。", code="role_forbidden")
            g.staff, g.merchant_id = staff, staff.merchant_id
            return view(*args, **kwargs)

        return wrapper

    return decorator


def admin_page(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        from app.services.staff import active_admin

        admin_id = session.get("admin_id")
        if admin_id is None:
            return redirect(url_for("console_pages.admin_login"))
        try:
            g.admin = active_admin(admin_id)
        except AppError:
            session.clear()
            return redirect(url_for("console_pages.admin_login"))
        return view(*args, **kwargs)

    return wrapper


def navigation() -> list[tuple[str, str]]:
    staff = g.get("staff")
    if staff is None:
        return []
    return [(endpoint, label) for endpoint, label, roles in NAVIGATION if staff.role in roles]
