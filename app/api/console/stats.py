"""Statistics and reports in the console (issue 7)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("console_stats", __name__, url_prefix="/api/console/v1",
                description="Statistics and reports")
BEARER = [{"bearerAuth": []}]
