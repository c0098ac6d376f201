"""Limits (issue 10): request body size, page sizes, the PostgreSQL statement timeout and the
rate limits on share visits and withdrawal requests. Each limit answers in the one error shape
and the request it refuses changes nothing."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import Export, IdempotencyRecord, Product, Visit, Withdrawal
from app.services import ledger
from tests.api.test_wechatpay_notifications import place_order, state
from tests.factories import make_member, make_share_link
from tests.integration.test_withdrawal_concurrency import EARNED_FEN, earn
from tests.support.wechatpay import pay, signed

MIB = 1024 * 1024
VISITS = "/api/mp/v1/share-visits"


def count(model, *where) -> int:
    db.session.expire_all()
    found = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.rollback()
    return found


def assert_error(response, status: int, code: str) -> dict:
    """The one error shape, with ``code``."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == code, body
    return body


def padded_json(size: int, **fields) -> bytes:
    """A JSON object of exactly ``size`` bytes: ``fields`` and a ``padding`` string."""
    import json

    head = json.dumps({**fields, "padding": ""})[:-2]  # up to the padding's opening quote
    return (head + "x" * (size - len(head) - 2) + '"}').encode()


# -- request body size ------------------------------------------------------------------------


def test_a_mini_program_body_over_one_mib_is_413_and_records_no_visit(client, shop,
                                                                      auth_headers):
    token = make_share_link(make_member(shop)).token
    headers = auth_headers("big-body")

    too_big = client.post(VISITS, data=padded_json(MIB + 1, share_token=token),
                          content_type="application/json", headers=headers)

    assert_error(too_big, 413, "payload_too_large")
    assert count(Visit) == 0
    # One byte less is read, and refused for what it says (the padding is no field of ours).
    at_limit = client.post(VISITS, data=padded_json(MIB, share_token=token),
                           content_type="application/json", headers=headers)
    assert assert_error(at_limit, 422, "invalid_input")["errors"].keys() == {"padding"}
    assert count(Visit) == 0


def test_a_console_body_over_the_limit_is_413_and_creates_no_product(client, shop,
                                                                     staff_headers):
    response = client.post("/api/console/v1/products", headers=staff_headers(),
                           data=padded_json(MIB + 1, title="丑橘", price_fen=100, stock=1),
                           content_type="application/json")

    assert_error(response, 413, "payload_too_large")
    assert count(Product) == 0


def test_a_wechat_notification_over_the_limit_is_413_and_pays_nothing(
        client, shop, chain, pay_account, add_product, sandbox_url):
    account = pay_account()
    order = place_order(client, shop, chain, add_product())
    path, headers, body = signed(sandbox_url, pay(sandbox_url, account["mch_id"],
                                                  order["out_trade_no"])["notification_id"])
    before = state(client, shop, chain, order)

    # Trailing whitespace keeps the JSON valid; the webhook never gets to read it.
    response = client.post(path, data=body + b" " * MIB, headers=headers)

    assert_error(response, 413, "payload_too_large")
    assert state(client, shop, chain, order) == before
    assert client.post(path, data=body, headers=headers).status_code == 204
    assert state(client, shop, chain, order)["status"] == "paid"


def test_the_body_limit_comes_from_the_setting(make_app, shop, auth_headers):
    headers = auth_headers("small-limit")
    client = make_app(max_content_length=1024).test_client()
    response = client.post(VISITS, data=padded_json(1025, share_token="x"),
                           content_type="application/json", headers=headers)
    assert_error(response, 413, "payload_too_large")


# -- page sizes -------------------------------------------------------------------------------


