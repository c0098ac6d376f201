"""Payment notifications under load: APIv3 TRANSACTION.SUCCESS with two-tier commission, against
a bare JSON endpoint and an endpoint doing one INSERT and COMMIT, on one gunicorn configuration.

Each target runs alone in its own gunicorn (config/gunicorn.conf.py, same workers and threads):

- ``notify``: the app (``wsgi:app``); a v3 public-key sandbox merchant, alice (tier 2) ← bob
  (tier 1) ← buyers, and one unpaid order per notification, offered for payment (pay_api,
  pay_appid, pay_mch_id, prepay_id set as prepay leaves them).
- ``bare`` and ``insert``: ``tests.benchmarks.baseline_app``, receiving the same bytes.

The notifications are genuine: built by the sandbox's own code (``Notifier.build_v3``: the
resource encrypted with the merchant's APIv3 key, AAD "transaction"; ``headers_for``: signed with
the sandbox's platform key loaded from its state directory). All requests are built before a
phase starts, within WeChat's 5-minute timestamp window of being sent.

Per target: the maximum rate (closed loop, a fixed number of requests over two connections per
gunicorn thread), then latency at 70% of that rate (open loop at a fixed rate; latency counts
from when a request was due, so a stalled server cannot hide behind a waiting client).
Afterwards every notified order must be paid exactly once with the transaction WeChat reported,
with one journal and two commissions each, exact wallet balances and a sound ledger.

The client is Python threads over raw keep-alive sockets with pre-built bytes, on the same
machine: on two cores it competes with gunicorn and PostgreSQL for CPU, which is why the report
gives the CPU each side used per request and what the client reaches against the bare endpoint.
"""

from __future__ import annotations

import itertools
import math
import runpy
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import func, select, text, update

from config.settings import PROJECT_ROOT
from tests.benchmarks import notify_profile
from tests.benchmarks.report import Figure, Report

GROUP = "Payment notifications under load"
WECHAT_LIMIT_MS = 5_000.0
# "Well inside" WeChat's limit: p99 at most a fifth of it. A notification answered late is
# retried by WeChat, so the margin is what a slow query or a GC pause may eat.
P99_TARGET = 0.2
LOAD_SHARE = 0.7
# Workers import lazily, then fill their connection pools and gateway caches on first use.
WARMUP = {"notify": 50, "bare": 1_000, "insert": 1_000}
# The baselines are not limited by orders: they run at least this long per phase, so a burst
# at the start cannot pass for their maximum.
MIN_CLOSED_SECONDS, MIN_OPEN_SECONDS = 8.0, 10.0
# Requests are signed before a phase starts and WeChat's window is 5 minutes: a phase is cut
# to what fits in 4 at the rate expected.
MAX_PHASE_SECONDS = 240.0
CONNECTIONS_PER_THREAD = 2  # two connections per gunicorn thread: no thread waits for work
MAX_CONNECTIONS = 64
# gunicorn's default keep-alive (the config leaves it): a connection idle longer is closed by
# the server, so the client reopens it first instead of failing a request on it.
KEEPALIVE_SECONDS = 2.0
PRICE_FEN = 9_990  # bob earns 999 (10%), alice 499 (5%, floored) on each order
TIER_ONE_FEN, TIER_TWO_FEN = 999, 499
BUYERS = 8
# Notifications handled in this process under pyinstrument after the load (notify_profile).
PROFILED = 100
BASELINE_POOL = 200  # distinct notifications the baselines cycle through
ADDRESS = {"receiver": "张三", "phone": "13800000000", "province": "广东省", "city": "深圳市",
           "district": "南山区", "detail": "科技园 1 号"}


@dataclass
class Setup:
    """What the benchmark needs from ``python -m tests.benchmarks``."""

    database_url: str
    redis_url: str
    secret_key: str
    postgres_data_dir: Path
    notifications: int
    workers: int


