"""The merchant's H5 console: server-rendered pages (Jinja2) over the same services as the
console API, mobile-first, in Simplified Chinese (issue 8).

Staff sign in with a session cookie (HttpOnly, SameSite=Lax, Secure in production); every
form carries a CSRF token (Flask-WTF), checked for every unsafe request to these pages only —
the JSON APIs authenticate with bearer tokens and are not exposed to CSRF. Every action is
authorised on the server by the same role rules as the API.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from config.settings import Settings

csrf = CSRFProtect()


def init_console(app: Flask, settings: Settings) -> None:
    from app.console import pages

    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the console's own before_request
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        SESSION_COOKIE_NAME="fenxiao_console",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.console_token_ttl_seconds),
    )
    csrf.init_app(app)
    pages.register(app)
