"""Timing, and the one report of a run: figures beside their baselines, as ratios.

``bench-report.md`` and ``bench-report.json`` are written at the repository root (gitignored);
the same table goes to stdout.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def median_ms(action: Callable[[], Any], *, runs: int, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``action`` in milliseconds, and its last result.

    Warm-up runs are discarded: the first reads of freshly copied rows set hint bits and fill
    the caches, which says nothing about either design.
    """
    result = None
    for _ in range(warmup):
        result = action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        result = action()
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1e6, result


@dataclass
class Figure:
    """One measured figure beside its baseline.

    ``ratio`` is how many times better the figure is than the baseline when ``better`` is
    "faster" (baseline / measured), or how many times the baseline it costs when ``better`` is
    "cheaper" (measured / baseline). ``target`` is None for informational figures.
    """

    group: str
    name: str
    measured: str
    measured_ms: float
    baseline: str
    baseline_ms: float
    better: str  # faster | cheaper
    target: float | None
    runs: int
    note: str = ""
    statistic: str = "median"  # of the runs, for both sides: median | p99 | max
    unit: str = "ms"  # of measured_ms and baseline_ms: ms, or MB for a memory figure
    ratio: float = field(init=False)
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.better == "faster":
            self.ratio = self.baseline_ms / max(self.measured_ms, 1e-9)
            self.ok = self.target is None or self.ratio >= self.target
        else:
            self.ratio = self.measured_ms / max(self.baseline_ms, 1e-9)
            self.ok = self.target is None or self.ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "info"
        return f"≥ {self.target:g}× faster" if self.better == "faster" else f"≤ {self.target:g}×"


@dataclass
class Report:
    members: int
    builds: list[dict] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    # Load benchmarks: {"title", "columns", "rows" (lists of cells), "notes"} per table, and
    # their machine-readable figures by benchmark.
    tables: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and all(figure.ok for figure in self.figures)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def fail(self, message: str) -> None:
        """A wrong result, not a slow one: the run fails whatever the timings say."""
        print(f"FAILED: {message}", flush=True)
        self.failures.append(message)

    def write(self, root: Path) -> tuple[Path, Path]:
        data = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "members": self.members, "ok": self.ok,
                "environment": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                **self.environment},
                "builds": self.builds,
                "figures": [asdict(figure) | {"target_text": figure.target_text}
                            for figure in self.figures],
                "tables": self.tables, "metrics": self.metrics,
                "failures": self.failures}
        json_path, md_path = root / "bench-report.json", root / "bench-report.md"
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        md_path.write_text(self.markdown(data))
        return md_path, json_path

    def markdown(self, data: dict) -> str:
        env = data["environment"]
        trees = f"; trees of {self.members:,} members" if self.builds else ""
        lines = ["# Benchmark report", "",
                 f"{data['generated_at']}; {env['cpus']} CPUs, Python {env['python']}, "
                 f"PostgreSQL {env.get('postgresql', '?')}{trees}.",
                 "", f"**Result: {'all targets met' if self.ok else 'FAILED'}**", ""]
        if self.builds:
            lines += ["## Trees built (build_tree)", "",
                      "| shape | members | max depth | seconds | members/s | members table after |",
                      "|---|---:|---:|---:|---:|---:|"]
            lines += [f"| {b['shape']} | {b['members']:,} | {b['max_depth']:,} | "
                      f"{b['seconds']:.1f} | {b['members'] / max(b['seconds'], 1e-9):,.0f} | "
                      f"{b['table_bytes'] / 2**20:,.0f} MB |" for b in self.builds]
            lines += ["", f"Peak memory of the benchmark process (builds included): "
                          f"{env.get('peak_rss_mb', '?')} MB.", ""]
        for group in dict.fromkeys(figure.group for figure in self.figures):
            figures = [figure for figure in self.figures if figure.group == group]
            statistic = {f.statistic for f in figures}
            shown = f" ({statistic.pop()})" if len(statistic) == 1 else ""
            # A p99 is compared with a limit, not with another p99.
            baseline = " (median)" if shown == " (median)" else ""
            lines += [f"## {group}", "",
                      f"| case | measured{shown} | baseline{baseline} | ratio | target | |",
                      "|---|---:|---:|---:|---|---|"]
            for f in figures:
                lines.append(
                    f"| {f.name} | {f.measured}: {f.measured_ms:.3f} {f.unit} | "
                    f"{f.baseline}: {f.baseline_ms:.3f} {f.unit} | {_ratio(f)} | "
                    f"{f.target_text} | {_verdict(f)} |")
            notes = [f"- {f.name}: {f.note}" for f in self.figures
                     if f.group == group and f.note]
            lines += ["", *notes, ""] if notes else [""]
        for table in self.tables:
            lines += [f"## {table['title']}: runs", "",
                      "| " + " | ".join(table["columns"]) + " |",
                      "|---|---|" + "---:|" * (len(table["columns"]) - 2)]
            lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
            lines += ["", *[f"- {note}" for note in table["notes"]], ""]
        if self.failures:
            lines += ["## Failures", "", *[f"- {message}" for message in self.failures], ""]
        return "\n".join(lines)

    def summary(self) -> str:
        width = max([len(f.name) for f in self.figures] + [10])
        rows = [f"{'case':<{width}}  {'measured':>12}  {'baseline':>12}  "
                f"{'ratio':>10}  target"]
        for f in self.figures:
            rows.append(f"{f.name:<{width}}  {f.measured_ms:>9.3f} {f.unit:>2}  "
                        f"{f.baseline_ms:>9.3f} {f.unit:>2}  "
                        f"{_ratio(f):>10}  {f.target_text} {_verdict(f)}")
        for table in self.tables:
            rows += ["", table["title"] + ":",
                     "  ".join(f"{column:>{_width(table, n)}}"
                               for n, column in enumerate(table["columns"]))]
            rows += ["  ".join(f"{cell:>{_width(table, n)}}" for n, cell in enumerate(row))
                     for row in table["rows"]]
            rows += table["notes"] + [""]
        rows += [f"build {b['shape']}: {b['members']:,} members in {b['seconds']:.1f} s"
                 for b in self.builds]
        rows += [f"FAILED: {message}" for message in self.failures]
        rows.append("RESULT: " + ("all targets met" if self.ok else "FAILED"))
        return "\n".join(rows)


def _ratio(figure: Figure) -> str:
    # A share below one (a p99 against a limit) reads better as a fraction than as 0.0×.
    return f"{figure.ratio:,.1f}×" if figure.ratio >= 0.95 else f"{figure.ratio:.3f}×"


def _width(table: dict, column: int) -> int:
    return max(len(str(row[column])) for row in [table["columns"], *table["rows"]])


def _verdict(figure: Figure) -> str:
    if figure.target is None:
        return ""
    return "ok" if figure.ok else "**MISSED**"