@dataclass
class Phase:
    target: str
    kind: str  # max | open
    connections: int
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    errors: int
    retries: int
    offered_rate: float | None = None
    client_lag_p99_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # seconds used by client/app/db

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, share: float) -> float:
        return _percentile(self.latencies, share) * 1000

    def row(self) -> list[str]:
        per_request = {name: seconds * 1000 / self.requests for name, seconds in self.cpu.items()}
        return [self.target, "closed loop (max)" if self.kind == "max" else
                f"open loop at {self.offered_rate:,.0f}/s", str(self.connections),
                f"{self.requests:,}", f"{self.seconds:.1f}", f"{self.rate:,.0f}",
                f"{self.percentile_ms(0.5):.1f}", f"{self.percentile_ms(0.99):.1f}",
                f"{max(self.latencies) * 1000:.1f}", f"{self.client_lag_p99_ms:.1f}",
                f"{per_request['client']:.2f}", f"{per_request['gunicorn']:.2f}",
                f"{per_request['postgres']:.2f}", f"{self.errors}/{self.retries}"]

    def as_dict(self) -> dict:
        return {"target": self.target, "kind": self.kind, "connections": self.connections,
                "requests": self.requests, "seconds": round(self.seconds, 3),
                "rate": round(self.rate, 1), "offered_rate": self.offered_rate,
                "p50_ms": round(self.percentile_ms(0.5), 2),
                "p99_ms": round(self.percentile_ms(0.99), 2),
                "max_ms": round(max(self.latencies) * 1000, 2),
                "client_lag_p99_ms": round(self.client_lag_p99_ms, 2),
                "cpu_ms_per_request": {name: round(seconds * 1000 / self.requests, 3)
                                       for name, seconds in self.cpu.items()},
                "errors": self.errors, "retries": self.retries}


COLUMNS = ["target", "load", "conns", "requests", "s", "req/s", "p50 ms", "p99 ms", "max ms",
           "client lag p99 ms", "client CPU ms/req", "gunicorn CPU ms/req",
           "PostgreSQL CPU ms/req", "errors/retries"]