@pytest.fixture
def every_list_route(app, client, shop, chain, staff_headers):
    """(method, URL, headers) of every operation in the OpenAPI document that takes
    ``per_page``, with real ids in its path, signed in as the audience it serves."""
    from app.services.staff import create_admin

    create_admin(username="admin1", password="pw-12345")
    admin = client.post("/api/admin/v1/auth/login",
                        json={"username": "admin1", "password": "pw-12345"}).get_json()
    audiences = {"/api/mp/": chain["alice"]["headers"], "/api/console/": staff_headers(),
                 "/api/admin/": {"Authorization": f"Bearer {admin['token']}"}}
    ids = {"merchant_id": shop.id, "member_id": chain["alice"]["member"].id}
    routes = []
    for path, operations in client.get("/api/openapi.json").get_json()["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's own (path) parameters
                continue
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            if "per_page" in names:
                audience = next(v for k, v in audiences.items() if path.startswith(k))
                routes.append((method.upper(), path.format(**ids), audience))
    return routes


def page_in(body) -> dict:
    """The page of a list answer: the body, or the one field holding a page (a member's view
    carries a page of its direct members)."""
    if not isinstance(body, dict) or "items" in body:
        return body or {}
    return next((v for v in body.values() if isinstance(v, dict) and "items" in v), {})


def test_every_list_route_caps_per_page_at_one_hundred(client, every_list_route):
    assert len(every_list_route) >= 20  # the document lists them; an empty list proves nothing
    wrong = {}
    for method, url, headers in every_list_route:
        over = client.open(url, method=method, query_string={"per_page": 101}, headers=headers)
        at_cap = client.open(url, method=method, query_string={"per_page": 100},
                             headers=headers)
        over_body = over.get_json() or {}
        if (over.status_code, over_body.get("code"), "per_page" in over_body.get("errors", {}),
                at_cap.status_code, page_in(at_cap.get_json()).get("per_page")) \
                != (422, "invalid_input", True, 200, 100):
            wrong[url] = (over.status_code, over_body, at_cap.status_code)
    assert wrong == {}


OUT_OF_BOUNDS = [({"per_page": 0}, "per_page"), ({"page": 0}, "page"),
                 ({"page": 100_001}, "page"), ({"page": "two"}, "page")]


def test_every_list_route_refuses_pages_out_of_bounds(client, every_list_route):
    wrong = {}
    for method, url, headers in every_list_route:
        for query, field in OUT_OF_BOUNDS:
            response = client.open(url, method=method, query_string=query, headers=headers)
            body = response.get_json() or {}
            if (response.status_code, field in body.get("errors", {})) != (422, True):
                wrong[(url, str(query))] = (response.status_code, body)
    assert wrong == {}


def test_the_last_allowed_page_is_an_empty_page_not_an_error(client, every_list_route):
    wrong = {}
    for method, url, headers in every_list_route:
        response = client.open(url, method=method, query_string={"page": 100_000},
                               headers=headers)
        body = page_in(response.get_json())
        if (response.status_code, body.get("items"), body.get("page")) != (200, [], 100_000):
            wrong[url] = (response.status_code, body)
    assert wrong == {}


# -- share visits -----------------------------------------------------------------------------


def test_share_visits_past_the_per_user_limit_are_429_and_record_nothing(make_app, shop,
                                                                        auth_headers):
    tokens = [make_share_link(make_member(shop)).token for _ in range(3)]
    visitor, other = auth_headers("eager-visitor"), auth_headers("calm-visitor")
    client = make_app(share_visit_rate_limit_user="2/minute").test_client()

    answers = [client.post(VISITS, json={"share_token": t}, headers=visitor) for t in tokens]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert_error(answers[2], 429, "rate_limited")
    assert int(answers[2].headers["Retry-After"]) > 0
    assert count(Visit) == 2
    # Another user from the same address is still served.
    assert client.post(VISITS, json={"share_token": tokens[2]}, headers=other).status_code == 200
    assert count(Visit) == 3


def test_share_visits_past_the_per_ip_limit_are_429_for_every_user_there(make_app, shop,
                                                                        auth_headers):
    token = make_share_link(make_member(shop)).token
    people = [auth_headers(f"neighbour-{n}") for n in range(3)]
    client = make_app(share_visit_rate_limit_ip="2/minute").test_client()

    statuses = [client.post(VISITS, json={"share_token": token}, headers=h).status_code
                for h in people]

    assert statuses == [200, 200, 429]
    assert count(Visit) == 2
    elsewhere = client.post(VISITS, json={"share_token": token}, headers=people[2],
                            environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 200


def test_landing_page_openings_past_the_per_ip_limit_are_429_and_not_counted(make_app, shop):
    token = make_share_link(make_member(shop)).token
    client = make_app(share_visit_rate_limit_ip="2/minute").test_client()

    answers = [client.get(f"/s/{token}") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert_error(answers[2], 429, "rate_limited")
    assert "Retry-After" in answers[2].headers
    assert count(Visit) == 2


# -- withdrawal requests ----------------------------------------------------------------------


@pytest.fixture
def earner(app_context, login):
    """A distributor signed in through the sandbox with EARNED_FEN available (real postings),
    and a member of the same shop with nothing to withdraw."""
    from app.models import User
    from tests.factories import make_merchant

    shop = make_merchant()
    session, broke = login("earner"), login("broke")
    distributor = make_member(shop, user=db.session.get(User, session["user"]["id"]))
    make_member(shop, user=db.session.get(User, broke["user"]["id"]))
    earn(distributor, make_member(shop, upline=distributor))
    return {"shop": shop, "member": distributor,
            "url": f"/api/mp/v1/merchants/{shop.id}/withdrawals",
            "headers": {"Authorization": f"Bearer {session['token']}"},
            "broke": {"Authorization": f"Bearer {broke['token']}"}}


def wallet_of(earner) -> dict:
    db.session.expire_all()
    balances = ledger.wallet_balances(earner["shop"].id, earner["member"].id)
    db.session.rollback()
    return {"available": balances["available"], "withdrawing": balances["withdrawing"]}


def test_withdrawal_requests_past_the_per_member_limit_are_429_and_move_no_money(make_app,
                                                                               earner):
    client = make_app(withdrawal_rate_limit_member="2/minute").test_client()

    answers = [client.post(earner["url"], json={"amount_fen": 100},
                           headers={**earner["headers"], "Idempotency-Key": f"w-{n}"})
               for n in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert_error(answers[2], 429, "rate_limited")
    assert int(answers[2].headers["Retry-After"]) > 0
    assert count(Withdrawal) == 2 and count(IdempotencyRecord) == 2
    assert wallet_of(earner) == {"available": EARNED_FEN - 200, "withdrawing": 200}
    # Another member is counted apart: refused for its balance, not for the limit.
    other = client.post(earner["url"], json={"amount_fen": 100}, headers=earner["broke"])
    assert assert_error(other, 422, "insufficient_balance")


# -- the statement timeout (PostgreSQL) -------------------------------------------------------


def test_requests_run_with_the_request_timeout_and_other_work_with_the_job_timeout(make_app):
    app = make_app(db_statement_timeout_ms=1234, db_job_statement_timeout_ms=0)
    # One connection serves both, in turns: each checkout sets what its work needs.
    with app.app_context():
        assert db.session.scalar(text("SHOW statement_timeout")) == "0"
        db.session.remove()
        with app.test_request_context("/"):
            assert db.session.scalar(text("SHOW statement_timeout")) == "1234ms"
            db.session.remove()
        assert db.session.scalar(text("SHOW statement_timeout")) == "0"
        db.session.remove()


def hold_lock(sql: str, params: dict | None = None):
    """A connection of its own that holds the lock ``sql`` takes until closed (rolled back).

    Should the timeout under test not fire, the request would wait on this lock for ever in
    the test's own thread: PostgreSQL ends this transaction after 10 s idle instead, so the
    test fails rather than hangs.
    """
    connection = db.engine.connect()
    connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = '10s'"))
    connection.execute(text(sql), params or {})
    return connection


def release(connection) -> None:
    with contextlib.suppress(DBAPIError):  # already ended by the server (see hold_lock)
        connection.close()


def test_a_request_past_the_statement_timeout_is_503_and_writes_nothing(make_app, earner):
    client = make_app(db_statement_timeout_ms=200).test_client()
    headers = {**earner["headers"], "Idempotency-Key": "slow-1"}
    # The request claims its Idempotency-Key, then waits for the member's row lock.
    locker = hold_lock("SELECT 1 FROM members WHERE merchant_id = :m AND id = :i FOR UPDATE",
                       {"m": earner["shop"].id, "i": earner["member"].id})
    try:
        response = client.post(earner["url"], json={"amount_fen": 500}, headers=headers)
    finally:
        release(locker)

    assert_error(response, 503, "query_timeout")
    assert int(response.headers["Retry-After"]) > 0
    assert count(Withdrawal) == 0 and count(IdempotencyRecord) == 0
    assert wallet_of(earner) == {"available": EARNED_FEN, "withdrawing": 0}
    # Nothing was half-written: the same key goes through once the row is free.
    retried = client.post(earner["url"], json={"amount_fen": 500}, headers=headers)
    assert retried.status_code == 201, retried.get_json()
    assert wallet_of(earner) == {"available": EARNED_FEN - 500, "withdrawing": 500}


def hold_until_waited_on(app, locked: threading.Event, sql: str, hold_seconds: float):
    """In a thread: take the lock ``sql`` takes, and let go ``hold_seconds`` after another
    session of this database has started waiting on a lock (that is, on this one)."""
    def run():
        with app.app_context():
            connection = hold_lock(sql)
            locked.set()
            waiters = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                           "'Lock' AND datname = current_database()")
            deadline = time.monotonic() + 60
            while connection.execute(waiters).scalar() == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(hold_seconds)
            release(connection)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_export_job_is_not_cut_off_by_the_request_timeout(make_app, app, shop,
                                                               staff_headers):
    from app.database import utcnow
    from app.services import exports

    limited = make_app(db_statement_timeout_ms=50)
    lock_orders = "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"
    # A request of this app that meets a lock on the orders is cut off at 50 ms ...
    locker = hold_lock(lock_orders)
    try:
        listed = limited.test_client().get("/api/console/v1/orders", headers=staff_headers())
    finally:
        release(locker)
    assert_error(listed, 503, "query_timeout")
    export = exports.create_export(merchant_id=shop.id, staff_id=None, kind="orders",
                                   fmt="csv", now=utcnow())
    db.session.rollback()

    # ... while its export job, outside any request, waits for the same lock ten times as long.
    locked = threading.Event()
    holder = hold_until_waited_on(app, locked, lock_orders, hold_seconds=0.5)
    try:
        assert locked.wait(timeout=30)
        with limited.app_context():
            outcome = exports.run_queued()
            db.session.remove()
    finally:
        holder.join(timeout=90)

    assert outcome == {"exported": 1, "failed": 0}
    db.session.expire_all()
    assert db.session.get(Export, (shop.id, export.id)).status == "done"


def test_sqlite_ignores_the_statement_timeout(make_app, tmp_path):
    app = make_app(database_url=f"sqlite:///{tmp_path / 'demo.db'}",
                   db_statement_timeout_ms=1, instance_dir=tmp_path)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == "ok"
