"""Wallet and ranking updates in Redis: our mirror script against ``redis-benchmark``'s own
HINCRBY and ZINCRBY on the same server in the same run.

Two questions, two pairs:

- What one mirror write costs the server. ``redis-benchmark`` drives both sides with the same
  connections: the mirror script (EVALSHA: a wallet hash written under its version, and the
  member's commission and sales rankings for one period — what one payment writes) against one
  HINCRBY, and against HINCRBY + 2 × ZINCRBY, the plain commands doing the same three updates
  without the version check.
- What one mirror write costs the app. ``wallet_mirror.write`` through redis-py, one call at a
  time on one connection, as a request handler does it, against ``redis-benchmark`` on one
  connection without pipelining (the fastest a client can send HINCRBYs one by one).

Each side writes fresh wallets (random member keys), as payments do: a rewritten version is
skipped by the script, which would flatter it.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from urllib.parse import urlsplit

import redis as redis_lib

from app.integrations import redis_keys, wallet_mirror
from tests.benchmarks.report import Figure, Report

GROUP = "Redis: wallet and ranking updates vs redis-benchmark"
MERCHANT = 1
PERIOD = "2026-11"
SERVER_REQUESTS = 100_000
SERVER_CONNECTIONS = 50
CLIENT_CALLS = 20_000
KEYSPACE = 10_000_000  # random wallet keys: almost every write is a wallet's first


def run(report: Report, redis_url: str) -> None:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        report.fail("redis-benchmark is not installed (Debian: redis-tools)")
        return
    parts = urlsplit(redis_url)
    target = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    try:
        _server_side(report, tool, target, client)
        _client_side(report, tool, target, client)
        _check_written(report, client)
    finally:
        client.flushdb()
        client.close()


def _server_side(report: Report, tool: str, target: list[str],
                 client: redis_lib.Redis) -> None:
    sha = client.script_load(wallet_mirror._MIRROR)
    wallet = redis_keys.wallet(MERCHANT, 0).removesuffix("0") + "__rand_int__"
    commission = redis_keys.ranking(MERCHANT, PERIOD, "commission")
    sales = redis_keys.ranking(MERCHANT, PERIOD, "sales")
    # version 1 over a fresh wallet: the write path, every time.
    mirror = ["EVALSHA", sha, "3", wallet, commission, sales,
              "1", "__rand_int__", "2997", "0", "0", "0", "1", "2997", "29970"]
    measured = {
        "HINCRBY": _benchmark(tool, target, ["HINCRBY", wallet, "pending", "2997"]),
        "ZINCRBY": _benchmark(tool, target, ["ZINCRBY", commission, "2997", "__rand_int__"]),
        "mirror": _benchmark(tool, target, mirror),
    }
    per_op = {name: 1000 / rps for name, rps in measured.items()}
    plain = per_op["HINCRBY"] + 2 * per_op["ZINCRBY"]
    note = (f"redis-benchmark, {SERVER_CONNECTIONS} connections, {SERVER_REQUESTS:,} requests "
            f"each: HINCRBY {measured['HINCRBY']:,.0f}/s, ZINCRBY {measured['ZINCRBY']:,.0f}/s,"
            f" the mirror script {measured['mirror']:,.0f}/s. Per request: the time one "
            "request takes of the server at that rate (1 / throughput).")
    report.add(Figure(
        group=GROUP, name="server: mirror write vs one HINCRBY", measured="mirror script",
        measured_ms=per_op["mirror"], baseline="HINCRBY", baseline_ms=per_op["HINCRBY"],
        better="cheaper", target=None, runs=SERVER_REQUESTS, statistic="throughput",
        note=note))
    report.add(Figure(
        group=GROUP, name="server: mirror write vs HINCRBY + 2 ZINCRBY",
        measured="mirror script", measured_ms=per_op["mirror"],
        baseline="3 plain commands", baseline_ms=plain, better="cheaper", target=None,
        runs=SERVER_REQUESTS, statistic="throughput",
        note="the same three updates as plain increments, without the version check that "
             "lets a late or repeated write be skipped"))
    print(f"  server: HINCRBY {measured['HINCRBY']:,.0f}/s, ZINCRBY "
          f"{measured['ZINCRBY']:,.0f}/s, mirror {measured['mirror']:,.0f}/s", flush=True)
    report.metrics["redis_server_rps"] = {name: round(rps) for name, rps in measured.items()}


def _client_side(report: Report, tool: str, target: list[str],
                 client: redis_lib.Redis) -> None:
    wallet = redis_keys.wallet(MERCHANT, 0).removesuffix("0") + "__rand_int__"
    one_by_one = _benchmark(tool, target, ["HINCRBY", wallet, "pending", "2997"],
                            connections=1, requests=CLIENT_CALLS)
    first_member = 10**9  # above the keys the server-side runs wrote
    started = time.perf_counter()
    for n in range(CLIENT_CALLS):
        wallet_mirror.write(client, wallet_mirror.WalletState(
            merchant_id=MERCHANT, member_id=first_member + n, version=1,
            balances={"pending": 2997, "available": 0, "withdrawing": 0, "paid_out": 0},
            period_totals={PERIOD: (2997, 29970)}))
    ours_ms = (time.perf_counter() - started) * 1000 / CLIENT_CALLS
    report.add(Figure(
        group=GROUP, name="app: wallet_mirror.write vs HINCRBY, one connection",
        measured="wallet_mirror.write", measured_ms=ours_ms,
        baseline="redis-benchmark -c 1", baseline_ms=1000 / one_by_one, better="cheaper",
        target=None, runs=CLIENT_CALLS, statistic="mean",
        note="redis-py in this process, one call after another (a request handler's view, "
             "client CPU included) against redis-benchmark's C client on one connection"))
    print(f"  client: wallet_mirror.write {ours_ms:.3f} ms/call, "
          f"redis-benchmark -c 1 HINCRBY {1000 / one_by_one:.3f} ms", flush=True)


def _check_written(report: Report, client: redis_lib.Redis) -> None:
    """The app-side loop must have written what it was timed writing."""
    last = wallet_mirror.read_wallet(client, MERCHANT, 10**9 + CLIENT_CALLS - 1)
    expected = {"pending": 2997, "available": 0, "withdrawing": 0, "paid_out": 0}
    if last != expected:
        report.fail(f"redis: the last mirrored wallet reads {last}, expected {expected}")
    ranked = client.zscore(redis_keys.ranking(MERCHANT, PERIOD, "sales"),
                           str(10**9 + CLIENT_CALLS - 1))
    if ranked != 29970:
        report.fail(f"redis: the last member's sales ranking is {ranked}, expected 29970")


def _benchmark(tool: str, target: list[str], command: list[str], *,
               connections: int = SERVER_CONNECTIONS, requests: int = SERVER_REQUESTS) -> float:
    """Requests per second ``redis-benchmark`` reached with ``command``."""
    output = subprocess.run(
        [tool, *target, "-n", str(requests), "-c", str(connections), "-r", str(KEYSPACE),
         "--csv", *command],
        check=True, capture_output=True, text=True, timeout=600).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    if not rows:
        raise RuntimeError(f"redis-benchmark printed nothing usable: {output!r}")
    return float(rows[-1]["rps"])