def run(report: Report, setup: Setup) -> None:
    from app.wechat_sandbox import keys as platform_keys
    from tests.support.processes import start_sandbox
    from tests.support.wechatpay import sandbox_merchant

    work = Path(tempfile.mkdtemp(prefix="fenxiao-bench-notify-"))
    load_before = psutil.getloadavg()[0]
    measured = setup.notifications // 2, setup.notifications - setup.notifications // 2
    sandbox, sandbox_url = start_sandbox(work / "sandbox-state", work)
    kept = True  # the logs explain a failure or a crash; a clean run removes them
    try:
        account = sandbox_merchant(sandbox_url, "v3_public_key")
        notifier = _notifier(platform_keys.load_or_create(str(work / "sandbox-state")),
                             account)
        started = time.monotonic()
        shop = _shop(account, orders=WARMUP["notify"] + sum(measured) + PROFILED)
        print(f"  {len(shop.orders):,} orders offered for payment in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        sources = {"notify": _NotificationSource(notifier, shop),
                   "bare": _PoolSource(notifier, "/bare"),
                   "insert": _PoolSource(notifier, "/insert")}
        _create_insert_table(setup.database_url)
        phases: dict[str, dict[str, Phase]] = {}
        for target in ("bare", "insert", "notify"):
            phases[target] = _measure(target, sources[target], setup, work, measured)
        profiled = notify_profile.profile(sources["notify"].take_parts(PROFILED),
                                          expected_status=sources["notify"].expected_status)
        _report_profile(report, profiled)
        ok = _verify(report, shop, sources["notify"], inserts=(
            sum(p.requests for p in phases["insert"].values()),
            sum(p.retries for p in phases["insert"].values())))
        for phase in (phase for runs in phases.values() for phase in runs.values()):
            if phase.errors:
                ok = False
                report.fail(f"{phase.target} ({phase.kind}): {phase.errors} of "
                            f"{phase.requests} requests not answered "
                            f"{sources[phase.target].expected_status}")
        _report(report, phases, setup, load=(load_before, psutil.getloadavg()[0]))
        kept = not ok
    finally:
        sandbox.stop()
        if kept:
            print(f"  logs kept in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- the shop and its notifications -------------------------------------------------------------

@dataclass
class _Shop:
    merchant_id: int
    account: dict
    tier_one_id: int
    tier_two_id: int
    orders: list[tuple[str, int, str]]  # out_trade_no, paid_fen, buyer openid


def _shop(account: dict, *, orders: int) -> _Shop:
    """A merchant paid through the sandbox account, a two-tier chain and ``orders`` unpaid
    orders as prepay leaves them (the prepay call itself is not what is measured)."""
    from app.clients import secret_box
    from app.database import transaction, utcnow
    from app.extensions import db
    from app.models import Order, User
    from app.services import merchants, payment_settings, products
    from app.services import orders as order_service
    from app.wechat_sandbox import ids
    from tests.factories import make_member, make_user
    from tests.support.wechatpay import settings_body

    merchant = merchants.create_merchant(name="bench notifications",
                                         owner_username="bench-notify-owner",
                                         owner_password="bench-pw-12345")
    payment_settings.configure(merchant_id=merchant.id, body=settings_body(account),
                               box=secret_box(), sandbox_base_url=None)
    product = products.create_product(merchant_id=merchant.id, fields={
        "title": "丑橘 5斤", "price_fen": PRICE_FEN, "stock": orders})
    alice = make_member(merchant)
    bob = make_member(merchant, upline=alice)
    buyers = [make_member(merchant, upline=bob, status="none", user=make_user())
              for _ in range(BUYERS)]
    openids = {buyer.user_id: db.session.get(User, buyer.user_id).openid for buyer in buyers}
    for n in range(orders):
        order_service.create_order(
            merchant_id=merchant.id, user_id=buyers[n % BUYERS].user_id,
            items=[{"product_id": product.id, "quantity": 1}], address=ADDRESS,
            share_token=None, idempotency_key=None, now=utcnow())
    with transaction(db.session):
        order_ids = db.session.scalars(select(Order.id).where(Order.merchant_id == merchant.id))
        db.session.execute(update(Order), [
            {"merchant_id": merchant.id, "id": order_id, "pay_api": "v3",
             "pay_appid": account["appid"], "pay_mch_id": account["mch_id"],
             "prepay_id": ids.prepay_id(), "prepaid_at": utcnow()} for order_id in order_ids])
    rows = db.session.execute(select(Order.out_trade_no, Order.paid_fen, Order.buyer_user_id)
                              .where(Order.merchant_id == merchant.id).order_by(Order.id)).all()
    db.session.rollback()
    return _Shop(merchant.id, account, bob.id, alice.id,
                 [(no, paid, openids[user_id]) for no, paid, user_id in rows])


def _notifier(keys, account: dict):
    from app.wechat_sandbox.notify import Notifier
    from app.wechat_sandbox.state import Merchant, SandboxState

    notifier = Notifier(SandboxState(), keys)
    notifier.merchant = Merchant(
        mch_id=account["mch_id"], appid=account["appid"], mode=account["mode"],
        sign_type=account["sign_type"], apiv3_key=account["apiv3_key"],
        api_key=account["api_key"], serial_no=account["merchant_serial_no"], public_key=None)
    return notifier


def _payment_note(notifier, *, out_trade_no: str, total_fen: int, openid: str):
    """The sandbox's own TRANSACTION.SUCCESS for a payment of the whole order just now."""
    from app.wechat_sandbox import ids, resources
    from app.wechat_sandbox.state import Order as SandboxOrder

    merchant = notifier.merchant
    order = SandboxOrder(
        mch_id=merchant.mch_id, out_trade_no=out_trade_no, appid=merchant.appid, api="v3",
        description="丑橘 5斤", total=total_fen, openid=openid, notify_url="", attach="",
        fingerprint=(), prepay_id=ids.prepay_id(), trade_state="SUCCESS",
        transaction_id=ids.transaction_id(), success_time=ids.now_china(),
        payer_total=total_fen)
    note = notifier.build_v3(merchant, "", "TRANSACTION.SUCCESS", resources.transaction_v3(order))
    return note, order.transaction_id


def _request_bytes(path: str, headers: dict, body: bytes) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1",
            f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in
                                              headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _NotificationSource:
    """One distinct order per notification; remembers the transaction id each one reported."""

    expected_status = 204

    def __init__(self, notifier, shop: _Shop) -> None:
        self.notifier, self.shop = notifier, shop
        self.path = f"/webhooks/wechatpay/v3/{shop.merchant_id}"
        self.next_order = 0
        self.sent: dict[str, str] = {}  # out_trade_no -> transaction_id

    def take(self, count: int) -> list[bytes]:
        return [_request_bytes(path, headers, body)
                for path, headers, body in self.take_parts(count)]

    def take_parts(self, count: int) -> list[tuple[str, dict, bytes]]:
        """The next ``count`` notifications as (path, headers, body)."""
        batch = self.shop.orders[self.next_order:self.next_order + count]
        if len(batch) < count:
            raise RuntimeError("more notifications asked for than orders were created")
        self.next_order += count
        requests = []
        for out_trade_no, paid_fen, openid in batch:
            note, transaction_id = _payment_note(self.notifier, out_trade_no=out_trade_no,
                                                 total_fen=paid_fen, openid=openid)
            self.sent[out_trade_no] = transaction_id
            requests.append((self.path, self.notifier.headers_for(note), note.body))
        return requests


class _PoolSource:
    """The baselines get the same kind of signed notification bytes, cycled from a pool."""

    expected_status = 200

    def __init__(self, notifier, path: str) -> None:
        self.notifier, self.path = notifier, path
        self.pool = [_payment_note(notifier, out_trade_no=f"BASE{n:08d}", total_fen=PRICE_FEN,
                                   openid="o-bench-baseline")[0] for n in range(BASELINE_POOL)]

    def take(self, count: int) -> list[bytes]:
        signed = [_request_bytes(self.path, self.notifier.headers_for(note), note.body)
                  for note in self.pool]
        return [signed[n % len(signed)] for n in range(count)]


# -- processes ---------------------------------------------------------------------------------

def _start_gunicorn(target: str, setup: Setup, log_dir: Path):
    from tests.support.processes import ManagedProcess, child_env
    from tests.support.servers import free_port

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    if target == "notify":
        module = "wsgi:app"
        env = {"FENXIAO_ENV": "test", "DATABASE_URL": setup.database_url,
               "REDIS_URL": setup.redis_url, "SECRET_KEY": setup.secret_key,
               "PUBLIC_BASE_URL": base_url, "INSTANCE_DIR": str(log_dir / "instance"),
               # Production's level: the access line per request is part of the cost.
               "LOG_LEVEL": "INFO"}
    else:
        module = "tests.benchmarks.baseline_app:app"
        env = {"BASELINE_DATABASE_URL": setup.database_url}
    process = ManagedProcess(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", str(setup.workers), module],
        env=child_env(**env), ready_url=f"{base_url}/healthz",
        log_path=log_dir / f"gunicorn-{target}.log")
    process.port = port
    return process.start()


def _create_insert_table(database_url: str) -> None:
    from sqlalchemy import create_engine

    from tests.benchmarks.baseline_app import CREATE_TABLE

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(CREATE_TABLE))
    engine.dispose()


