"""``make bench``: start throwaway PostgreSQL and redis-server, build the trees, run every
benchmark, write ``bench-report.md`` and ``bench-report.json`` at the repository root.

    .venv/bin/python -m tests.benchmarks                      # 1,000,000-member trees
    .venv/bin/python -m tests.benchmarks --members 2000 --only tree_reads
    .venv/bin/python -m tests.benchmarks --only notify --notifications 1000
    .venv/bin/python -m tests.benchmarks --only export_memory --export-rows 20000
    .venv/bin/python -m tests.benchmarks --only dashboard --orders 100000

Exits 1 when a target is missed or two ways of computing one figure disagree.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

from sqlalchemy import text

from config.settings import PROJECT_ROOT, load_settings
from tests.benchmarks import dashboard, export_memory, notify, redis_ops, tree_bindings, tree_reads
from tests.benchmarks.report import Report
from tests.benchmarks.trees import Workload
from tests.support.servers import PostgresServer, RedisServer, free_port


def _notify(workload: Workload, report: Report, args: argparse.Namespace,
            postgres: PostgresServer, redis_server: RedisServer) -> None:
    from app.clients import settings

    notify.run(report, notify.Setup(
        database_url=settings().database_url,
        redis_url=redis_server.url, secret_key=settings().secret_key,
        postgres_data_dir=postgres.data_dir, notifications=args.notifications,
        workers=args.workers))


def _export_memory(workload: Workload, report: Report, args: argparse.Namespace,
                   postgres: PostgresServer, redis_server: RedisServer) -> None:
    from app.clients import settings

    export_memory.run(report, export_memory.Setup(
        database_url=settings().database_url, redis_url=redis_server.url,
        secret_key=settings().secret_key, instance_dir=settings().instance_dir,
        nowhere_url=settings().wechat_api_base_url, rows=args.export_rows))


NOTIFICATIONS = 800
EXPORT_ROWS = 1_000_000
BENCHMARKS = {
    "tree_reads": lambda workload, report, *_: tree_reads.run(workload, report),
    "tree_bindings": lambda workload, report, *_: tree_bindings.run(workload, report),
    "notify": _notify,
    "export_memory": _export_memory,
    "dashboard": lambda workload, report, args, *_: dashboard.run(report, orders=args.orders),
    "redis_ops": lambda workload, report, args, postgres, redis_server: redis_ops.run(
        report, redis_server.url),
}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    postgres, redis_server = PostgresServer(), RedisServer()
    instance_dir = tempfile.mkdtemp(prefix="fenxiao-bench-")
    try:
        postgres.start()
        redis_server.start()
        app = _app(postgres, redis_server, instance_dir)
        report = Report(members=args.members)
        with app.app_context():
            from flask_migrate import upgrade

            from app.extensions import db

            upgrade()
            report.environment["postgresql"] = db.session.scalar(text("SHOW server_version"))
            workload = Workload(members=args.members, report=report)
            for name in args.only or BENCHMARKS:
                print(f"{name}:", flush=True)
                BENCHMARKS[name](workload, report, args, postgres, redis_server)
    finally:
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(instance_dir, ignore_errors=True)
    # ru_maxrss is in KiB on Linux.
    report.environment["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    md_path, json_path = report.write(PROJECT_ROOT)
    print()
    print(report.summary())
    print(f"{md_path.name}, {json_path.name} written; {time.monotonic() - started:.0f} s in all")
    return 0 if report.ok else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000,
                        help="members of the balanced and deep trees; the star gets a tenth "
                             "(default 1,000,000)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS),
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--notifications", type=int, default=NOTIFICATIONS,
                        help="payment notifications timed (half at the maximum rate, half at "
                             f"70%% of it), one order each (default {NOTIFICATIONS:,})")
    parser.add_argument("--workers", type=int, default=_default_workers(),
                        help="gunicorn workers for the notification benchmark's targets "
                             "(default WEB_CONCURRENCY, else 2 per CPU)")
    parser.add_argument("--export-rows", type=int, default=EXPORT_ROWS,
                        help=f"orders in the XLSX export measured (default {EXPORT_ROWS:,})")
    parser.add_argument("--orders", type=int, default=dashboard.ORDERS,
                        help="orders of the dashboard benchmark's merchant "
                             f"(default {dashboard.ORDERS:,})")
    args = parser.parse_args(argv)
    if args.members < 2:
        parser.error("--members must be at least 2")
    if args.notifications < 100:
        parser.error("--notifications must be at least 100")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def _default_workers() -> int:
    # gunicorn itself reads WEB_CONCURRENCY: the benchmark sizes what production would run.
    return int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))


def _app(postgres: PostgresServer, redis_server: RedisServer, instance_dir: str):
    from app import create_app

    # No WeChat call is made: the base URLs point at a loopback port nobody listens on.
    nowhere = f"http://127.0.0.1:{free_port()}"
    return create_app(load_settings({
        "FENXIAO_ENV": "test",
        "DATABASE_URL": postgres.create_database("fenxiao_bench"),
        "REDIS_URL": redis_server.url,
        "WECHAT_API_BASE_URL": nowhere,
        "WECHATPAY_API_BASE_URL": nowhere,
        "INSTANCE_DIR": instance_dir,
        "LOG_LEVEL": "WARNING",
    }))


if __name__ == "__main__":
    sys.exit(main())
