"""``load-report.md`` and ``load-report.json``: what Locust measured, per request name, per user
class and in total, beside the post-run checks and the machine it ran on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

# Above this share of failed requests the run fails (``--max-error-rate``). None is expected
# on a machine with CPU to spare: the seeded stock never runs out, sign-in limits are raised for
# the run (a 429 would mean a broken run), and Locust records nothing for requests cut off when
# it stops.
MAX_ERROR_RATE = 0.01
# The one documented failure: the sandbox stopped waiting for our webhook after WeChat's 5 s.
# It happens when the machine is starved of CPU or payments queue behind each other's locks
# (see "Lock waits" in the report); it counts towards the error rate, and the notification is
# sent again after the load, as WeChat would, so the money checks still see it through.
DEADLINE_FAILURES = ("Read timed out. (read timeout=5)",)
CLASSES = ("buyer", "distributor", "staff", "sandbox")


def is_deadline_failure(error: str) -> bool:
    return any(text in error for text in DEADLINE_FAILURES)


def build(*, settings: dict, result: dict, checks: list[dict], environment: dict,
          lock_waits: dict) -> dict:
    max_error_rate = settings["max_error_rate"]
    seconds = max(result["stopped"] - result["started"], 1e-9)
    total = result["total"]
    error_rate = total["failures"] / total["requests"] if total["requests"] else 1.0
    verdicts = [
        {"name": "requests were made", "ok": total["requests"] > 0,
         "detail": f"{total['requests']:,} requests"},
        {"name": f"error rate at most {max_error_rate:.0%}", "ok": error_rate <= max_error_rate,
         "detail": f"{total['failures']:,} failed of {total['requests']:,} "
                   f"({error_rate:.2%})"},
        {"name": "no exception in the scenario's code", "ok": not result["exceptions"],
         "detail": f"{len(result['exceptions'])} distinct exceptions"},
        *({"name": check["name"], "ok": check["ok"], "detail": check["detail"]}
          for check in checks),
    ]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": all(verdict["ok"] for verdict in verdicts),
        "settings": settings,
        "run": {"seconds": round(seconds, 2), "stop_reason": result["stop_reason"],
                "users": result["users"], "error_rate": round(error_rate, 5),
                "max_error_rate": max_error_rate,
                "deadline_failures": sum(e["occurrences"] for e in result["errors"]
                                         if is_deadline_failure(e["error"]))},
        "total": _rated(total, seconds),
        "classes": [_rated(entry, seconds) for entry in result["classes"]],
        "requests": [_rated(entry, seconds) for entry in result["entries"]],
        "errors": sorted(result["errors"], key=lambda e: -e["occurrences"]),
        "exceptions": result["exceptions"],
        "get_retries": result["get_retries"],
        "lock_waits": lock_waits,
        "checks": checks,
        "verdicts": verdicts,
        "environment": environment,
    }


def _rated(entry: dict, seconds: float) -> dict:
    # One denominator for every row (the whole run), so the rows add up to the total.
    return {**entry, "per_second": round(entry["requests"] / seconds, 2)}


def write(report: dict, root: Path) -> tuple[Path, Path]:
    json_path, md_path = root / "load-report.json", root / "load-report.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(report))
    return md_path, json_path


def markdown(report: dict) -> str:
    s, run, env = report["settings"], report["run"], report["environment"]
    users = ", ".join(f"{name} {count}" for name, count in run["users"].items())
    lines = [
        "# Load report", "",
        f"{report['generated_at']}. **Result: {'passed' if report['ok'] else 'FAILED'}**", "",
        f"Locust {env['locust']}, headless: {s['users']} users ({users}), spawned at "
        f"{s['spawn_rate']}/s, for at most {s['duration']} or {s['max_requests']:,} requests, "
        f"whichever came first (requests in flight when the bound is reached still finish: "
        f"at most one more per user). It ran {run['seconds']:.1f} s and stopped on the "
        f"**{run['stop_reason']}**.", "",
        f"gunicorn (config/gunicorn.conf.py): {s['workers']} workers × {s['threads']} threads "
        f"({s['worker_class']}), LOG_LEVEL={s['log_level']}; PostgreSQL {env['postgresql']} "
        "(throwaway, fsync off), redis-server, the WeChat sandbox; all on loopback.", "",
        f"Per-IP limits raised for the run (LOGIN_RATE_LIMIT_IP={s['login_rate_limit_ip']}, "
        f"LOGIN_RATE_LIMIT_OPENID={s['login_rate_limit_openid']}, SHARE_VISIT_RATE_LIMIT_IP="
        f"{s.get('share_visit_rate_limit_ip', 'default')}): all the load comes from 127.0.0.1, "
        "so the defaults (30 sign-ins, 300 share visits a minute per IP) would turn most of "
        "the run into 429s.", "",
        "## Requests", "",
        "Throughput is requests over the whole run. Percentiles as Locust buckets response "
        "times (exact below 100 ms, then 2 significant digits). `sandbox: POST /sandbox/pay` "
        "is the buyer paying: the sandbox signs the APIv3 notification, POSTs it to our "
        "webhook through gunicorn and answers once we replied, so its time includes ours.", "",
        *_table([*report["requests"], *_labelled(report["classes"]),
                 {**report["total"], "name": "**total**"}]), "",
    ]
    lines += ["## Errors", ""]
    lines += ([f"- {e['occurrences']} × {e['method']} {e['name']}: {e['error']}"
               for e in report["errors"]] or ["None."])
    lines += [f"- exception ({e['count']} ×): {e['msg']}" for e in report["exceptions"]]
    retries = sum(report["get_retries"].values())
    lines += ["", f"The run fails above {run['max_error_rate']:.0%} failed requests. The only "
              "failure expected is the sandbox giving up on our webhook after WeChat's 5 s "
              f"({run['deadline_failures']} here), when CPU is short or payments queue on "
              "locks; those notifications are sent again after the load, as WeChat would "
              "(tests/load/report.py). A GET whose keep-alive connection "
              "gunicorn closed as it was sent is sent again once, as browsers do, and not "
              f"counted as a failure: {retries} such retries"
              + (f" ({report['get_retries']})." if retries else "."), ""]
    waits = report["lock_waits"]
    lines += ["## Lock waits in PostgreSQL during the load", "",
              f"Sessions waiting on a lock, sampled every {waits['interval_seconds']} s "
              f"({waits['samples']} samples); a count × {waits['interval_seconds']} s is "
              "roughly the time spent waiting:", ""]
    lines += ([f"- {shape}: {count}" for shape, count in waits["waiting"].items()]
              or ["- none seen"])
    lines += ["", "## Checks after the run", ""]
    lines += [f"- {'ok' if v['ok'] else '**FAILED**'}: {v['name']}: {v['detail']}"
              for v in report["verdicts"]]
    cpu = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in env["cpu_seconds"].items())
    lines += ["", "## Environment", "",
              f"{env['cpus']} CPUs, Python {env['python']}, {env['platform']}. The machine is "
              "shared with other people's work, so throughput is a floor, not a capacity.",
              f"Load average (1/5/15 min) before the run {_load(env['load_before'])}, after "
              f"{_load(env['load_after'])}.",
              f"CPU used during the load: {cpu} (of {env['cpus']} × {run['seconds']:.0f} s "
              "available).", ""]
    return "\n".join(lines)


def _labelled(classes: list[dict]) -> list[dict]:
    return [{**entry, "name": f"*{entry['name']} (all)*"} for entry in classes]


def _table(rows: list[dict]) -> list[str]:
    lines = ["| request | requests | failures | req/s | p50 ms | p99 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        timing = (f"{row['p50_ms']:,} | {row['p99_ms']:,} | {row['max_ms']:,.0f}"
                  if row["requests"] else "– | – | –")
        lines.append(f"| {row['name']} | {row['requests']:,} | {row['failures']:,} | "
                     f"{row['per_second']:,.1f} | {timing} |")
    return lines


def _load(values: list[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def summary(report: dict) -> str:
    total, run = report["total"], report["run"]
    rows = [f"{row['name']:<12} {row['requests']:>7,} req {row['failures']:>5,} failed "
            f"{row['per_second']:>8,.1f}/s p50 {row.get('p50_ms', 0):>6,} ms "
            f"p99 {row.get('p99_ms', 0):>6,} ms" for row in [*report["classes"], total]]
    rows += [f"{'ok' if v['ok'] else 'FAILED'}: {v['name']}" for v in report["verdicts"]]
    rows.append(f"{run['seconds']:.1f} s, stopped on the {run['stop_reason']}; RESULT: "
                + ("passed" if report["ok"] else "FAILED"))
    return "\n".join(rows)