class _CpuMeter:
    """CPU seconds used so far by a process and its descendants (reaped ones included, through
    the parent's children times), sampled around each phase."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def seconds(self) -> float:
        times = self.root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.root.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += child_times.user + child_times.system
        return total


def gunicorn_threads() -> int:
    """Threads per worker, as config/gunicorn.conf.py sets them for every target."""
    return runpy.run_path(str(PROJECT_ROOT / "config" / "gunicorn.conf.py"))["threads"]


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


# -- load --------------------------------------------------------------------------------------

class _Connection:
    """One keep-alive HTTP/1.1 connection; sends pre-built bytes and reads just enough of the
    response (status line, Content-Length) to know where it ends."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.retries = 0
        self.last_used = 0.0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, raw: bytes) -> int:
        """The response's status; 0 when the request could not be completed."""
        if self.sock is not None and time.monotonic() - self.last_used > KEEPALIVE_SECONDS / 2:
            self.close()
        for attempt in range(2):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.buffer = b""
            try:
                self.sock.sendall(raw)
                status, close = self._response()
            except OSError:
                self.close()
                # gunicorn closes idle keep-alive connections: a reused one may be gone. A
                # repeat is harmless (notifications are idempotent) and counted.
                if fresh or attempt:
                    return 0
                self.retries += 1
                continue
            if close:
                self.close()
            self.last_used = time.monotonic()
            return status
        return 0

    def _response(self) -> tuple[int, bool]:
        data = self.buffer
        while (end := data.find(b"\r\n\r\n")) < 0:
            data += self._recv()
        head, data = data[:end], data[end + 4:]
        status = int(head[9:12])
        length, close = None, head.startswith(b"HTTP/1.0")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if length is None:
            if status in (204, 304):
                length = 0
            else:  # the body runs to the end of the connection
                while chunk := self.sock.recv(65536):
                    data += chunk
                length, close = len(data), True
        while len(data) < length:
            data += self._recv()
        self.buffer = data[length:]
        return status, close

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed by the server")
        return chunk


