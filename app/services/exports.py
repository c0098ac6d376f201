"""Exports of orders, commissions, distributors, withdrawals and the quarterly income report,
as CSV or XLSX, streamed in bounded memory and run in the background with progress."""

from __future__ import annotations


def run_queued(*, limit: int = 1) -> dict:
    """TODO(issue 7): run queued exports."""
    return {"exported": 0}
