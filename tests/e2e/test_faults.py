"""Faults injected into real processes while WeChat pays: Redis killed and restarted, a gunicorn
worker killed mid-notification, PostgreSQL restarted, and every kind of notification's whole
retry schedule replayed out of order. Each ends with `flask ledger verify` passing, nothing
half-written and the Redis mirror equal to SQL.

These tests own their PostgreSQL, Redis, sandbox and gunicorn (module-scoped), since they stop
and kill them. The counts of faults injected and notifications sent or replayed are printed at
the end of the module and written to ``fault-counts.json`` in its temporary folder.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.fault_support import (
    PAID_ONCE,
    PRICE_FEN,
    UNPAID,
    WORKERS,
    Api,
    PaymentStream,
    accepted,
    assert_converged,
    deliver_signed,
    half_written,
    interleave,
    kill_process,
    mirror_differences,
    open_shop,
    order_effects,
    outbox_rows,
    place_orders,
    retry_schedule,
    start_stack,
    start_unreachable_notify_gunicorn,
    waiting_backends_by_worker,
    wallet_in_sql,
)
from tests.support.servers import wait_until
from tests.support.wechatpay import complete_refund, control, pay

RETRY_STEPS = 15  # WeChat's schedule: 15 deliveries in 24 h 4 min (WECHAT.md)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    world = start_stack(tmp_path_factory.mktemp("faults"))
    yield world
    world.stop()
    counts = dict(sorted(world.tally.items()))
    (world.root / "fault-counts.json").write_text(json.dumps(counts, indent=2))
    # Past the output capture, so the counts show in every run's log (CI's included).
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin(
        "capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"fault tests: {json.dumps(counts)} ({world.root})")


@pytest.fixture(autouse=True)
def _servers_back_up(stack):
    """A test that fails halfway through its fault must not leave the next one without its
    database or Redis."""
    yield
    stack.heal()


@pytest.fixture(scope="module")
def people(stack) -> dict:
    api = Api(stack.base_url)
    return {name: api.sign_in(name) for name in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def shops(stack, people):
    """A v3 shop and a v2 shop, each with alice ← bob ← carol."""
    api = Api(stack.base_url)
    return (open_shop(stack, api, people, name="faults-v3", mode="v3_public_key"),
            open_shop(stack, api, people, name="faults-v2", mode="v2"))


def replay_failed(stack, results: list[tuple[dict, dict]]) -> int:
    """WeChat's retry schedule for every notification one of whose deliveries failed; every
    retry must be accepted. Returns how many notifications were retried."""
    retried = 0
    for order, paid in results:
        if all(accepted(d, order["shop"].api) for d in paid["deliveries"]):
            continue
        retried += 1
        deliveries = retry_schedule(stack, paid["notification_id"])
        assert len(deliveries) == RETRY_STEPS
        assert [accepted(d, order["shop"].api) for d in deliveries] == [True] * RETRY_STEPS, \
            deliveries
    return retried


def test_payments_while_redis_is_killed_and_restarted_are_all_accepted_and_the_sweep_converges(
        stack, shops, people):
    v3, v2 = shops
    api = Api(stack.base_url)
    around_the_outage = interleave(place_orders(api, v3, people["carol"], 6),
                                   place_orders(api, v2, people["carol"], 6))
    # After the restart only the v2 shop is paid: the v3 wallets the outage left behind can be
    # brought up to date by the outbox sweep alone, not by a later payment's fast path.
    after_the_restart = place_orders(api, v2, people["carol"], 6)
    stream = PaymentStream(stack)

    stream.feed(around_the_outage[:6])
    stream.wait_done(3)
    stack.redis_server.kill()
    stack.tally["faults_injected"] += 1
    stream.feed(around_the_outage[6:])  # paid wholly while Redis is down
    stream.wait_done(12)
    queued_while_down = outbox_rows(stack)
    stack.redis_server.start()  # same port, same append-only file
    stale_after_restart = mirror_differences(stack)
    stream.feed(after_the_restart)
    results = stream.finish()

    refused = [(order["out_trade_no"], d) for order, paid in results for d in paid["deliveries"]
               if not accepted(d, order["shop"].api)]
    assert refused == []  # Redis never decides whether a payment is recorded
    orders = around_the_outage + after_the_restart
    assert order_effects(stack, orders) == {o["out_trade_no"]: PAID_ONCE for o in orders}
    assert queued_while_down > 0
    assert v3.id in {difference[1] for difference in stale_after_restart}
    assert v3.id in {difference[1] for difference in mirror_differences(stack)}
    swept = assert_converged(stack)
    assert swept["mirrored"] > 0


def test_a_worker_killed_while_notifications_wait_leaves_every_order_paid_once_after_retries(
        stack, shops, people):
    v3, v2 = shops
    api = Api(stack.base_url)
    orders = interleave(place_orders(api, v3, people["carol"], 8),
                        place_orders(api, v2, people["carol"], 8))
    workers_before = stack.worker_pids()
    assert len(workers_before) == WORKERS

    # Holding the orders' row locks keeps the notifications inside apply_payment, so the
    # worker killed is one that is handling a notification, whatever the machine's speed.
    with stack.connect() as locker:
        locker.execute("SELECT id FROM orders WHERE out_trade_no = ANY(%s) FOR UPDATE",
                       ([o["out_trade_no"] for o in orders],))
        stream = PaymentStream(stack, threads=len(orders), copies=2, concurrent=True)
        stream.feed(orders)
        wait_until(lambda: sum(waiting_backends_by_worker(stack).values()) >= 8, timeout=60,
                   what="notifications waiting on the order rows")
        waiting = waiting_backends_by_worker(stack)
        victim = max(waiting, key=waiting.get)
        kill_process(victim)
        stack.tally["faults_injected"] += 1
        locker.rollback()
    results = stream.finish()

    unanswered = [d for order, paid in results for d in paid["deliveries"]
                  if not accepted(d, order["shop"].api)]
    assert len(unanswered) >= waiting[victim]  # the killed worker's requests got no reply
    assert all(d["error"] is not None or d["status"] >= 500 for d in unanswered)
    wait_until(lambda: len(stack.worker_pids()) == WORKERS and victim not in stack.worker_pids(),
               timeout=60, what="gunicorn replacing the killed worker")
    assert victim in workers_before
    assert half_written(stack) == []

    assert replay_failed(stack, results) >= 1
    assert order_effects(stack, orders) == {o["out_trade_no"]: PAID_ONCE for o in orders}
    assert_converged(stack)


def test_a_postgresql_restart_mid_stream_fails_requests_cleanly_and_retries_converge(
        stack, shops, people):
    v3, v2 = shops
    api = Api(stack.base_url)
    orders = interleave(place_orders(api, v3, people["carol"], 12),
                        place_orders(api, v2, people["carol"], 12))
    stream = PaymentStream(stack)

    stream.feed(orders[:8])
    stream.wait_done(3)
    stack.pg.pause()  # pg_ctl stop -m fast: open transactions are cut and rolled back
    stack.tally["faults_injected"] += 1
    stream.feed(orders[8:16])  # delivered wholly while PostgreSQL is down
    stream.wait_done(16)
    stack.pg.resume()  # same data folder, same port
    stream.feed(orders[16:])
    results = stream.finish()

    failed = [(order, d) for order, paid in results for d in paid["deliveries"]
              if not accepted(d, order["shop"].api)]
    assert len(failed) >= 8
    # A clean failure: an HTTP 5xx from the app, which WeChat retries (not a dropped request).
    assert [(d["error"], d["status"] >= 500) for _, d in failed] == [(None, True)] * len(failed)
    effects = order_effects(stack, orders)
    for order, paid in results:
        if all(accepted(d, order["shop"].api) for d in paid["deliveries"]):
            # The success reply goes out after the commit: an accepted payment is recorded.
            assert effects[order["out_trade_no"]] == PAID_ONCE
        else:
            assert effects[order["out_trade_no"]] in (PAID_ONCE, UNPAID)
    assert half_written(stack) == []

    assert replay_failed(stack, results) >= 8
    assert order_effects(stack, orders) == {o["out_trade_no"]: PAID_ONCE for o in orders}
    assert_converged(stack)


@pytest.fixture
def unreachable_api(stack):
    process, base_url = start_unreachable_notify_gunicorn(stack)
    yield Api(base_url)
    process.stop()


def paid_in_order(stack, order: dict) -> None:
    """WeChat could not reach the notify URL; its next attempt, delivered now, is applied."""
    paid = pay(stack.sandbox_url, order["shop"].account["mch_id"], order["out_trade_no"])
    assert paid["deliveries"][0]["error"] is not None
    assert accepted(deliver_signed(stack, paid["notification_id"]), order["shop"].api)
    stack.tally.update(notifications_sent=1, deliveries_failed=1, notifications_replayed=1)


def refund_state(stack, order: dict) -> tuple:
    """(order status, refunded fen, refund status, reversal journals, processed refunds)."""
    return tuple(stack.query("""
        SELECT o.status, o.refunded_fen, r.status,
          (SELECT count(*) FROM journals j WHERE j.merchant_id = o.merchant_id
             AND j.order_id = o.id AND j.kind = 'reversal'),
          (SELECT count(*) FROM processed_refunds p WHERE p.merchant_id = o.merchant_id
             AND p.order_id = o.id)
        FROM orders o JOIN refunds r ON r.merchant_id = o.merchant_id AND r.order_id = o.id
        WHERE o.out_trade_no = %s""", (order["out_trade_no"],))[0])


def withdrawal_state(stack, shop, withdrawal_id: int) -> tuple:
    """(status, payout journals, withdrawal-return journals)."""
    return tuple(stack.query("""
        SELECT w.status,
          (SELECT count(*) FROM journals j WHERE j.merchant_id = w.merchant_id
             AND j.idempotency_key = 'payout:' || w.id),
          (SELECT count(*) FROM journals j WHERE j.merchant_id = w.merchant_id
             AND j.idempotency_key = 'withdrawal-return:' || w.id)
        FROM withdrawals w WHERE w.merchant_id = %s AND w.id = %s""",
                                 (shop.id, withdrawal_id))[0])


def approved_withdrawal(api, shop, bob: dict, amount_fen: int) -> int:
    """bob asks to withdraw and the owner approves: WeChat's transfer bill is created."""
    asked = api.call("POST", f"/api/mp/v1/merchants/{shop.id}/withdrawals", expect=201,
                     headers=bob, json_body={"amount_fen": amount_fen})
    approved = api.call("POST", f"/api/console/v1/withdrawals/{asked['id']}/approve",
                        headers=shop.owner)
    assert approved["status"] == "transferring"
    return asked["id"]