def _closed_loop(port: int, requests: list[bytes], connections: int
                 ) -> tuple[float, list[float], list[int], int]:
    """Every connection sends its next request as soon as the last one is answered."""
    latencies, statuses = [0.0] * len(requests), [0] * len(requests)
    take = itertools.count().__next__  # atomic under the GIL: each index goes to one thread
    retries = []

    def client() -> None:
        connection = _Connection(port)
        while (n := take()) < len(requests):
            started = time.perf_counter()
            statuses[n] = connection.exchange(requests[n])
            latencies[n] = time.perf_counter() - started
        connection.close()
        retries.append(connection.retries)

    started = time.perf_counter()
    _run_threads(client, connections)
    return time.perf_counter() - started, latencies, statuses, sum(retries)


def _open_loop(port: int, requests: list[bytes], rate: float, connections: int
               ) -> tuple[float, list[float], list[int], int, list[float]]:
    """Request n is due at start + n / rate whatever happened before; its latency counts from
    then, so time spent waiting for a free connection is counted too."""
    latencies, statuses = [0.0] * len(requests), [0] * len(requests)
    lags = [0.0] * len(requests)
    take = itertools.count().__next__
    retries = []
    start = time.perf_counter() + 0.05

    def client() -> None:
        connection = _Connection(port)
        while (n := take()) < len(requests):
            due = start + n / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            lags[n] = time.perf_counter() - due
            statuses[n] = connection.exchange(requests[n])
            latencies[n] = time.perf_counter() - due
        connection.close()
        retries.append(connection.retries)

    _run_threads(client, connections)
    finished = max(start + n / rate + latency for n, latency in enumerate(latencies))
    return finished - start, latencies, statuses, sum(retries), lags


def _run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _measure(target: str, source, setup: Setup, work: Path,
             measured: tuple[int, int]) -> dict[str, Phase]:
    process = _start_gunicorn(target, setup, work)
    meters = {"client": None, "gunicorn": _CpuMeter(process.process.pid),
              "postgres": _CpuMeter(_postmaster_pid(setup.postgres_data_dir))}

    def cpu_now() -> dict[str, float]:
        return {name: (time.process_time() if meter is None else meter.seconds())
                for name, meter in meters.items()}

    def phase(kind: str, requests: list[bytes], connections: int,
              rate: float | None = None) -> Phase:
        before = cpu_now()
        if rate is None:
            seconds, latencies, statuses, retries = _closed_loop(process.port, requests,
                                                                 connections)
            lags = []
        else:
            seconds, latencies, statuses, retries, lags = _open_loop(
                process.port, requests, rate, connections)
        after = cpu_now()
        errors = sum(status != source.expected_status for status in statuses)
        if errors:
            wrong = sorted({status for status in statuses if status != source.expected_status})
            print(f"  {target} {kind}: {errors} requests answered {wrong}", flush=True)
        return Phase(target=target, kind=kind, connections=connections,
                     requests=len(requests), seconds=seconds, latencies=latencies,
                     errors=errors, retries=retries, offered_rate=rate,
                     client_lag_p99_ms=_percentile(lags, 0.99) * 1000 if lags else 0.0,
                     cpu={name: after[name] - before[name] for name in after})

    connections = min(MAX_CONNECTIONS,
                      CONNECTIONS_PER_THREAD * setup.workers * gunicorn_threads())
    baseline = target != "notify"
    try:
        warmup = phase("warmup", source.take(WARMUP[target]), connections)
        count = min(measured[0], int(warmup.rate * MAX_PHASE_SECONDS))
        if baseline:  # sized by the warm-up, which runs colder and slower than the loop
            count = max(count, math.ceil(2 * warmup.rate * MIN_CLOSED_SECONDS))
        closed = phase("max", source.take(count), connections)
        rate = LOAD_SHARE * closed.rate
        count = min(measured[1], int(rate * MAX_PHASE_SECONDS))
        if baseline:
            count = max(count, math.ceil(rate * MIN_OPEN_SECONDS))
        opened = phase("open", source.take(count), connections, rate=rate)
        rss = _worker_rss_mb(process.process.pid)
    finally:
        process.stop()
    for done in (closed, opened):
        print(f"  {target} {done.kind}: {done.requests:,} requests in {done.seconds:.1f} s, "
              f"{done.rate:,.0f}/s, p50 {done.percentile_ms(0.5):.1f} ms, "
              f"p99 {done.percentile_ms(0.99):.1f} ms, errors {done.errors}, "
              f"retries {done.retries}", flush=True)
    print(f"  {target} workers after the load: "
          + ", ".join(f"{mb:.0f} MB" for mb in rss) + " resident", flush=True)
    WORKER_RSS_MB[target] = rss
    return {"warmup": warmup, "max": closed, "open": opened}


