"""Exports in the console (issue 7)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("console_exports", __name__, url_prefix="/api/console/v1",
                description="Exports")
BEARER = [{"bearerAuth": []}]
