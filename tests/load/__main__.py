"""``make load``: the load scenario against gunicorn, then the money checked.

    .venv/bin/python -m tests.load                                   # 60 s, 20 users
    .venv/bin/python -m tests.load --duration 10s --users 4 --max-requests 200 --workers 2

Starts a throwaway PostgreSQL and redis-server, the WeChat sandbox and gunicorn
(config/gunicorn.conf.py), migrates, seeds a shop over HTTP (tests/load/seed.py), runs Locust
headless (tests/load/locustfile.py) until the duration or the request bound is reached, checks
the ledger, the wallet mirror and every payment (tests/load/checks.py), and writes
``load-report.md`` and ``load-report.json`` (tests/load/report.py). Exits 1 when a check fails or
too many requests failed; the logs are then kept and their folder printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from config.settings import PROJECT_ROOT, load_settings
from tests.benchmarks.notify import _CpuMeter, _postmaster_pid, gunicorn_threads
from tests.load import checks, report
from tests.load.lock_waits import LockWaitSampler
from tests.load.seed import build_shop
from tests.support.processes import child_env, start_gunicorn, start_sandbox
from tests.support.servers import PostgresServer, RedisServer

DATABASE = "fenxiao_load"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# All load comes from 127.0.0.1: with the per-IP defaults (30 sign-ins, 300 share visits a
# minute) most of the run would be 429s. The per-user and per-member limits stay as shipped.
LOGIN_LIMITS = {"LOGIN_RATE_LIMIT_IP": "1000000/minute",
                "LOGIN_RATE_LIMIT_OPENID": "1000000/minute",
                "SHARE_VISIT_RATE_LIMIT_IP": "1000000/minute"}
# Production's level: the app's access line per request is part of the cost, and the checks
# read the webhook's lines from it.
LOG_LEVEL = "INFO"
# Locust needs this long past the duration to spawn, stop and write its results.
LOCUST_GRACE_SECONDS = 120


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    work = Path(tempfile.mkdtemp(prefix="fenxiao-load-"))
    load_before = os.getloadavg()
    postgres, redis_server, children = PostgresServer(), RedisServer(), []
    ok = False
    try:
        postgres.start()
        redis_server.start()
        measured = _serve_and_load(args, work, postgres, redis_server, children)
        built = report.build(settings=_settings(args), result=measured["result"],
                             checks=measured["checks"], lock_waits=measured["lock_waits"],
                             environment=_environment(measured["postgresql"], load_before,
                                                      measured["cpu"]))
        md_path, json_path = report.write(built, args.output)
        print(report.summary(built))
        print(f"{md_path}, {json_path.name} written", flush=True)
        ok = built["ok"]
    finally:
        for child in reversed(children):
            child.stop()
        redis_server.stop()
        postgres.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", flush=True)
    return 0 if ok else 1


def _serve_and_load(args: argparse.Namespace, work: Path, postgres: PostgresServer,
                    redis_server: RedisServer, children: list) -> dict:
    """Sandbox and gunicorn (appended to ``children`` for the caller to stop), the schema, the
    shop, the load, then the checks: everything the report needs."""
    sandbox, sandbox_url = start_sandbox(work / "sandbox-state", work)
    children.append(sandbox)
    env = _served_env(postgres, redis_server, sandbox_url, work)
    with _app(env).app_context():
        from flask_migrate import upgrade

        from app.extensions import db

        upgrade()
        postgresql = db.session.scalar(text("SHOW server_version"))
        db.session.rollback()
        gunicorn, base_url = start_gunicorn({**env, **LOGIN_LIMITS, "LOG_LEVEL": LOG_LEVEL},
                                            work, workers=args.workers)
        children.append(gunicorn)
        started = time.monotonic()
        shop = build_shop(base_url, sandbox_url)
        print(f"shop seeded in {time.monotonic() - started:.1f} s; load for at most "
              f"{args.duration} or {args.max_requests:,} requests", flush=True)
        meters = {"gunicorn": _CpuMeter(gunicorn.process.pid),
                  "postgres": _CpuMeter(_postmaster_pid(postgres.data_dir)),
                  "sandbox": _CpuMeter(sandbox.process.pid)}
        cpu_before = {name: meter.seconds() for name, meter in meters.items()}
        with LockWaitSampler(postgres.port, DATABASE) as lock_waits:
            result, locust_cpu = _run_locust(args, base_url, shop, work)
        cpu = {"locust": locust_cpu, **{name: meter.seconds() - cpu_before[name]
                                        for name, meter in meters.items()}}
        found = checks.as_dicts(checks.run_all(shop, gunicorn.log_path))
    return {"result": result, "checks": found, "lock_waits": lock_waits.as_dict(),
            "postgresql": postgresql, "cpu": cpu}


def _served_env(postgres: PostgresServer, redis_server: RedisServer, sandbox_url: str,
                work: Path) -> dict[str, str]:
    """What gunicorn serves with; the runner's own app (seeding, checks) uses the same."""
    return {"FENXIAO_ENV": "test", "DATABASE_URL": postgres.create_database(DATABASE),
            "REDIS_URL": redis_server.url, "WECHAT_API_BASE_URL": sandbox_url,
            "WECHATPAY_API_BASE_URL": sandbox_url, "INSTANCE_DIR": str(work / "instance")}


