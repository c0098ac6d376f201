"""Binding cost: a new member bound 2,000 levels deep against one bound under the root.

Both go through the real path, ``attribution.record_visit`` with the distributor's share link
and a fresh signed-in user (its own two transactions, tree lock included), alternately, on the
same deep tree, so that drift in caches or table size falls on both alike. Then the delayed
half of a binding, ``apply_team_deltas``, is timed for one deep and one root binding.
"""

from __future__ import annotations

import statistics
import time
import uuid

from app.database import transaction
from app.extensions import db
from app.models import Member, User
from app.services import attribution, tree
from tests.benchmarks.report import Figure, Report
from tests.benchmarks.trees import Workload, read_counters, recursive_team
from tests.factories import make_share_link

GROUP = "Binding a new member: under the deepest member vs under the root (deep tree)"
TARGET = 3.0
BINDINGS = 200
WARMUP = 10
APPLY_RUNS = 20
CONTEXT = attribution.VisitContext(channel="miniprogram", scene_value="1047")


def run(workload: Workload, report: Report) -> None:
    bench = workload.tree("deep")
    merchant_id = bench.merchant_id
    # Plain strings: an expired ORM attribute would add a query inside the timed call.
    deep = make_share_link(db.session.get(Member, (merchant_id, bench.deepest_id))).token
    root = make_share_link(db.session.get(Member, (merchant_id, bench.root_id))).token
    users = iter(_fresh_users(2 * (BINDINGS + WARMUP + APPLY_RUNS)))
    _apply_queue(merchant_id)  # a built tree queues nothing; start from an empty queue anyway

    deep_ms, root_ms = [], []
    for i in range(WARMUP + BINDINGS):
        for token, samples in ((deep, deep_ms), (root, root_ms)):
            elapsed = _timed(lambda token=token: _bind(report, token, next(users)))
            if i >= WARMUP:
                samples.append(elapsed)
    report.add(Figure(
        group=GROUP, name=f"record_visit binding (depth {bench.max_depth + 1} vs 1)",
        measured="under deepest", measured_ms=statistics.median(deep_ms),
        baseline="under root", baseline_ms=statistics.median(root_ms), better="cheaper",
        target=TARGET, runs=BINDINGS,
        note=f"p90 under deepest {_p90(deep_ms):.3f} ms, under root {_p90(root_ms):.3f} ms"))

    _apply_queue(merchant_id)  # what the bindings above queued, untimed
    deep_apply, root_apply = [], []
    for _ in range(APPLY_RUNS):
        for token, samples in ((deep, deep_apply), (root, root_apply)):
            _bind(report, token, next(users))
            samples.append(_timed(lambda: _apply_queue(merchant_id)))
    report.add(Figure(
        group=GROUP, name="apply_team_deltas for one binding (informational)",
        measured="deep binding", measured_ms=statistics.median(deep_apply),
        baseline="root binding", baseline_ms=statistics.median(root_apply), better="cheaper",
        target=None, runs=APPLY_RUNS,
        note=f"one update per ancestor: {bench.max_depth + 1} rows for the deep binding, "
             "1 for the root binding; asynchronous, off the binding's own transaction"))
    _check_consistent(report, bench.merchant_id, (bench.root_id, bench.mid_id, bench.deepest_id))


def _bind(report: Report, token: str, user_id: int) -> None:
    outcome = attribution.record_visit(token=token, user_id=user_id, context=CONTEXT)
    if not outcome.bound:
        report.fail(f"user {user_id} was not bound by link {token}: {outcome.reason}")


def _apply_queue(merchant_id: int) -> int:
    with transaction(db.session):
        tree.lock_tree(merchant_id)
        return tree.apply_team_deltas(merchant_id)


def _fresh_users(count: int) -> list[int]:
    run_id = uuid.uuid4().hex[:8]
    with transaction(db.session):
        users = [User(appid="wx-bench", openid=f"bench-{run_id}-{n}") for n in range(count)]
        db.session.add_all(users)
    return [user.id for user in users]


def _check_consistent(report: Report, merchant_id: int, member_ids: tuple[int, ...]) -> None:
    """After hundreds of bindings and applied deltas, the counters still equal the oracle."""
    for member_id in member_ids:
        counters, oracle = read_counters(merchant_id, member_id), recursive_team(merchant_id,
                                                                                member_id)
        if counters != oracle:
            report.fail(f"after the bindings, member {member_id}'s counters {counters} differ "
                        f"from the recursive query {oracle}")
    db.session.rollback()
    print(f"  bindings: counters of {len(member_ids)} members checked against the recursive "
          "query", flush=True)


def _timed(action) -> float:
    started = time.perf_counter_ns()
    action()
    return (time.perf_counter_ns() - started) / 1e6


def _p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1]
