"""Levels and assessment in the console (issue 7)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("console_levels", __name__, url_prefix="/api/console/v1",
                description="Levels and assessment")
BEARER = [{"bearerAuth": []}]
