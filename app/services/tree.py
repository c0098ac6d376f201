"""The member tree: attaching members under uplines, moving subtrees, and team counters.

Counters and why they are correct:

- ``direct_members`` changes in the binding's own transaction (one row: the upline).
- ``team_size``, ``team_sales_fen`` (every ancestor) and ``personal_sales_fen`` change through
  queued deltas (``team_deltas``), applied by ``apply_team_deltas`` (a job, every few seconds).
  A binding therefore writes a constant number of rows whether the upline is the root or 2,000
  levels deep, and no ancestor row becomes a hot lock.
- A delta names its origin member; its ancestors are read from the origin's path when the delta
  is applied. ``sales`` deltas add to the origin's personal sales and to every ancestor's team
  sales; ``transfer`` deltas carry a member's whole applied contribution (itself, its personal
  sales and its team) to its ancestors, and are written only under the tree lock.
- Moving a member that already has an upline first applies every queued delta of the merchant
  (under the tree lock, so no transfer can be queued meanwhile), then takes the member's applied
  contribution out of the old ancestors, rewrites the subtree's paths, and queues a transfer to
  the new ones. A sales delta queued concurrently is not in any applied counter yet, so applying
  it later along the new path is right.

Every function here runs inside the caller's transaction and only flushes; bindings and moves
call ``lock_tree`` first.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, bindparam, delete, func, literal, select, text, update

from app.database import LOCK_TREE, lock_merchant
from app.domain import tree as tree_rules
from app.extensions import db
from app.models import Member, TeamDeltaRow

DELTA_BATCH = 5_000


def lock_tree(merchant_id: int) -> None:
    lock_merchant(db.session, merchant_id, namespace=LOCK_TREE)


def attach(member: Member, upline: Member) -> None:
    """Put ``member`` (with its whole team) under ``upline``. The caller holds the tree lock and
    has checked that ``upline`` is not in ``member``'s team."""
    if member.upline_id is not None:
        _detach(member)
    old_prefix = _team_prefix(member)
    member.upline_id = upline.id
    member.path = tree_rules.child_path(parent_path=upline.path, parent_id=upline.id)
    member.depth = tree_rules.depth(member.path)
    upline.direct_members += 1
    _rebase_team(member, old_prefix=old_prefix)
    _queue(member, kind="transfer", size=1 + member.team_size,
           sales_fen=member.personal_sales_fen + member.team_sales_fen)


def _detach(member: Member) -> None:
    apply_team_deltas(member.merchant_id)
    db.session.refresh(member)
    old_upline = db.session.get(Member, (member.merchant_id, member.upline_id))
    old_upline.direct_members -= 1
    _add_to_ancestors(member.merchant_id, tree_rules.ancestors(member.path),
                      size=-(1 + member.team_size),
                      sales_fen=-(member.personal_sales_fen + member.team_sales_fen))


def queue_sales(member: Member, *, sales_fen: int) -> None:
    """Record paid (or, negative, refunded) sales of ``member`` for its team counters."""
    _queue(member, kind="sales", size=0, sales_fen=sales_fen)


def _queue(member: Member, *, kind: str, size: int, sales_fen: int) -> None:
    if size or sales_fen:
        db.session.add(TeamDeltaRow(merchant_id=member.merchant_id, member_id=member.id,
                                    kind=kind, size=size, sales_fen=sales_fen))


def apply_team_deltas(merchant_id: int, *, batch: int = DELTA_BATCH) -> int:
    """Apply queued deltas of one merchant, oldest first; returns how many were applied.

    Runs in the caller's transaction under the tree lock (the job takes it; a move already
    holds it). Many deltas in one subtree fold into one update per ancestor.
    """
    applied = 0
    while True:
        rows = db.session.execute(
            select(TeamDeltaRow.id, TeamDeltaRow.kind, TeamDeltaRow.size,
                   TeamDeltaRow.sales_fen, Member.id, Member.path)
            .join(Member, (Member.merchant_id == TeamDeltaRow.merchant_id)
                  & (Member.id == TeamDeltaRow.member_id))
            .where(TeamDeltaRow.merchant_id == merchant_id)
            .order_by(TeamDeltaRow.id).limit(batch)).all()
        if not rows:
            return applied
        _apply(merchant_id, rows)
        db.session.execute(delete(TeamDeltaRow).where(
            TeamDeltaRow.merchant_id == merchant_id,
            TeamDeltaRow.id.in_([row[0] for row in rows])))
        applied += len(rows)


