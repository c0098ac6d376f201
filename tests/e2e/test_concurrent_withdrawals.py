"""Withdrawal requests racing through gunicorn (4 workers, real HTTP, PostgreSQL): 20 requests
for the whole balance, then one Idempotency-Key sent 20 times at once and reused with another
body. `flask --app wsgi ledger verify`, run as its own process on the served database, must
find the ledger sound after each race.

The merchant keeps ``withdraw_auto_approve_below_fen`` at 0 (the default), so every request
stays "requested" and no WeChat transfer is involved: only the request's own locking is tested.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import IdempotencyRecord, Journal, User, Withdrawal
from app.services import ledger
from tests.factories import make_member, make_merchant
from tests.integration.test_withdrawal_concurrency import EARNED_FEN, earn
from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.wechat import sandbox_code

REQUESTS = 20


def signed_in_earner(base_url: str) -> dict:
    """A distributor signed in through the sandbox, with EARNED_FEN available from an order of
    their downline that was paid, received and settled."""
    shop = make_merchant()
    login = requests.post(f"{base_url}/api/mp/v1/auth/login",
                          json={"code": sandbox_code("withdrawer")}, timeout=10)
    assert login.status_code == 200, login.text
    user = db.session.get(User, login.json()["user"]["id"])
    distributor = make_member(shop, user=user)
    buyer = make_member(shop, upline=distributor)
    earn(distributor, buyer)
    earner = {"merchant_id": shop.id, "member_id": distributor.id, "buyer": buyer,
              "distributor": distributor,
              "headers": {"Authorization": f"Bearer {login.json()['token']}"}}
    assert balances(earner) == (EARNED_FEN, 0)
    return earner


def post_together(base_url: str, earner: dict, amount_fen: int, key: str | None = None
                  ) -> list[tuple[int, dict]]:
    """REQUESTS withdrawal requests released at once from a barrier: (status, body) each."""
    headers = {**earner["headers"], **({"Idempotency-Key": key} if key else {})}
    url = f"{base_url}/api/mp/v1/merchants/{earner['merchant_id']}/withdrawals"
    barrier = threading.Barrier(REQUESTS)
    answers: list[tuple[int, dict]] = []
    failures: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=60)
            response = requests.post(url, json={"amount_fen": amount_fen}, headers=headers,
                                     timeout=60)
            answers.append((response.status_code, response.json()))
        except BaseException as error:  # noqa: BLE001 — reported by the test
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=send) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert [repr(f) for f in failures] == []
    return answers


def balances(earner: dict) -> tuple[int, int]:
    db.session.expire_all()
    wallet = ledger.wallet_balances(earner["merchant_id"], earner["member_id"])
    return wallet["available"], wallet["withdrawing"]


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def assert_ledger_verifies(served_env: dict) -> None:
    """`flask --app wsgi ledger verify` in the environment gunicorn serves with: exit 0 and a
    report with no problem in it."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "ledger", "verify"],
                          cwd=PROJECT_ROOT, env=child_env(**served_env), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["sound"] is True
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])
    assert report["accounts_checked"] > 0  # it looked at the accounts these tests wrote


def test_twenty_requests_for_the_whole_balance_get_one_201_and_nineteen_422(
        served_app, served_env, app_context):
    base_url, _ = served_app
    earner = signed_in_earner(base_url)

    answers = post_together(base_url, earner, EARNED_FEN)

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [422] * (REQUESTS - 1), answers
    [granted] = [body for status, body in answers if status == 201]
    assert (granted["amount_fen"], granted["status"]) == (EARNED_FEN, "requested")
    assert [body["code"] for status, body in answers if status == 422] \
        == ["insufficient_balance"] * (REQUESTS - 1)
    assert balances(earner) == (0, EARNED_FEN)
    assert count(Withdrawal) == 1 and count(Journal, Journal.kind == "withdrawal") == 1
    assert_ledger_verifies(served_env)


def test_one_key_sent_twenty_times_gets_one_withdrawal_and_another_body_gets_409(
        served_app, served_env, app_context):
    base_url, _ = served_app
    earner = signed_in_earner(base_url)
    url = f"{base_url}/api/mp/v1/merchants/{earner['merchant_id']}/withdrawals"
    first = requests.post(url, json={"amount_fen": EARNED_FEN}, headers=earner["headers"],
                          timeout=30)
    assert first.status_code == 201, first.text
    earn(earner["distributor"], earner["buyer"])  # topped up: EARNED_FEN available again
    assert balances(earner) == (EARNED_FEN, EARNED_FEN)

    answers = post_together(base_url, earner, EARNED_FEN, key="withdraw-all-once")

    assert [status for status, _ in answers] == [201] * REQUESTS, answers
    bodies = [body for _, body in answers]
    assert all(body == bodies[0] for body in bodies)  # the same answer, word for word
    assert bodies[0]["id"] != first.json()["id"] and bodies[0]["status"] == "requested"
    assert balances(earner) == (0, 2 * EARNED_FEN)
    assert count(Withdrawal) == 2 and count(IdempotencyRecord) == 1
    assert count(Journal, Journal.kind == "withdrawal") == 2
    assert_ledger_verifies(served_env)

    reused = requests.post(url, json={"amount_fen": EARNED_FEN - 1},
                           headers={**earner["headers"], "Idempotency-Key": "withdraw-all-once"},
                           timeout=30)

    assert reused.status_code == 409, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    assert count(Withdrawal) == 2 and balances(earner) == (0, 2 * EARNED_FEN)
    assert_ledger_verifies(served_env)