def test_every_notification_kinds_whole_retry_schedule_replayed_out_of_order_acts_once(
        stack, shops, people, unreachable_api):
    v3, v2 = shops
    carol, dark = people["carol"], unreachable_api

    def one_order(shop) -> dict:
        return place_orders(dark, shop, carol, 1)[0]

    orders = {"v3 payment": one_order(v3), "v2 payment": one_order(v2)}
    refunded = {"v3 REFUND.SUCCESS": (v3, "SUCCESS"), "v3 REFUND.ABNORMAL": (v3, "ABNORMAL"),
                "v3 REFUND.CLOSED": (v3, "CLOSED"), "v2 refund SUCCESS": (v2, "SUCCESS"),
                "v2 refund ABNORMAL": (v2, "ABNORMAL"), "v2 refund CLOSED": (v2, "CLOSED")}
    for kind, (shop, _) in refunded.items():
        orders[kind] = one_order(shop)
        paid_in_order(stack, orders[kind])
    earning = one_order(v3)
    paid_in_order(stack, earning)

    # bob's commission on ``earning`` (1,000 fen) becomes available; he withdraws twice.
    dark.call("POST", f"/api/console/v1/orders/{earning['id']}/shipment", headers=v3.owner,
              json_body={"carrier": "顺丰", "tracking_no": "SF1234567890"})
    dark.call("POST", f"/api/mp/v1/merchants/{v3.id}/orders/{earning['id']}/receipt",
              headers=carol)
    assert stack.flask_json("jobs", "run", "settle-commissions")["settled"] >= 2
    transfers = {"v3 MCHTRANSFER.BILL.FINISHED SUCCESS": ("confirm", 600),
                 "v3 MCHTRANSFER.BILL.FINISHED FAIL": ("reject", 300)}
    withdrawals = {kind: approved_withdrawal(dark, v3, people["bob"], amount)
                   for kind, (_, amount) in transfers.items()}
    bob_before = wallet_in_sql(stack, v3.id, v3.members["bob"])

    # WeChat finishes everything; each first attempt finds nobody at the notify URL.
    notes = {}
    for kind, (action, _) in transfers.items():
        notes[kind] = (v3, control(stack.sandbox_url, "POST",
                                   f"/sandbox/transfers/{v3.account['mch_id']}/"
                                   f"W{v3.id}N{withdrawals[kind]:08d}/{action}"))
    for kind, (shop, status) in refunded.items():
        refund = dark.call("POST", f"/api/console/v1/orders/{orders[kind]['id']}/refunds",
                           expect=201, headers=shop.owner, json_body={"reason": "缺货"})
        notes[kind] = (shop, complete_refund(stack.sandbox_url, shop.account["mch_id"],
                                             refund["out_refund_no"], status))
    for kind in ("v3 payment", "v2 payment"):
        order = orders[kind]
        notes[kind] = (order["shop"], pay(stack.sandbox_url, order["shop"].account["mch_id"],
                                          order["out_trade_no"]))
    for _, first in notes.values():
        assert [d["error"] is not None for d in first["deliveries"]] == [True]
    stack.tally["notifications_sent"] += len(notes)
    stack.tally["deliveries_failed"] += len(notes)

    copies = [kind for kind in notes for _ in range(RETRY_STEPS)]
    random.Random(20_240_611).shuffle(copies)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(
            lambda kind: (kind, deliver_signed(stack, notes[kind][1]["notification_id"])),
            copies))
    stack.tally["notifications_replayed"] += len(replies)

    assert len(replies) == RETRY_STEPS * len(notes) == RETRY_STEPS * 10
    refused = [(kind, reply) for kind, reply in replies if not accepted(reply, notes[kind][0].api)]
    assert refused == []
    payments = [orders["v3 payment"], orders["v2 payment"]]
    assert order_effects(stack, payments) == {o["out_trade_no"]: PAID_ONCE for o in payments}
    # (order status, refunded fen, refund status, reversal journals, processed refunds)
    for kind in ("v3 REFUND.SUCCESS", "v2 refund SUCCESS"):
        assert refund_state(stack, orders[kind]) == ("refunded", PRICE_FEN, "succeeded", 1, 1)
    for kind in ("v3 REFUND.ABNORMAL", "v2 refund ABNORMAL"):
        assert refund_state(stack, orders[kind]) == ("refunding", 0, "abnormal", 0, 0)
    for kind in ("v3 REFUND.CLOSED", "v2 refund CLOSED"):
        assert refund_state(stack, orders[kind]) == ("paid", 0, "closed", 0, 0)
    # (status, payout journals, withdrawal-return journals)
    assert withdrawal_state(stack, v3, withdrawals["v3 MCHTRANSFER.BILL.FINISHED SUCCESS"]) \
        == ("paid_out", 1, 0)
    assert withdrawal_state(stack, v3, withdrawals["v3 MCHTRANSFER.BILL.FINISHED FAIL"]) \
        == ("failed", 0, 1)
    assert wallet_in_sql(stack, v3.id, v3.members["bob"]) == {
        **bob_before, "withdrawing": bob_before["withdrawing"] - 900,
        "paid_out": bob_before["paid_out"] + 600, "available": bob_before["available"] + 300}
    assert_converged(stack)