def _apply(merchant_id: int, rows: Sequence) -> None:
    deltas = [tree_rules.TeamDelta(path=path, size=size, sales_fen=sales)
              for _, _, size, sales, _, path in rows]
    _bump_many(merchant_id, tree_rules.fold_deltas(deltas))
    personal: dict[int, int] = {}
    for _, kind, _, sales, member_id, _ in rows:
        if kind == "sales":
            personal[member_id] = personal.get(member_id, 0) + sales
    for member_id, sales in personal.items():
        db.session.execute(update(Member).where(
            Member.merchant_id == merchant_id, Member.id == member_id).values(
            personal_sales_fen=Member.personal_sales_fen + sales))


def _add_to_ancestors(merchant_id: int, ancestor_ids: list[int], *, size: int,
                      sales_fen: int) -> None:
    _bump_many(merchant_id, dict.fromkeys(ancestor_ids, (size, sales_fen)))


_BUMP = (update(Member)
         .where(Member.merchant_id == bindparam("m"), Member.id == bindparam("i"))
         .values(team_size=Member.team_size + bindparam("s"),
                 team_sales_fen=Member.team_sales_fen + bindparam("v")))


# PostgreSQL: one statement for the whole batch, however many ancestors a deep chain has.
_BUMP_ARRAYS = text("""
    UPDATE members AS m
    SET team_size = m.team_size + d.s, team_sales_fen = m.team_sales_fen + d.v
    FROM unnest(CAST(:ids AS bigint[]), CAST(:sizes AS bigint[]), CAST(:sales AS bigint[]))
         AS d(i, s, v)
    WHERE m.merchant_id = :m AND m.id = d.i""")


def _bump_many(merchant_id: int, totals: dict[int, tuple[int, int]]) -> None:
    """Add (size, sales) to each member's team counters, in member-id order (no deadlocks)."""
    if not totals:
        return
    ordered = sorted(totals.items())
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_BUMP_ARRAYS, {
            "m": merchant_id, "ids": [i for i, _ in ordered],
            "sizes": [s for _, (s, _) in ordered], "sales": [v for _, (_, v) in ordered]})
        return
    # Core executemany (not the ORM's bulk-update-by-primary-key mode).
    db.session.connection().execute(_BUMP, [{"m": merchant_id, "i": i, "s": s, "v": v}
                                            for i, (s, v) in ordered])


def _team_prefix(member: Member) -> str:
    return tree_rules.child_path(parent_path=member.path, parent_id=member.id)


def _rebase_team(member: Member, *, old_prefix: str) -> None:
    """Rewrite the paths of every descendant after ``member`` got a new path."""
    if member.direct_members == 0:
        return
    new_prefix = _team_prefix(member)
    shift = tree_rules.depth(new_prefix) - tree_rules.depth(old_prefix)
    descendants = team_ids_query(member.merchant_id, member.id)
    db.session.execute(
        update(Member)
        .where(Member.merchant_id == member.merchant_id, Member.id.in_(descendants))
        .values(path=literal(new_prefix, String).concat(
                    func.substr(Member.path, len(old_prefix) + 1)),
                depth=Member.depth + shift)
        .execution_options(synchronize_session=False))


def team_ids_query(merchant_id: int, member_id: int):
    """Every descendant's id, by a recursive query: for moves and as the tests' oracle; never
    for reading counters."""
    team = (select(Member.id).where(Member.merchant_id == merchant_id,
                                    Member.upline_id == member_id)
            .cte("team", recursive=True))
    team = team.union_all(select(Member.id).where(Member.merchant_id == merchant_id,
                                                  Member.upline_id == team.c.id))
    return select(team.c.id)
