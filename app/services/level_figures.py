"""The figures level conditions are measured against, read in bulk for many members at once.

Where each figure comes from (README glossary, Levels):

- all time (window 0) for ``direct_members``, ``team_size``, ``team_sales_fen`` and
  ``personal_sales_fen``: the counters on the member row. Team counters and personal sales
  arrive through the team-delta queue (seconds behind); when asked for one member at an
  event, the deltas still queued for it are added, so the event's own binding or payment is
  counted at once.
- a window of N days (and all time for ``direct_sales_fen`` and ``commission_earned_fen``,
  which have no counter): the sums of ``daily_member_stats`` over the N business days ending
  today — ``new_direct_members``, ``spent_fen`` (personal sales: what the member paid, less
  refunds), ``direct_sales_fen`` (goods paid of orders they earned tier 1 on, less refunds),
  ``commission_fen`` (accrued, less reversals). Refunds count on their own day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import func, select

from app.domain.levels import Measure, window_start
from app.extensions import db
from app.models import DailyMemberStat, Member, TeamDeltaRow

COUNTERS = {"direct_members": "direct_members", "team_size": "team_size",
            "team_sales_fen": "team_sales_fen", "personal_sales_fen": "personal_sales_fen"}
ROLLUPS = {"direct_members": DailyMemberStat.new_direct_members,
           "personal_sales_fen": DailyMemberStat.spent_fen,
           "direct_sales_fen": DailyMemberStat.direct_sales_fen,
           "commission_earned_fen": DailyMemberStat.commission_fen}


def from_counter(measure: Measure) -> bool:
    metric, window_days = measure
    return window_days == 0 and metric in COUNTERS


def figures_of(merchant_id: int, members: Sequence[Member], wanted: Iterable[Measure], *,
               today: date, with_queued: bool = False) -> dict[int, dict[Measure, int]]:
    """Each member's figure for every wanted measure (one query per distinct window).
    ``with_queued`` adds the team deltas not applied yet (one member at a time: events)."""
    wanted = set(wanted)
    figures = {m.id: {measure: getattr(m, COUNTERS[measure[0]])
                      for measure in wanted if from_counter(measure)} for m in members}
    windows: dict[int, set[str]] = defaultdict(set)
    for metric, window_days in wanted - {m for m in wanted if from_counter(m)}:
        windows[window_days].add(metric)
    ids = [m.id for m in members]
    for window_days, metrics in windows.items():
        for member_id, sums in _rollup_sums(merchant_id, ids, sorted(metrics), today=today,
                                            window_days=window_days).items():
            figures[member_id].update({(metric, window_days): value
                                       for metric, value in sums.items()})
    if with_queued:
        for member in members:
            _add_queued(member, figures[member.id])
    return figures


def _rollup_sums(merchant_id: int, member_ids: list[int], metrics: list[str], *, today: date,
                 window_days: int) -> dict[int, dict[str, int]]:
    query = (select(DailyMemberStat.member_id,
                    *(func.coalesce(func.sum(ROLLUPS[m]), 0) for m in metrics))
             .where(DailyMemberStat.merchant_id == merchant_id,
                    DailyMemberStat.member_id.in_(member_ids), DailyMemberStat.day <= today)
             .group_by(DailyMemberStat.member_id))
    if window_days:
        query = query.where(DailyMemberStat.day >= window_start(today,
                                                                window_days=window_days))
    return {row[0]: dict(zip(metrics, (int(v) for v in row[1:]), strict=True))
            for row in db.session.execute(query)}


def _add_queued(member: Member, figures: dict[Measure, int]) -> None:
    """Deltas are applied to every ancestor on the origin's path (services/tree.py): those
    whose origin lies in this member's team are its pending team figures; its own sales
    deltas are its pending personal sales."""
    if any(m in figures for m in (("team_size", 0), ("team_sales_fen", 0))):
        size, sales = db.session.execute(
            select(func.coalesce(func.sum(TeamDeltaRow.size), 0),
                   func.coalesce(func.sum(TeamDeltaRow.sales_fen), 0))
            .join(Member, (Member.merchant_id == TeamDeltaRow.merchant_id)
                  & (Member.id == TeamDeltaRow.member_id))
            .where(TeamDeltaRow.merchant_id == member.merchant_id,
                   Member.path.contains(f"/{member.id}/"))).one()
        _bump(figures, ("team_size", 0), int(size))
        _bump(figures, ("team_sales_fen", 0), int(sales))
    if ("personal_sales_fen", 0) in figures:
        own = db.session.scalar(select(func.coalesce(func.sum(TeamDeltaRow.sales_fen), 0))
                                .where(TeamDeltaRow.merchant_id == member.merchant_id,
                                       TeamDeltaRow.member_id == member.id,
                                       TeamDeltaRow.kind == "sales"))
        _bump(figures, ("personal_sales_fen", 0), int(own))


def _bump(figures: dict[Measure, int], measure: Measure, by: int) -> None:
    if measure in figures:
        figures[measure] += by
