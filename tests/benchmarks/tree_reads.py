"""Team size and team sales: the stored counters against the recursive query they replace.

For the root and a mid-level member of each shape, both are timed on the same rows in the same
run, and both answers must be identical (a wrong counter fails the run, however fast).
"""

from __future__ import annotations

from app.extensions import db
from tests.benchmarks.report import Figure, Report, median_ms
from tests.benchmarks.trees import Workload, read_counters, recursive_team

GROUP = "Team counters: primary-key read vs recursive query"
TARGET = 100.0
# Below this team size the recursive query is itself a handful of index probes: its ratio is
# reported but not judged, since neither design has anything to prove there.
JUDGED_FROM_TEAM = 10_000
COUNTER_RUNS = 300
RECURSIVE_RUNS = 5
SMALL_TEAM_RUNS = 50  # cheap recursive queries can afford more runs, and are noisier


def run(workload: Workload, report: Report) -> None:
    for shape in ("balanced", "deep", "star"):
        tree = workload.tree(shape)
        for label, member_id in (("root", tree.root_id),
                                 (f"depth {tree.mid_depth}", tree.mid_id)):
            _measure(report, f"{shape} {label}", tree.merchant_id, member_id)


def _measure(report: Report, name: str, merchant_id: int, member_id: int) -> None:
    counters_ms, counters = median_ms(lambda: read_counters(merchant_id, member_id),
                                      runs=COUNTER_RUNS, warmup=20)
    team_size = counters[0]
    runs = RECURSIVE_RUNS if team_size >= JUDGED_FROM_TEAM else SMALL_TEAM_RUNS
    recursive_ms, oracle = median_ms(lambda: recursive_team(merchant_id, member_id), runs=runs)
    db.session.rollback()
    if counters != oracle:
        report.fail(f"{name} (member {member_id}): counters say size, sales = {counters}, "
                    f"the recursive query says {oracle}")
    report.add(Figure(
        group=GROUP, name=f"{name} (team {team_size:,})", measured="counters",
        measured_ms=counters_ms, baseline="recursive", baseline_ms=recursive_ms,
        better="faster", target=TARGET if team_size >= JUDGED_FROM_TEAM else None,
        runs=runs,
        note="" if counters == oracle else f"RESULTS DIFFER: {counters} vs {oracle}"))
    print(f"  {name}: counters {counters_ms:.3f} ms, recursive {recursive_ms:.3f} ms, "
          f"results {'identical' if counters == oracle else 'DIFFER'}", flush=True)
