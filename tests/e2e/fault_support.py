"""A throwaway world for the fault tests: its own PostgreSQL, Redis, WeChat sandbox and
gunicorn, which the tests stop, kill and restart; shops set up over HTTP; and the checks every
fault must end with (the ledger proves itself, nothing is half-written, Redis mirrors SQL).

Nothing here imports the app in this process: the state is read with plain SQL and redis-py,
and commands run as `flask --app wsgi ...` subprocesses, so a fault never leaves a broken
connection (or a Flask-Limiter bound to a dead Redis) behind for the tests that run later.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import redis
import requests

from app.domain.ledger import WALLET_KINDS
from app.integrations import redis_keys
from tests.support.http import Api
from tests.support.processes import (
    PROJECT_ROOT,
    ManagedProcess,
    child_env,
    start_gunicorn,
    start_sandbox,
)
from tests.support.servers import PostgresServer, RedisServer, _redis_binary, wait_until
from tests.support.wechatpay import control, pay, sandbox_merchant, settings_body, signed

WORKERS = 4
DATABASE = "fenxiao_faults"
ADDRESS = {"receiver": "张三", "phone": "13800000000", "province": "广东省", "city": "深圳市",
           "district": "南山区", "detail": "科技园 1 号"}
PRICE_FEN = 10_000
BOB_TIER_ONE_FEN, ALICE_TIER_TWO_FEN = 1_000, 500  # 10% and 5% of one order
OWNER_PASSWORD = "pw-12345"
# The pid of the serving worker on each access line: a failure can be traced to the worker.
GUNICORN_CMD_ARGS = ("--access-logfile - --access-logformat "
                     "'fault-access pid=%(p)s %(m)s %(U)s %(s)s'")


class DurableRedis(RedisServer):
    """redis-server with an append-only file synced on every write, as a production Redis is
    run: after a kill -9 and a restart on the same port it holds what it had acknowledged, so
    the mirror is stale (not empty) and only the outbox sweep can bring it up to date."""

    def start(self) -> DurableRedis:
        self.process = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir),
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(client.ping, timeout=15, what="redis-server")
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as when the host or the process dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@dataclass
class Stack:
    pg: PostgresServer
    redis_server: DurableRedis
    sandbox: ManagedProcess
    sandbox_url: str
    gunicorn: ManagedProcess
    base_url: str
    env: dict
    root: Path
    tally: Counter = field(default_factory=Counter)

    # -- commands and state ------------------------------------------------------------------

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        """`flask --app wsgi ARGS` in the served environment (same database, Redis, sandbox)."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                              cwd=PROJECT_ROOT, env=child_env(**self.env), capture_output=True,
                              text=True, timeout=180)

    def flask_json(self, *args: str) -> dict:
        done = self.flask(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def connect(self, **options) -> psycopg.Connection:
        return psycopg.connect(f"host=127.0.0.1 port={self.pg.port} user=postgres "
                               f"dbname={DATABASE}", **options)

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        """A fresh connection per call: the server may have been restarted in between."""
        with self.connect(autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: tuple | dict = ()):
        return self.query(sql, params)[0][0]

    def redis_client(self) -> redis.Redis:
        return redis.Redis(port=self.redis_server.port, decode_responses=True,
                           socket_connect_timeout=2)

    def worker_pids(self) -> set[int]:
        master = psutil.Process(self.gunicorn.process.pid)
        return {child.pid for child in master.children() if child.is_running()}

    def heal(self) -> None:
        if self.redis_server.process.poll() is not None:
            self.redis_server.start()
        try:
            self.scalar("SELECT 1")
        except psycopg.OperationalError:
            self.pg.resume()

    def stop(self) -> None:
        for step in (self.gunicorn.stop, self.sandbox.stop, self.redis_server.stop,
                     self.pg.stop):
            with contextlib.suppress(Exception):  # stop the rest even if one is half-dead
                step()


def start_stack(root: Path) -> Stack:
    started: list = []
    try:
        pg = PostgresServer().start()
        started.append(pg.stop)
        database_url = pg.create_database(DATABASE)
        redis_server = DurableRedis().start()
        started.append(redis_server.stop)
        sandbox, sandbox_url = start_sandbox(Path(tempfile.mkdtemp(dir=root)), root)
        started.append(sandbox.stop)
        env = {"FENXIAO_ENV": "test", "DATABASE_URL": database_url,
               "REDIS_URL": redis_server.url, "WECHAT_API_BASE_URL": sandbox_url,
               "WECHATPAY_API_BASE_URL": sandbox_url, "INSTANCE_DIR": str(root / "instance")}
        migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db",
                                   "upgrade"], cwd=PROJECT_ROOT, env=child_env(**env),
                                  capture_output=True, text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        gunicorn, base_url = start_gunicorn({**env, "GUNICORN_CMD_ARGS": GUNICORN_CMD_ARGS},
                                            root, workers=WORKERS)
    except BaseException:
        for stop in reversed(started):
            with contextlib.suppress(Exception):
                stop()
        raise
    return Stack(pg=pg, redis_server=redis_server, sandbox=sandbox, sandbox_url=sandbox_url,
                 gunicorn=gunicorn, base_url=base_url, env=env, root=root)


