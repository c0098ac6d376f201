"""The trees the benchmarks run on, built once per run with ``build_tree``, one merchant each.

Also the two ways of reading a team that the benchmarks compare: the stored counters (one
primary-key read, as the API does) and the recursive query over the tree (the test oracle).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, text

from app.demo.tree_builder import build_tree
from app.extensions import db
from app.models import Member
from tests.benchmarks.report import Report
from tests.factories import make_merchant

STAR_SHARE = 10  # the star is a tenth of --members: 100,000 at the default size


@dataclass(frozen=True)
class BenchTree:
    shape: str
    merchant_id: int
    members: int
    root_id: int
    deepest_id: int
    max_depth: int
    mid_id: int  # the member with the largest team at half the maximum depth
    mid_depth: int


class Workload:
    """Builds each shape's tree the first time a benchmark asks for it (so ``--only`` builds
    only what it needs) and records the build in the report."""

    def __init__(self, *, members: int, report: Report) -> None:
        self.members = members
        self.report = report
        self._trees: dict[str, BenchTree] = {}

    def tree(self, shape: str) -> BenchTree:
        if shape not in self._trees:
            self._trees[shape] = self._build(shape)
        return self._trees[shape]

    def _build(self, shape: str) -> BenchTree:
        size = max(2, self.members // STAR_SHARE) if shape == "star" else self.members
        merchant = make_merchant(name=f"bench {shape}")
        done = 0

        def progress(rows: int) -> None:
            nonlocal done
            done += rows
            print(f"\r  building {shape}: {done:,} / {size:,}", end="", file=sys.stderr,
                  flush=True)

        built = build_tree(merchant_id=merchant.id, members=size, shape=shape,
                           progress=progress)
        print(f" in {built['seconds']:.1f} s", file=sys.stderr, flush=True)
        # Fresh statistics, as autovacuum would have them on a live table: without them the
        # planner guesses, and the baseline would measure a bad guess instead of the query.
        db.session.execute(text("ANALYZE members"))
        db.session.commit()
        self.report.builds.append(built | {"table_bytes": _members_bytes()})
        mid_depth = max(1, built["max_depth"] // 2)
        mid_id = db.session.scalar(
            select(Member.id).where(Member.merchant_id == merchant.id,
                                    Member.depth == mid_depth)
            .order_by(Member.team_size.desc(), Member.id).limit(1))
        db.session.rollback()
        return BenchTree(shape=shape, merchant_id=merchant.id, members=size,
                         root_id=built["root_id"], deepest_id=built["deepest_id"],
                         max_depth=built["max_depth"], mid_id=mid_id, mid_depth=mid_depth)


def _members_bytes() -> int:
    return db.session.scalar(text("SELECT pg_total_relation_size('members')"))


_COUNTERS = (select(Member.team_size, Member.team_sales_fen)
             .where(Member.merchant_id == bindparam("m"), Member.id == bindparam("i")))


def read_counters(merchant_id: int, member_id: int) -> tuple[int, int]:
    """Team size and team sales as the API reads them: one row by primary key."""
    size, sales = db.session.execute(_COUNTERS, {"m": merchant_id, "i": member_id}).one()
    return size, sales


def recursive_team(merchant_id: int, member_id: int) -> tuple[int, int]:
    """Team size and team sales by walking the tree (``team_ids_query``'s recursion, also
    summing personal sales): what the counters replace, and their oracle."""
    team = (select(Member.id, Member.personal_sales_fen)
            .where(Member.merchant_id == merchant_id, Member.upline_id == member_id)
            .cte("team", recursive=True))
    team = team.union_all(
        select(Member.id, Member.personal_sales_fen)
        .where(Member.merchant_id == merchant_id, Member.upline_id == team.c.id))
    # The baseline at its best: one index probe per member found. Depending on ANALYZE's
    # sample, the planner may instead hash-join every level of a 2,000-deep chain against the
    # whole members table, which took minutes per run (the caller rolls back, ending these).
    db.session.execute(text("SET LOCAL enable_hashjoin = off"))
    db.session.execute(text("SET LOCAL enable_mergejoin = off"))
    size, sales = db.session.execute(
        select(func.count(), func.coalesce(func.sum(team.c.personal_sales_fen), 0))).one()
    return int(size), int(sales)
