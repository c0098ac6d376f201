"""The load scenario's users, for Locust (``python -m tests.load`` starts it; see there).

- ``Buyer``: signs in with a sandbox code, browses the catalogue, opens a distributor's share
  link, orders through it, asks for the payment object again, has the sandbox pay (the sandbox
  then sends the signed APIv3 notification to our webhook, through gunicorn, before it answers)
  and reads the order back, which must be paid by then.
- ``Distributor``: one of the seeded tree; reads the wallet, membership (team counters), team
  and commissions; signs in again now and then.
- ``Staff``: owner, operator or finance; reads the dashboard, orders, distributors, rankings.

Every request is named ``<class>: <METHOD> <route>`` so the report can total each class. Options
added to Locust's: ``--seed-file`` (the shop the runner built), ``--max-requests`` (stop once
this many requests were recorded: core Locust only stops on time), ``--result-file`` (JSON
written as Locust quits), ``--staff-users`` (a fixed number of staff; the rest split 3:1
between buyers and distributors).
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

from locust import HttpUser, between, events, task
from locust.clients import LocustHttpAdapter

from tests.load.locust_run import GET_RETRY, RETRIED, Run
from tests.support.wechat import sandbox_code

SEED: dict = {}
MP = "/api/mp/v1"
CONSOLE = "/api/console/v1"
# A client that gave up early would turn a slow answer into an error; the report's p99 and max
# show slowness instead.
TIMEOUT_SECONDS = 60


@events.init_command_line_parser.add_listener
def _options(parser, **_kwargs) -> None:
    group = parser.add_argument_group("fenxiao load scenario")
    group.add_argument("--seed-file", required=True, help="the shop, as the runner wrote it")
    group.add_argument("--max-requests", type=int, default=0,
                       help="stop once this many requests were recorded (0: no bound)")
    group.add_argument("--result-file", default="", help="where to write the results (JSON)")
    group.add_argument("--staff-users", type=int, default=1, help="staff users (fixed count)")


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    options = environment.parsed_options
    SEED.update(json.loads(Path(options.seed_file).read_text()))
    Staff.fixed_count = options.staff_users
    Run(environment, max_requests=options.max_requests, result_file=options.result_file)


class _SignedIn(HttpUser):
    abstract = True
    label = ""
    token = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.client.mount("http://", LocustHttpAdapter(pool_manager=None, max_retries=GET_RETRY))

    def call(self, method: str, path: str, route: str, *, auth: bool = True, **kwargs):
        name = f"{self.label}: {method} {route}"
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        response = self.client.request(method, path, name=name, headers=headers,
                                       timeout=TIMEOUT_SECONDS, **kwargs)
        retries = getattr(response.raw, "retries", None)
        if retries is not None and retries.history:
            RETRIED[name] += len(retries.history)
        return response

    def json_of(self, method: str, path: str, route: str, *, expect: int = 200, **kwargs):
        """The body of an answer with status ``expect``; anything else is a failure."""
        with self.call(method, path, route, catch_response=True, **kwargs) as response:
            if response.status_code != expect:
                response.failure(f"{response.status_code} (expected {expect}): "
                                 f"{response.text[:200]}")
                return None
            return response.json() if response.content else {}


class _MiniProgramUser(_SignedIn):
    abstract = True
    key = ""

    def on_start(self) -> None:
        self.sign_in()

    def sign_in(self) -> None:
        # A failed sign-in keeps the token it had, as the app would: no 401s follow from it.
        session = self.json_of("POST", f"{MP}/auth/login", "/auth/login", auth=False,
                               json={"code": sandbox_code(self.key)})
        self.token = (session or {}).get("token", self.token)

    @property
    def shop(self) -> str:
        return f"{MP}/merchants/{SEED['merchant_id']}"


class Buyer(_MiniProgramUser):
    weight = 3
    label = "buyer"
    wait_time = between(0.1, 0.6)

    def on_start(self) -> None:
        # Every buyer arrives the same way, so even a short run sees each step at least once.
        self.key = f"load-buyer-{uuid.uuid4().hex[:12]}"
        super().on_start()
        self.browse()
        self.order_and_pay()

    @task(4)
    def browse(self) -> None:
        self.call("GET", f"{self.shop}/products", "/merchants/{id}/products")
        product_id = random.choice(SEED["product_ids"])
        self.call("GET", f"{self.shop}/products/{product_id}",
                     "/merchants/{id}/products/{id}")

    @task(2)
    def order_and_pay(self) -> None:
        token = random.choice(SEED["share_tokens"])
        self.call("POST", f"{MP}/share-visits", "/share-visits", json={"share_token": token})
        products = random.sample(SEED["product_ids"], k=random.randint(1, 2))
        order = self.json_of("POST", f"{self.shop}/orders", "/merchants/{id}/orders",
                             expect=201, json={
                                 "items": [{"product_id": p, "quantity": random.randint(1, 3)}
                                           for p in products],
                                 "address": SEED["address"], "share_token": token})
        if order is None:
            return
        path = f"{self.shop}/orders/{order['id']}"
        self.json_of("POST", f"{path}/payment", "/merchants/{id}/orders/{id}/payment")
        if self.pay(order["out_trade_no"]):
            self.read_paid(path)

    def pay(self, out_trade_no: str) -> bool:
        """The buyer pays in WeChat: the sandbox delivers the notification to our webhook and
        answers once our reply is in; anything but 204 from us is a failure here."""
        url = f"{SEED['sandbox_url']}/sandbox/pay/{SEED['mch_id']}/{out_trade_no}"
        with self.client.post(url, json={}, name="sandbox: POST /sandbox/pay (notifies us)",
                              timeout=TIMEOUT_SECONDS, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"sandbox answered {response.status_code}: "
                                 f"{response.text[:200]}")
                return False
            replies = [(d["status"], d["error"]) for d in response.json()["deliveries"]]
            if replies != [(204, None)]:
                response.failure(f"our webhook replied {replies}")
                return False
            return True

    def read_paid(self, path: str) -> None:
        # Our reply leaves after the commit: the order is paid by the time the sandbox answers.
        with self.call("GET", path, "/merchants/{id}/orders/{id}",
                          catch_response=True) as response:
            if response.status_code == 200 and response.json()["status"] != "paid":
                response.failure(f"order {response.json()['status']} after the notification")

    @task(1)
    def my_orders(self) -> None:
        self.call("GET", f"{self.shop}/orders", "/merchants/{id}/orders")

    @task(1)
    def sign_in_again(self) -> None:
        self.sign_in()


class Distributor(_MiniProgramUser):
    weight = 1
    label = "distributor"
    wait_time = between(0.1, 0.6)

    def on_start(self) -> None:
        self.key = random.choice(SEED["distributor_keys"])
        super().on_start()
        self.wallet()

    @task(4)
    def wallet(self) -> None:
        self.call("GET", f"{self.shop}/wallet", "/merchants/{id}/wallet")

    @task(2)
    def membership(self) -> None:
        self.call("GET", f"{self.shop}/distributor", "/merchants/{id}/distributor")

    @task(2)
    def team(self) -> None:
        self.call("GET", f"{self.shop}/team", "/merchants/{id}/team")

    @task(1)
    def commissions(self) -> None:
        self.call("GET", f"{self.shop}/commissions", "/merchants/{id}/commissions")

    @task(1)
    def sign_in_again(self) -> None:
        self.sign_in()


class Staff(_SignedIn):
    fixed_count = 1  # set from --staff-users
    label = "staff"
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.username = random.choice(SEED["staff"])
        self.sign_in()
        self.dashboard()

    def sign_in(self) -> None:
        session = self.json_of("POST", f"{CONSOLE}/auth/login", "/auth/login", auth=False,
                               json={"username": self.username, "password": SEED["password"]})
        self.token = (session or {}).get("token", self.token)

    @task(3)
    def dashboard(self) -> None:
        self.call("GET", f"{CONSOLE}/dashboard", "/dashboard")

    @task(3)
    def orders(self) -> None:
        self.call("GET", f"{CONSOLE}/orders?page={random.randint(1, 3)}", "/orders")

    @task(1)
    def distributors(self) -> None:
        self.call("GET", f"{CONSOLE}/distributors", "/distributors")

    @task(1)
    def rankings(self) -> None:
        by = random.choice(["sales", "commission"])
        self.call("GET", f"{CONSOLE}/stats/rankings?by={by}", "/stats/rankings")

    @task(1)
    def sign_in_again(self) -> None:
        # Passwords are argon2id: a sign-in costs far more CPU than a read, as in production.
        self.sign_in()
