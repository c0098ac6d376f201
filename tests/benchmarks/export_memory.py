"""An XLSX export of 1,000,000 orders stays under 200 MB of resident memory.

The orders are inserted in bulk (one INSERT ... SELECT over generate_series: varied statuses,
amounts, addresses with the receiver's name and phone, shipment on three in four). The export
is queued through the service and run by the real code path in a separate process, exactly as
the scheduler runs it: ``flask --app wsgi jobs run run-exports``. Its peak resident set is the
kernel's high-water mark for that process (``VmHWM`` in /proc, read every 0.1 s until it
exits; not ``ru_maxrss``, which Linux carries over from the parent across fork and exec, so
after the tree benchmarks it reports the benchmark process's own size). A sampler reads its
RSS beside the export's committed progress, to show that memory stays flat as rows grow.
The baseline is the same command with nothing queued: the process's own footprint.

Afterwards the export must be done with every row written, and the file must hold a header and
one row per order (``<row`` elements counted in the sheet, streamed out of the zip).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import select, text

from config.settings import PROJECT_ROOT
from tests.benchmarks.report import Figure, Report

GROUP = "Exports"
LIMIT_MB = 200.0
SAMPLE_SECONDS = 0.5
HIGH_WATER_SECONDS = 0.1


@dataclass
class Setup:
    """What the benchmark needs from ``python -m tests.benchmarks``."""

    database_url: str
    redis_url: str
    secret_key: str
    instance_dir: Path
    nowhere_url: str
    rows: int


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mb: float  # VmHWM of the child: the kernel's high-water mark
    samples: list[tuple[int, float]] = field(default_factory=list)  # (rows written, RSS MB)
    output: str = ""


def run(report: Report, setup: Setup) -> None:
    from app.database import utcnow
    from app.services import exports

    started = time.monotonic()
    merchant_id = _orders(setup.rows)
    insert_seconds = time.monotonic() - started
    print(f"  {setup.rows:,} orders inserted in {insert_seconds:.0f} s", flush=True)
    idle = _child(setup, export_key=None)
    export = exports.create_export(merchant_id=merchant_id, staff_id=None, kind="orders",
                                   fmt="xlsx", now=utcnow())
    key = (export.merchant_id, export.id)
    measured = _child(setup, export_key=key)
    print(f"  exported in {measured.seconds:.0f} s, peak RSS {measured.peak_rss_mb:.0f} MB "
          f"(idle job {idle.peak_rss_mb:.0f} MB)", flush=True)
    size_mb = _verify(report, setup, key)
    _report(report, setup, idle, measured, size_mb)


def _orders(rows: int) -> int:
    """A merchant with ``rows`` orders of ten buyers, inserted by PostgreSQL itself."""
    from app.extensions import db
    from tests.factories import make_member, make_merchant

    merchant = make_merchant(name="bench exports")
    buyers = [make_member(merchant, status="none") for _ in range(10)]
    db.session.execute(text("""
        INSERT INTO orders (merchant_id, out_trade_no, buyer_user_id, buyer_member_id, status,
            goods_fen, discount_fen, shipping_fen, paid_fen, refunded_fen, address,
            commission_snapshot, carrier, tracking_no, created_at, paid_at, shipped_at,
            received_at)
        SELECT :merchant_id, 'E' || lpad(n::text, 12, '0'), (:user_ids)[1 + n % 10],
            (:member_ids)[1 + n % 10],
            (ARRAY['paid', 'shipped', 'received', 'completed'])[1 + n % 4],
            10000 + n % 5000, n % 300, 800, 10800 + n % 5000 - n % 300, 0,
            json_build_object('receiver', '张三' || (n % 100), 'phone',
                              '138' || lpad((n % 100000000)::text, 8, '0'),
                              'province', '广东省', 'city', '深圳市', 'district', '南山区',
                              'detail', '科技园 ' || n || ' 号'),
            '{}'::json, CASE WHEN n % 4 > 0 THEN '顺丰速运' ELSE '' END,
            CASE WHEN n % 4 > 0 THEN 'SF' || lpad(n::text, 12, '0') ELSE '' END,
            now() - (:rows - n) * interval '1 second',
            now() - (:rows - n - 60) * interval '1 second',
            CASE WHEN n % 4 > 0 THEN now() - (:rows - n - 3600) * interval '1 second' END,
            CASE WHEN n % 4 > 1 THEN now() - (:rows - n - 86400) * interval '1 second' END
        FROM generate_series(1, :rows) AS n
    """), {"merchant_id": merchant.id, "rows": rows,
           "user_ids": [b.user_id for b in buyers], "member_ids": [b.id for b in buyers]})
    db.session.execute(text("ANALYZE orders"))
    db.session.commit()
    return merchant.id


def _child(setup: Setup, *, export_key: tuple[int, int] | None) -> ChildRun:
    """``flask jobs run run-exports`` in its own process; its peak RSS from the kernel."""
    high_water: list[float] = []
    env = dict(os.environ, FENXIAO_ENV="test", DATABASE_URL=setup.database_url,
               REDIS_URL=setup.redis_url, SECRET_KEY=setup.secret_key,
               INSTANCE_DIR=str(setup.instance_dir), WECHAT_API_BASE_URL=setup.nowhere_url,
               WECHATPAY_API_BASE_URL=setup.nowhere_url, LOG_LEVEL="WARNING")
    log_path = setup.instance_dir / "export-job.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run", "run-exports"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        samples: list[tuple[int, float]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(process.pid, export_key, samples, stop,
                                                         setup.database_url, high_water))
        sampler.start()
        _, status, _usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        stop.set()
        sampler.join()
    if not high_water:
        raise RuntimeError("the export job's memory was never read")
    run = ChildRun(seconds=time.monotonic() - started, peak_rss_mb=max(high_water),
                   samples=samples, output=log_path.read_text()[-2000:])
    if process.returncode != 0:
        raise RuntimeError(f"the export job exited {process.returncode}:\n{run.output}")
    return run


def _sample(pid: int, export_key, samples: list, stop: threading.Event,
            database_url: str, high_water: list[float]) -> None:
    from sqlalchemy import create_engine

    from app.models import Export

    engine = create_engine(database_url, pool_size=1)
    status = Path(f"/proc/{pid}/status")
    every = round(SAMPLE_SECONDS / HIGH_WATER_SECONDS)
    try:
        child = psutil.Process(pid)
        for tick in range(1, 10**9):
            if stop.wait(HIGH_WATER_SECONDS):
                break
            try:
                high_water.append(_vm_hwm_mb(status))
                if tick % every:
                    continue
                rss_mb = child.memory_info().rss / 2**20
            except (psutil.Error, OSError, ValueError):
                break
            written = 0
            if export_key is not None:
                with engine.connect() as connection:
                    written = connection.scalar(select(Export.rows_written).where(
                        Export.merchant_id == export_key[0], Export.id == export_key[1]))
            samples.append((written, rss_mb))
    finally:
        engine.dispose()


def _vm_hwm_mb(status: Path) -> float:
    """The process's peak resident set so far (``VmHWM``, in kB), in MB."""
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM in {status}")