def _app(env: dict[str, str]):
    from app import create_app

    return create_app(load_settings({**env, "LOG_LEVEL": "WARNING"}))


def _run_locust(args: argparse.Namespace, base_url: str, shop: dict, work: Path
                ) -> tuple[dict, float]:
    """Locust as its own process (it monkey-patches the standard library with gevent, which
    this process's database driver should not see). Returns its results and the CPU it used."""
    seed_file, result_file = work / "shop.json", work / "locust-result.json"
    seed_file.write_text(json.dumps(shop, ensure_ascii=False))
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
               "--host", base_url, "--users", str(args.users),
               "--spawn-rate", str(args.spawn_rate), "--run-time", args.duration,
               "--only-summary", "--loglevel", "WARNING", "--csv", str(work / "locust"),
               "--seed-file", str(seed_file), "--max-requests", str(args.max_requests),
               "--result-file", str(result_file), "--staff-users", str(args.staff_users)]
    children_cpu = _children_cpu()
    with open(work / "locust.log", "wb") as log:
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=child_env(), stdout=log,
                              stderr=subprocess.STDOUT,
                              timeout=_seconds(args.duration) + LOCUST_GRACE_SECONDS)
    # Locust is the only child reaped during the run: the rest are still running.
    locust_cpu = _children_cpu() - children_cpu
    if not result_file.exists():
        raise RuntimeError(f"Locust exited with {done.returncode} and no results; see "
                           f"{work / 'locust.log'}")
    return json.loads(result_file.read_text()), locust_cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _settings(args: argparse.Namespace) -> dict:
    return {"duration": args.duration, "duration_seconds": _seconds(args.duration),
            "max_requests": args.max_requests, "users": args.users,
            "staff_users": args.staff_users, "spawn_rate": args.spawn_rate,
            "max_error_rate": args.max_error_rate, "workers": args.workers,
            "threads": gunicorn_threads(), "worker_class": "gthread", "log_level": LOG_LEVEL,
            "login_rate_limit_ip": LOGIN_LIMITS["LOGIN_RATE_LIMIT_IP"],
            "login_rate_limit_openid": LOGIN_LIMITS["LOGIN_RATE_LIMIT_OPENID"],
            "share_visit_rate_limit_ip": LOGIN_LIMITS["SHARE_VISIT_RATE_LIMIT_IP"]}


def _environment(postgresql: str, load_before: tuple, cpu: dict) -> dict:
    from importlib.metadata import version

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True), "postgresql": postgresql,
            "locust": version("locust"), "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            "cpu_seconds": {name: round(seconds, 1) for name, seconds in cpu.items()}}


_TIMESPAN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def _seconds(span: str) -> int:
    """Locust's --run-time syntax (``90``, ``90s``, ``1m30s``, ``1h``) in seconds."""
    match = _TIMESPAN.match(span.strip())
    if not span.strip() or not match:
        raise argparse.ArgumentTypeError(f"not a duration: {span!r} (e.g. 60s, 5m, 1h30m)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", default="60s",
                        help="stop after this long, Locust's syntax (default 60s)")
    parser.add_argument("--max-requests", type=int, default=20_000,
                        help="stop after this many requests (default 20,000)")
    parser.add_argument("--users", type=int, default=20, help="Locust users (default 20)")
    parser.add_argument("--staff-users", type=int,
                        help="of which staff (default a tenth, at least 1); the rest are "
                             "buyers and distributors, 3:1")
    parser.add_argument("--spawn-rate", type=float, default=10.0,
                        help="users started per second (default 10)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--max-error-rate", type=float, default=report.MAX_ERROR_RATE,
                        help="fail above this share of failed requests (default "
                             f"{report.MAX_ERROR_RATE})")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT,
                        help="folder for load-report.md and load-report.json (default: the "
                             "repository root)")
    args = parser.parse_args(argv)
    try:
        if _seconds(args.duration) < 1:
            parser.error("--duration must be at least 1s")
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.staff_users is None:
        args.staff_users = max(1, args.users // 10)
    if args.users < args.staff_users + 2:
        parser.error("--users must leave room for at least one buyer and one distributor")
    if args.max_requests < 1 or args.workers < 1 or args.spawn_rate <= 0:
        parser.error("--max-requests, --workers and --spawn-rate must be positive")
    if not 0 <= args.max_error_rate <= 1:
        parser.error("--max-error-rate is a share, from 0 to 1")
    args.output.mkdir(parents=True, exist_ok=True)
    return args


if __name__ == "__main__":
    sys.exit(main())