# Resident memory of each worker of each target after its load, in MB.
WORKER_RSS_MB: dict[str, list[float]] = {}


def _worker_rss_mb(master_pid: int) -> list[float]:
    """RSS of each gunicorn worker (the master's children): what sizing a host counts per
    worker, after every import, pool and cache a worker fills under load."""
    return sorted(child.memory_info().rss / 2**20
                  for child in psutil.Process(master_pid).children())


def _percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# -- verification and the report ---------------------------------------------------------------

def _verify(report: Report, shop: _Shop, source: _NotificationSource, *,
            inserts: tuple[int, int]) -> bool:
    """Every notified order paid once with the reported transaction, one accrual journal and two
    commissions each, exact pending balances, a sound ledger, and every baseline INSERT kept."""
    from app.extensions import db
    from app.models import Commission, Journal, Order
    from app.services import ledger

    db.session.rollback()
    m = shop.merchant_id
    failures_before = len(report.failures)
    rows = db.session.execute(select(Order.out_trade_no, Order.status, Order.transaction_id)
                              .where(Order.merchant_id == m)).all()
    notified = len(source.sent)
    not_paid = [no for no, status, _ in rows if no in source.sent and status != "paid"]
    wrong = [no for no, _, txn in rows if no in source.sent and txn != source.sent[no]]
    if not_paid or wrong:
        report.fail(f"notifications: {len(not_paid)} of {notified} notified orders are not "
                    f"paid, {len(wrong)} carry another transaction id "
                    f"(e.g. {(not_paid + wrong)[:3]})")
    journals = db.session.scalar(select(func.count()).select_from(Journal)
                                 .where(Journal.merchant_id == m))
    commissions = db.session.scalar(select(func.count()).select_from(Commission)
                                    .where(Commission.merchant_id == m))
    if journals != notified or commissions != 2 * notified:
        report.fail(f"notifications: {notified} orders paid, but {journals} journals and "
                    f"{commissions} commissions (expected {notified} and {2 * notified})")
    for name, member_id, each in (("bob (tier 1)", shop.tier_one_id, TIER_ONE_FEN),
                                  ("alice (tier 2)", shop.tier_two_id, TIER_TWO_FEN)):
        pending = ledger.wallet_balances(m, member_id)["pending"]
        if pending != notified * each:
            report.fail(f"notifications: {name} has {pending} fen pending, expected "
                        f"{notified} × {each} = {notified * each}")
    problems = ledger.verify(m)
    if any(problems[name] for name in ("balance_drift", "unbalanced_journals",
                                       "merchants_not_zero")):
        report.fail(f"notifications: the ledger is not sound: {problems}")
    stored = db.session.scalar(text("SELECT count(*) FROM bench_inserts"))
    db.session.rollback()
    # A retried INSERT may or may not have run the first time: each retry allows one more row.
    requests, retries = inserts
    if not requests <= stored <= requests + retries:
        report.fail(f"insert baseline: {stored} rows stored for {requests} requests "
                    f"({retries} retried)")
    ok = len(report.failures) == failures_before
    print(f"  verified: {notified:,} orders paid once, {journals:,} journals, "
          f"{commissions:,} commissions, ledger {'sound' if ok else 'NOT SOUND'}; "
          f"{stored:,} baseline inserts", flush=True)
    report.metrics["notify_verification"] = {
        "orders_notified": notified, "orders_paid_as_reported": notified - len(not_paid + wrong),
        "journals": journals, "commissions": commissions,
        "ledger_accounts_checked": problems["accounts_checked"], "ok": ok}
    return ok