def _verify(report: Report, setup: Setup, key: tuple[int, int]) -> float:
    from app.extensions import db
    from app.models import Export
    from app.services import exports

    db.session.expire_all()
    export = db.session.get(Export, key)
    if (export.status, export.rows_written) != ("done", setup.rows):
        report.fail(f"export: {export.status} with {export.rows_written:,} of {setup.rows:,} "
                    f"rows ({export.error})")
        return 0.0
    path = exports.stored_path(setup.instance_dir, export)
    rows = _rows_in_sheet(path)
    if rows != setup.rows + 1:
        report.fail(f"export: the sheet holds {rows:,} rows, expected {setup.rows + 1:,}")
    return path.stat().st_size / 2**20


def _rows_in_sheet(path: Path) -> int:
    """``<row`` elements of the first sheet, counted while the zip streams out."""
    count, tail = 0, b""
    with zipfile.ZipFile(path) as book, book.open("xl/worksheets/sheet1.xml") as sheet:
        while chunk := sheet.read(1 << 20):
            data = tail + chunk
            count += data.count(b"<row ")
            # A "<row " cut by the chunk's edge is counted with the next chunk; four bytes
            # cannot hold a whole one, so nothing is counted twice.
            tail = data[-4:]
    return count


def _report(report: Report, setup: Setup, idle: ChildRun, measured: ChildRun,
            size_mb: float) -> None:
    early, late = _rss_near(measured, setup.rows, 0.1), _rss_near(measured, setup.rows, 0.9)
    report.add(Figure(
        group=GROUP, name=f"XLSX export of {setup.rows:,} orders: peak RSS",
        measured="run-exports job", measured_ms=measured.peak_rss_mb, baseline="limit",
        baseline_ms=LIMIT_MB, better="cheaper", target=1.0, runs=1, unit="MB",
        statistic="peak",
        note=f"{measured.seconds:.0f} s ({setup.rows / measured.seconds:,.0f} rows/s), "
             f"file {size_mb:.0f} MB; the same job with nothing queued peaks at "
             f"{idle.peak_rss_mb:.0f} MB; RSS sampled at 10% of the rows {early} MB, at 90% "
             f"{late} MB"))
    report.metrics["export_memory"] = {
        "rows": setup.rows, "seconds": round(measured.seconds, 1),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "idle_peak_rss_mb": round(idle.peak_rss_mb, 1), "file_mb": round(size_mb, 1),
        "limit_mb": LIMIT_MB,
        "samples": [(rows, round(rss, 1)) for rows, rss in measured.samples[::10]]}


def _rss_near(run: ChildRun, rows: int, share: float) -> str:
    """The RSS sampled when the committed progress first reached ``share`` of the rows."""
    for written, rss_mb in run.samples:
        if written >= rows * share:
            return f"{rss_mb:.0f}"
    return "?"