def start_unreachable_notify_gunicorn(stack: Stack) -> tuple[ManagedProcess, str]:
    """Another gunicorn on the same database whose PUBLIC_BASE_URL is a closed port: orders,
    refunds and transfers started through it give WeChat a notify URL nobody answers, so
    WeChat's first attempt fails and the whole retry schedule is still to come."""
    from tests.support.servers import free_port

    log_dir = stack.root / "unreachable"
    log_dir.mkdir(exist_ok=True)
    env = {**stack.env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    return start_gunicorn(env, log_dir, workers=1)


# -- HTTP -------------------------------------------------------------------------------------

@dataclass
class Shop:
    id: int
    api: str  # v2 | v3
    account: dict
    owner: dict
    product_id: int
    members: dict  # alice, bob -> member id
    link_token: str  # bob's share link: carol orders through it


def open_shop(stack: Stack, api: Api, people: dict, *, name: str, mode: str,
              sign_type: str = "MD5") -> Shop:
    """A merchant (created by the CLI) with a sandbox WeChat Pay account, an open program
    settling at receipt, a product, and alice ← bob ← carol joined through share links."""
    owner_username = f"owner-{name}"
    created = stack.flask_json("merchants", "create", "--name", name, "--owner-username",
                               owner_username, "--owner-password", OWNER_PASSWORD)
    login = api.call("POST", "/api/console/v1/auth/login",
                     json_body={"username": owner_username, "password": OWNER_PASSWORD})
    owner = {"Authorization": f"Bearer {login['token']}"}
    account = sandbox_merchant(stack.sandbox_url, mode, sign_type)
    api.call("PUT", "/api/console/v1/settings/payment", headers=owner,
             json_body=settings_body(account))
    api.call("PUT", "/api/console/v1/settings/distribution", headers=owner,
             json_body={"join_mode": "everyone", "freeze_days": 0})
    product = api.call("POST", "/api/console/v1/products", expect=201, headers=owner,
                       json_body={"title": "丑橘 5斤", "price_fen": PRICE_FEN, "stock": 10_000})
    base = f"/api/mp/v1/merchants/{created['merchant_id']}"
    members, link = {}, None
    for person in ("alice", "bob"):
        if link is not None:
            api.call("POST", "/api/mp/v1/share-visits", headers=people[person],
                     json_body={"share_token": link})
        joined = api.call("POST", f"{base}/distributor", headers=people[person],
                          json_body={"agreement_version": "v1"})
        members[person] = joined["member_id"]
        link = api.call("POST", f"{base}/share-links", expect=201, headers=people[person],
                        json_body={"product_id": product["id"]})["token"]
    visit = api.call("POST", "/api/mp/v1/share-visits", headers=people["carol"],
                     json_body={"share_token": link})
    assert visit["bound"] and visit["distributor_id"] == members["bob"]
    return Shop(id=created["merchant_id"], api="v2" if mode == "v2" else "v3", account=account,
                owner=owner, product_id=product["id"], members=members, link_token=link)


def place_orders(api: Api, shop: Shop, buyer: dict, count: int) -> list[dict]:
    """carol orders ``count`` times through bob's link (each order is prepaid at WeChat)."""
    placed = []
    for _ in range(count):
        order = api.call("POST", f"/api/mp/v1/merchants/{shop.id}/orders", expect=201,
                         headers=buyer, json_body={
                             "items": [{"product_id": shop.product_id, "quantity": 1}],
                             "address": ADDRESS, "share_token": shop.link_token})
        placed.append({"shop": shop, "id": order["id"], "out_trade_no": order["out_trade_no"]})
    return placed


# -- WeChat's side ----------------------------------------------------------------------------

def accepted(delivery: dict, api: str) -> bool:
    """WeChat's idea of success: v3 wants 200/204; v2 wants HTTP 200 with SUCCESS in its XML."""
    if delivery["error"] is not None:
        return False
    if api == "v2":
        return delivery["status"] == 200 and "<![CDATA[SUCCESS]]>" in delivery["body"]
    return delivery["status"] in (200, 204)


def retry_schedule(stack: Stack, notification_id: str) -> list[dict]:
    """WeChat's 15 retries of a notification whose delivery failed."""
    replay = control(stack.sandbox_url, "POST",
                     f"/sandbox/notifications/{notification_id}/resend",
                     {"retry_schedule": True})
    stack.tally["notifications_replayed"] += len(replay["deliveries"])
    return replay["deliveries"]


class PaymentStream:
    """WeChat paying orders on several threads: each payment is marked at the sandbox and its
    notification POSTed to our notify URL once (WeChat's first attempt); the test injects a
    fault between ``feed`` calls, when enough payments are done."""

    def __init__(self, stack: Stack, threads: int = 3, **pay_options):
        self.stack = stack
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.futures: list[tuple[dict, Future]] = []
        self.options = pay_options

    def feed(self, orders: list[dict]) -> None:
        for order in orders:
            self.futures.append((order, self.pool.submit(
                pay, self.stack.sandbox_url, order["shop"].account["mch_id"],
                order["out_trade_no"], **self.options)))

    def wait_done(self, count: int) -> None:
        wait_until(lambda: sum(future.done() for _, future in self.futures) >= count,
                   timeout=180, what=f"{count} payments of the stream")

    def finish(self) -> list[tuple[dict, dict]]:
        """(order, the sandbox's answer with its deliveries) for every payment fed."""
        self.pool.shutdown(wait=True)
        results = [(order, future.result()) for order, future in self.futures]
        for order, paid in results:
            self.stack.tally["notifications_sent"] += len(paid["deliveries"])
            self.stack.tally["deliveries_failed"] += sum(
                not accepted(d, order["shop"].api) for d in paid["deliveries"])
        return results


def interleave(*lists: list) -> list:
    return [item for group in zip(*lists, strict=True) for item in group]


def deliver_signed(stack: Stack, notification_id: str) -> dict:
    """One delivery of a notification, signed now by WeChat (the sandbox), POSTed by us to the
    served app: for notifications whose notify URL was one nobody answers."""
    path, headers, body = signed(stack.sandbox_url, notification_id)
    try:
        response = requests.post(stack.base_url + path, data=body, headers=headers, timeout=30)
    except requests.RequestException as exc:
        return {"status": None, "body": "", "error": f"{type(exc).__name__}: {exc}"}
    return {"status": response.status_code, "body": response.text[:500], "error": None}


# -- the checks every fault ends with -----------------------------------------------------------

def order_effects(stack: Stack, orders: list[dict]) -> dict[str, tuple]:
    """Per out_trade_no: (status, paid once?, accrual journals, commission rows)."""
    rows = stack.query("""
        SELECT o.out_trade_no, o.status, o.transaction_id IS NOT NULL AND o.paid_at IS NOT NULL,
          (SELECT count(*) FROM journals j WHERE j.merchant_id = o.merchant_id
             AND j.order_id = o.id AND j.kind = 'accrual'),
          (SELECT count(*) FROM commissions c WHERE c.merchant_id = o.merchant_id
             AND c.order_id = o.id)
        FROM orders o WHERE o.out_trade_no = ANY(%s)""",
                       ([order["out_trade_no"] for order in orders],))
    return {row[0]: tuple(row[1:]) for row in rows}


PAID_ONCE = ("paid", True, 1, 2)  # one accrual journal, tier 1 and tier 2 commission
UNPAID = ("created", False, 0, 0)


def half_written(stack: Stack) -> list[tuple]:
    """Rows a transaction cut in the middle would leave: a paid order without its accrual or
    commissions, an accrual or commission of an unpaid order, commissions that do not add up
    to their journal, a journal without its entries."""
    return stack.query("""
        SELECT 'paid order without one accrual', o.merchant_id, o.id FROM orders o
         WHERE o.transaction_id IS NOT NULL AND (SELECT count(*) FROM journals j
               WHERE j.merchant_id = o.merchant_id AND j.order_id = o.id
                 AND j.kind = 'accrual') <> 1
        UNION ALL
        SELECT 'paid order without paid_at', o.merchant_id, o.id FROM orders o
         WHERE (o.transaction_id IS NULL) <> (o.paid_at IS NULL)
        UNION ALL
        SELECT 'accrual of an unpaid order', j.merchant_id, j.order_id FROM journals j
          JOIN orders o ON o.merchant_id = j.merchant_id AND o.id = j.order_id
         WHERE j.kind = 'accrual' AND o.transaction_id IS NULL
        UNION ALL
        SELECT 'commission of an unpaid order', c.merchant_id, c.order_id FROM commissions c
          JOIN orders o ON o.merchant_id = c.merchant_id AND o.id = c.order_id
         WHERE o.transaction_id IS NULL
        UNION ALL
        SELECT 'commissions differ from their accrual', j.merchant_id, j.order_id
          FROM journals j
         WHERE j.kind = 'accrual' AND (SELECT COALESCE(sum(c.amount_fen), 0) FROM commissions c
               WHERE c.merchant_id = j.merchant_id AND c.order_id = j.order_id)
            <> (SELECT COALESCE(sum(e.amount_fen), 0) FROM ledger_entries e
                WHERE e.merchant_id = j.merchant_id AND e.journal_id = j.id
                  AND e.amount_fen > 0)
        UNION ALL
        SELECT 'journal without entries', j.merchant_id, j.id FROM journals j
         WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e
                           WHERE e.merchant_id = j.merchant_id AND e.journal_id = j.id)""")


def wallet_in_sql(stack: Stack, merchant_id: int, member_id: int) -> dict[str, int]:
    balances = dict.fromkeys(WALLET_KINDS, 0)
    balances.update(stack.query("SELECT kind, balance_fen FROM ledger_accounts "
                                "WHERE merchant_id = %s AND owner_id = %s",
                                (merchant_id, member_id)))
    return balances


def outbox_rows(stack: Stack) -> int:
    return stack.scalar("SELECT count(*) FROM wallet_outbox")


def mirror_differences(stack: Stack) -> list[tuple]:
    """Every wallet balance and ranking score where Redis does not show what SQL holds."""
    wallets: dict[tuple[int, int], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(WALLET_KINDS, 0))
    for merchant_id, member_id, kind, balance in stack.query(
            "SELECT merchant_id, owner_id, kind, balance_fen FROM ledger_accounts "
            "WHERE owner_id <> 0"):
        wallets[(merchant_id, member_id)][kind] = balance
    client = stack.redis_client()
    differences = []
    for (merchant_id, member_id), balances in sorted(wallets.items()):
        stored = client.hgetall(redis_keys.wallet(merchant_id, member_id))
        mirrored = {kind: int(stored[kind]) if kind in stored else None
                    for kind in WALLET_KINDS}
        if mirrored != balances:
            differences.append(("wallet", merchant_id, member_id, balances, mirrored))
    for merchant_id, period, member_id, commission, sales in stack.query(
            "SELECT merchant_id, period, member_id, commission_fen, sales_fen "
            "FROM period_totals"):
        for measure, value in (("commission", commission), ("sales", sales)):
            score = client.zscore(redis_keys.ranking(merchant_id, period, measure), member_id)
            if score is None or int(score) != value:
                differences.append((measure, merchant_id, member_id, period, value, score))
    return differences


def assert_converged(stack: Stack) -> dict:
    """The sweep job mirrors what is left; then `flask ledger verify` (its own process) finds
    the ledger sound, nothing is half-written and Redis shows exactly what SQL holds."""
    swept = stack.flask_json("jobs", "run", "sweep-wallet-outbox")
    assert swept["failed"] == 0, swept
    assert outbox_rows(stack) == 0
    verified = stack.flask("ledger", "verify")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    report = json.loads(verified.stdout.strip().splitlines()[-1])
    assert report["sound"] is True and report["accounts_checked"] > 0, report
    assert half_written(stack) == []
    assert mirror_differences(stack) == []
    return swept


def waiting_backends_by_worker(stack: Stack) -> dict[int, int]:
    """worker pid -> how many of its database connections wait on a row lock now."""
    ports = {row[0] for row in stack.query(
        "SELECT client_port FROM pg_stat_activity WHERE datname = %s "
        "AND wait_event_type = 'Lock'", (DATABASE,))}
    waiting: dict[int, int] = {}
    for pid in stack.worker_pids():
        with contextlib.suppress(psutil.Error):
            connections = psutil.Process(pid).net_connections(kind="tcp")
            count = sum(1 for c in connections if c.raddr and c.raddr.port == stack.pg.port
                        and c.laddr.port in ports)
            if count:
                waiting[pid] = count
    return waiting


def kill_process(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