def _report_profile(report: Report, profiled: dict) -> None:
    if profiled["wrong_status"]:
        report.fail(f"profile: {profiled['wrong_status']} of {profiled['requests']} "
                    "notifications were not answered 204")
    stages = profiled["stages_ms"]
    rows = [[stage.strip() if not stage.startswith("  ") else "… " + stage.strip(),
             f"{ms:.2f}", f"{ms / profiled['wall_ms_per_notification']:.0%}"]
            for stage, ms in stages.items()]
    report.tables.append({
        "title": "Where a notification's time goes (pyinstrument)",
        "columns": ["stage", "ms per notification", "share"], "rows": rows,
        "notes": [
            f"{profiled['requests']} notifications handled in the benchmark process through "
            f"Flask's test client (the whole WSGI app, same PostgreSQL and Redis): "
            f"{profiled['wall_ms_per_notification']:.1f} ms wall and "
            f"{profiled['cpu_ms_per_notification']:.1f} ms CPU per notification, "
            f"{profiled['statements_per_notification']:.1f} SQL statements each.",
            f"The call tree: {Path(profiled['path']).name} (written beside this report)."]})
    report.metrics["notify_profile"] = profiled


def _report(report: Report, phases: dict[str, dict[str, Phase]], setup: Setup, *,
            load: tuple[float, float]) -> None:
    best = {target: runs["max"].rate for target, runs in phases.items()}
    notify_open, notify_max, bare = (phases["notify"]["open"], phases["notify"]["max"],
                                     phases["bare"]["max"])
    report.add(Figure(
        group=GROUP, name="notification p99 at 70% of max rate", measured="notify p99",
        measured_ms=notify_open.percentile_ms(0.99), baseline="WeChat's limit",
        baseline_ms=WECHAT_LIMIT_MS, better="cheaper", target=P99_TARGET,
        runs=notify_open.requests, statistic="p99",
        note=f"open loop at {notify_open.offered_rate:,.1f}/s; p50 "
             f"{notify_open.percentile_ms(0.5):.1f} ms, max "
             f"{max(notify_open.latencies) * 1000:.0f} ms"))
    rss = {target: max(WORKER_RSS_MB[target]) for target in ("notify", "bare")}
    report.add(Figure(
        group=GROUP, name="resident memory per worker after the load",
        measured="notify worker (largest)", measured_ms=rss["notify"],
        baseline="bare worker (largest)", baseline_ms=rss["bare"], better="cheaper",
        target=None, runs=len(WORKER_RSS_MB["notify"]), statistic="max", unit="MB",
        note="each worker of the app after "
             f"{sum(p.requests for p in phases['notify'].values()):,} notifications: "
             + ", ".join(f"{mb:.0f}" for mb in WORKER_RSS_MB["notify"])
             + " MB; the bare app's workers import Flask only"))
    ratios = {"notify_vs_bare": best["notify"] / best["bare"],
              "notify_vs_insert": best["notify"] / best["insert"],
              "insert_vs_bare": best["insert"] / best["bare"]}
    client_cores = bare.cpu["client"] / bare.seconds
    client_share = bare.cpu["client"] / max(sum(bare.cpu.values()), 1e-9)
    cpus = psutil.cpu_count()
    server_ms = {name: notify_max.cpu[name] * 1000 / notify_max.requests
                 for name in ("gunicorn", "postgres")}
    ceiling = cpus * 1000 / sum(server_ms.values())
    threads = gunicorn_threads()
    connections = notify_max.connections
    notes = [
        f"gunicorn config/gunicorn.conf.py for all three: {setup.workers} workers × {threads} "
        f"threads (gthread). {connections} keep-alive connections; closed loop for the "
        f"maximum, then an open loop at {LOAD_SHARE:.0%} of each target's own maximum, its "
        "latency counted from when each request was due (client lag: how late the client "
        "sent). Warm-up requests before each target are not counted.",
        f"Maximum throughput: notify {best['notify']:,.1f}/s, bare {best['bare']:,.0f}/s, "
        f"insert {best['insert']:,.0f}/s. Ratios: notify/bare {ratios['notify_vs_bare']:.4f} "
        f"(1 : {1 / ratios['notify_vs_bare']:,.0f}), notify/insert "
        f"{ratios['notify_vs_insert']:.4f} (1 : {1 / ratios['notify_vs_insert']:,.0f}), "
        f"insert/bare {ratios['insert_vs_bare']:.3f}.",
        f"At the maximum (closed loop, {connections} notifications in flight) p99 was "
        f"{notify_max.percentile_ms(0.99):,.0f} ms: "
        + ("beyond WeChat's 5 s, so a burst above capacity makes WeChat time out and retry."
           if notify_max.percentile_ms(0.99) > WECHAT_LIMIT_MS else "within WeChat's 5 s."),
        f"CPU per notification: {server_ms['gunicorn']:.1f} ms in gunicorn and "
        f"{server_ms['postgres']:.1f} ms in PostgreSQL, so at most {ceiling:,.0f} "
        f"notifications/s would fit in these {cpus} CPUs with nothing else running.",
        f"The client: Python threads over raw sockets with pre-built requests, on the same "
        f"{cpus} CPUs as the servers. Against the bare endpoint it reached "
        f"{best['bare']:,.0f} requests/s using {client_cores:.2f} CPU cores "
        f"({bare.cpu['client'] * 1000 / bare.requests:.2f} ms per request), "
        f"{client_share:.0%} of the CPU that run used: "
        + ("the client, not the endpoint, set that maximum, and the ratios understate how "
           "much cheaper the baselines are." if client_share > 0.4 else
           "the client was not what limited it."),
        f"Load average {load[0]:.1f} before and {load[1]:.1f} after this benchmark on {cpus} "
        "CPUs: above the benchmark's own share, other processes competed for the CPUs and "
        "every figure is lower (latencies higher) than on an idle machine.",
        "Notification: APIv3 TRANSACTION.SUCCESS built by the sandbox's own Notifier, "
        "RSA-signed with its platform key, AES-256-GCM resource; each pays one order "
        "(two-tier commission, ledger journal, wallet mirror in Redis). PostgreSQL runs with "
        "fsync off and synchronous_commit off (the test cluster's settings), which flatters "
        "every write, the INSERT baseline's most.",
    ]
    verified = report.metrics.get("notify_verification", {})
    if verified.get("ok"):
        notes.append(
            f"Afterwards: all {verified['orders_notified']:,} notified orders paid once with "
            f"the transaction id their notification carried; {verified['journals']:,} "
            f"journals, {verified['commissions']:,} commissions, exact pending balances for "
            "both tiers, ledger.verify() clean; one stored row per INSERT request.")
    report.tables.append({
        "title": GROUP, "columns": COLUMNS,
        "rows": [phase.row() for target in ("notify", "bare", "insert")
                 for phase in (phases[target]["max"], phases[target]["open"])],
        "notes": notes})
    report.metrics["notifications"] = {
        "workers": setup.workers, "threads": threads, "connections": connections,
        "max_rate": {target: round(rate, 2) for target, rate in best.items()},
        "ratios": {name: round(value, 5) for name, value in ratios.items()},
        "cpu_ms_per_notification": {name: round(ms, 2) for name, ms in server_ms.items()},
        "worker_rss_mb": {target: [round(mb, 1) for mb in sizes]
                          for target, sizes in WORKER_RSS_MB.items()},
        "client_cores_against_bare": round(client_cores, 2),
        "load_average": {"before": load[0], "after": load[1]},
        "phases": [phase.as_dict() for runs in phases.values() for phase in runs.values()]}
