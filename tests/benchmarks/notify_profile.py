"""Where a notification's time goes: pyinstrument over notifications handled in this process.

The load benchmark says how many notifications per second gunicorn sustains; this says why. The
same signed notifications (for orders of their own) go through the app's WSGI stack via Flask's
test client against the same PostgreSQL and Redis, under pyinstrument's sampling profiler, and
SQLAlchemy counts the statements each one runs. The full call tree is written to
``bench-report.notify-profile.txt``; the report gets the share of the time spent in each stage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import current_app
from pyinstrument import Profiler
from sqlalchemy import event

from app.extensions import db
from config.settings import PROJECT_ROOT

PROFILE_PATH = PROJECT_ROOT / "bench-report.notify-profile.txt"
# Stages, by the module and function that enter them (the outermost match counts, once).
STAGES = {
    "signature check and decryption": ("integrations/wechatpay_v3.py", "parse_notification"),
    "apply_payment (one transaction)": ("services/payments.py", "apply_payment"),
    "  of which commission accrual": ("services/commissions.py", "accrue_for_paid_order"),
    "  of which ledger postings": ("services/ledger.py", "post"),
    "  of which events (rollups, levels, risk)": ("services/events.py", "order_paid"),
    "  of which the commit": ("sqlalchemy/orm/session.py", "commit"),
    "mirror to Redis after the commit": ("services/wallets.py", "mirror_members"),
}


def profile(requests: list[tuple[str, dict, bytes]], *, expected_status: int) -> dict:
    """Handle ``requests`` (path, headers, body) under the profiler; returns per-notification
    milliseconds by stage, statements per notification, and the profile's path."""
    client = current_app.test_client()
    statements = 0

    def count(*_args) -> None:
        nonlocal statements
        statements += 1

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    profiler = Profiler(interval=0.0005)
    wrong = 0
    try:
        profiler.start()
        for path, headers, body in requests:
            response = client.post(path, data=body, headers=headers)
            wrong += response.status_code != expected_status
        profiler.stop()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    session = profiler.last_session
    root = session.root_frame()
    Path(PROFILE_PATH).write_text(profiler.output_text(unicode=True, color=False,
                                                       show_all=False))
    per = len(requests)
    stages = {name: _outermost_time(root, lambda frame, where=where: (
                  frame.function == where[1] and (frame.file_path or "").endswith(where[0])))
              * 1000 / per for name, where in STAGES.items()}
    return {"requests": per, "wrong_status": wrong,
            "wall_ms_per_notification": session.duration * 1000 / per,
            "cpu_ms_per_notification": session.cpu_time * 1000 / per,
            "statements_per_notification": statements / per,
            "stages_ms": stages, "path": str(PROFILE_PATH)}


def _outermost_time(frame, matches: Callable) -> float:
    if frame.function and matches(frame):
        return frame.time
    return sum(_outermost_time(child, matches) for child in frame.children)
