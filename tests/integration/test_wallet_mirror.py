"""The Redis mirror of wallets and rankings: written after the SQL commit through the outbox,
versioned so that it never rolls back, repaired by the sweeper, rebuilt from SQL, and never
needed for a read (DOMAIN.md, Commission lifecycle and the ledger; ARCHITECTURE.md, 9).

Real redis-server processes throughout: the shared one, and throwaway ones for outages.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta

import pytest
from redis.crc import key_slot
from sqlalchemy import func, select

from app.database import transaction, utcnow
from app.domain import ledger as rules
from app.extensions import db, redis
from app.integrations import redis_keys, wallet_mirror
from app.models import Commission, LedgerAccount, Order, PeriodTotal, WalletOutbox
from app.services import commissions, ledger, wallets
from tests.factories import make_member, make_merchant, make_order, make_user, pay_order
from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.servers import RedisServer, free_port

pytestmark = pytest.mark.redis_topologies

# --- helpers ----------------------------------------------------------------------------------


def chain(shop):
    grandparent = make_member(shop)
    parent = make_member(shop, upline=grandparent)
    return grandparent, parent, make_member(shop, upline=parent, status="none")


def accrue(merchant_id: int, member_id: int, amount_fen: int, key: str) -> None:
    with transaction(db.session):
        ledger.post(merchant_id=merchant_id, idempotency_key=key, kind="accrual",
                    entries=rules.accrual(member_id=member_id, amount_fen=amount_fen))


def outbox_members(merchant_id: int | None = None) -> list[int]:
    query = select(WalletOutbox.member_id).order_by(WalletOutbox.id)
    if merchant_id is not None:
        query = query.where(WalletOutbox.merchant_id == merchant_id)
    members = db.session.scalars(query).all()
    db.session.commit()
    return members


def sql_wallets(merchant_id: int) -> dict[int, dict[str, int]]:
    owners = db.session.scalars(select(LedgerAccount.owner_id).distinct().where(
        LedgerAccount.merchant_id == merchant_id, LedgerAccount.owner_id != 0)).all()
    return {owner: ledger.wallet_balances(merchant_id, owner) for owner in owners}


def sql_rankings(merchant_id: int) -> dict[tuple[str, str], dict[int, int]]:
    rankings: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for period, member, commission, sales in db.session.execute(select(
            PeriodTotal.period, PeriodTotal.member_id, PeriodTotal.commission_fen,
            PeriodTotal.sales_fen).where(PeriodTotal.merchant_id == merchant_id)):
        rankings[(period, "commission")][member] = commission
        rankings[(period, "sales")][member] = sales
    return dict(rankings)


def assert_redis_equals_sql(client, merchant_id: int) -> None:
    wallets_now = sql_wallets(merchant_id)
    assert wallets_now, "nothing to compare"
    for member_id, balances in wallets_now.items():
        assert wallet_mirror.read_wallet(client, merchant_id, member_id) == balances
    for (period, measure), expected in sql_rankings(merchant_id).items():
        assert dict(wallet_mirror.top(client, merchant_id, period, measure, 1_000)) == expected


def mirror_dump(client, merchant_id: int | None = None) -> dict[str, object]:
    """Every mirrored key of the merchant (or all) with its whole content."""
    found: dict[str, object] = {}
    for pattern in redis_keys.mirror_patterns(merchant_id):
        for key in client.scan_iter(match=pattern):
            kind = client.type(key)
            if kind == "hash":
                found[key] = client.hgetall(key)
            elif kind == "string":  # the completeness mark
                found[key] = client.get(key)
            else:
                found[key] = client.zrange(key, 0, -1, withscores=True)
    return found


def state(merchant_id: int, member_id: int, version: int, fen: int,
          period_totals: dict[str, tuple[int, int]] | None = None):
    return wallet_mirror.WalletState(
        merchant_id=merchant_id, member_id=member_id, version=version,
        balances={"pending": fen, "available": fen + 1, "withdrawing": fen + 2,
                  "paid_out": fen + 3},
        period_totals=period_totals or {})


@pytest.fixture
def shop(app_context):
    return make_merchant()


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, which it may stop and start."""
    server = RedisServer().start()
    yield server
    server.stop()


# --- the Lua mirror ---------------------------------------------------------------------------


def test_a_mirror_write_never_rolls_back_to_an_older_version(app_context):
    client = redis.client
    wallet_mirror.mark_complete(client, [7])  # merchant 7 exists only in Redis here
    assert wallet_mirror.write(client, state(7, 1, 50, 1_000, {"2026-01": (900, 9_000)}))
    before = mirror_dump(client, 7)
    assert wallet_mirror.write(client, state(7, 1, 49, 5, {"2026-01": (1, 1)})) is False
    assert mirror_dump(client, 7) == before
    assert wallet_mirror.read_wallet(client, 7, 1) == {
        "pending": 1_000, "available": 1_001, "withdrawing": 1_002, "paid_out": 1_003}
    assert wallet_mirror.write(client, state(7, 1, 51, 5, {"2026-01": (1, 1)}))
    assert wallet_mirror.read_wallet(client, 7, 1)["pending"] == 5
    assert wallet_mirror.top(client, 7, "2026-01", "commission", 10) == [(1, 1)]


def test_a_duplicate_mirror_write_is_a_no_op(app_context):
    client = redis.client
    wallet_mirror.mark_complete(client, [7])
    first = state(7, 1, 50, 1_000, {"2026-01": (900, 9_000), "2026-02": (5, 50)})
    wallet_mirror.write(client, first)
    before = mirror_dump(client, 7)
    # The same write again — a retried sweep, a second sweeper — however often: nothing adds
    # up twice, no version moves.
    for _ in range(3):
        wallet_mirror.write(client, first)
    assert mirror_dump(client, 7) == before
    assert before[redis_keys.wallet(7, 1)]["version"] == "50"
    assert wallet_mirror.top(client, 7, "2026-01", "commission", 10) == [(1, 900)]


class RecordingClient:
    """A real client that remembers the keys and arguments of every script it runs."""

    def __init__(self, client):
        self.client = client
        self.calls: list[tuple[list[str], list]] = []

    def eval(self, script, numkeys, *keys_and_args):
        self.calls.append((list(keys_and_args[:numkeys]), list(keys_and_args[numkeys:])))
        return self.client.eval(script, numkeys, *keys_and_args)


def test_the_mirror_script_touches_only_the_keys_it_declares_all_in_one_slot(app_context):
    client = redis.client
    client.flushdb()
    recording = RecordingClient(client)
    totals = {"2026-01": (900, 9_000), "2026-02": (100, 0)}
    assert wallet_mirror.write(recording, state(7, 3, 1, 10, totals))
    declared = recording.calls[0][0]
    assert declared == [redis_keys.wallet(7, 3),
                        redis_keys.ranking(7, "2026-01", "commission"),
                        redis_keys.ranking(7, "2026-01", "sales"),
                        redis_keys.ranking(7, "2026-02", "commission"),
                        redis_keys.ranking(7, "2026-02", "sales")]
    # Every key exists afterwards, and nothing else does.
    assert sorted(client.keys("*")) == sorted(declared)
    assert all("{m7}" in key for key in declared)
    assert len({key_slot(key.encode()) for key in declared}) == 1
    # Statically too: every redis.call in the script names its key through KEYS[...].
    calls = re.findall(r"redis\.call\('(\w+)',\s*([^,)]+)", wallet_mirror._MIRROR)
    assert calls and all(target.startswith("KEYS[") for _, target in calls)
    assert "KEYS[" in wallet_mirror._MIRROR and not re.search(r"'fx:", wallet_mirror._MIRROR)


def test_every_key_of_one_merchant_shares_its_hash_tag(app_context):
    keys = [redis_keys.wallet(42, 1), redis_keys.wallet(42, 99_999),
            redis_keys.ranking(42, "2026-01", "commission"),
            redis_keys.ranking(42, "2030-12", "sales")]
    assert {re.search(r"\{[^}]*\}", key).group() for key in keys} == {"{m42}"}
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert redis_keys.wallet(42, 1) != redis_keys.wallet(43, 1)


# --- outbox, sweeper and fast path ------------------------------------------------------------


def test_a_posting_queues_its_members_and_the_fast_path_mirrors_them(shop):
    member, other = make_member(shop), make_member(shop)
    accrue(shop.id, member.id, 300, "a")
    accrue(shop.id, other.id, 400, "b")
    assert outbox_members(shop.id) == [member.id, other.id]
    assert wallets.mirror_members(redis.client, merchant_id=shop.id, member_ids={member.id})
    assert outbox_members(shop.id) == [other.id]
    assert wallet_mirror.read_wallet(redis.client, shop.id, member.id)["pending"] == 300
    assert wallet_mirror.read_wallet(redis.client, shop.id, other.id) is None


def test_the_sweeper_mirrors_every_wallet_and_ranking_in_the_outbox(app, shop):
    grandparent, parent, buyer = chain(shop)
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    result = app.test_cli_runner().invoke(args=["jobs", "sweep-wallet-outbox"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"mirrored": 4, "failed": 0}
    assert outbox_members() == []
    assert_redis_equals_sql(redis.client, shop.id)


def test_a_crash_between_commit_and_mirror_is_repaired_by_the_sweeper(app, app_settings, shop):
    grandparent, parent, buyer = chain(shop)
    first = make_order(buyer, lines=[(10_000, 1)])
    pay_order(first)
    wallets.sweep_outbox(redis.client)
    assert wallet_mirror.read_wallet(redis.client, shop.id, parent.id)["pending"] == 1_000
    order = make_order(buyer, lines=[(20_000, 1)])

    child = subprocess.run(
        [sys.executable, "-c", CRASHING_PAYMENT, str(shop.id), str(order.id)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
        env=child_env(FENXIAO_ENV="test", DATABASE_URL=app_settings.database_url,
                      REDIS_URL=app_settings.redis_url, LOG_LEVEL="WARNING",
                      INSTANCE_DIR=str(app_settings.instance_dir)))

    assert child.returncode == 1, child.stderr
    assert child.stdout.strip() == "committed", child.stderr
    db.session.expire_all()
    # SQL has the new commission; Redis still has the old balance; the outbox remembers.
    assert ledger.wallet_balances(shop.id, parent.id)["pending"] == 3_000
    assert wallet_mirror.read_wallet(redis.client, shop.id, parent.id)["pending"] == 1_000
    assert wallet_mirror.read_wallet(redis.client, shop.id, grandparent.id)["pending"] == 500
    assert sorted(set(outbox_members(shop.id))) == sorted([parent.id, grandparent.id])
    assert db.session.scalar(select(func.count()).select_from(Commission)) == 4

    result = app.test_cli_runner().invoke(args=["jobs", "sweep-wallet-outbox"])
    assert result.exit_code == 0, result.output
    assert outbox_members() == []
    assert wallet_mirror.read_wallet(redis.client, shop.id, parent.id)["pending"] == 3_000
    assert_redis_equals_sql(redis.client, shop.id)


# Runs in a child process: pays the order the way the payment transaction will, commits, and
# dies before anything is mirrored (os._exit skips every cleanup).
CRASHING_PAYMENT = """
import os, sys
from app import create_app
from app.database import transaction, utcnow
from app.extensions import db
from app.models import Order
from app.services import commissions

merchant_id, order_id = int(sys.argv[1]), int(sys.argv[2])
app = create_app()
with app.app_context():
    with transaction(db.session):
        order = db.session.get(Order, (merchant_id, order_id), with_for_update=True)
        order.status, order.paid_at = "paid", utcnow()
        assert commissions.accrue_for_paid_order(order, timezone="Asia/Shanghai", now=utcnow())
    print("committed", flush=True)
    os._exit(1)
"""


def test_a_sweep_in_small_batches_still_mirrors_the_rankings(shop):
    """However the sweeper's batches cut the outbox (a backlog after an outage is cut into
    batches of 500), every ranking ends equal to the period totals."""
    grandparent, parent, buyer = chain(shop)
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    for _ in range(10):
        if not outbox_members():
            break
        wallets.sweep_outbox(redis.client, batch=1)
    assert outbox_members() == []
    assert_redis_equals_sql(redis.client, shop.id)


def test_a_redis_outage_keeps_the_outbox_until_redis_is_back(make_app, own_redis):
    application = make_app(redis_url=own_redis.url)
    with application.app_context():
        shop = make_merchant()
        grandparent, parent, buyer = chain(shop)
        pay_order(make_order(buyer, lines=[(10_000, 1)]))
        wallets.sweep_outbox(redis.client)
        own_redis.stop(remove=False)

        pay_order(make_order(buyer, lines=[(30_000, 1)]))
        queued = outbox_members()
        assert sorted(set(queued)) == sorted([parent.id, grandparent.id])
        assert wallets.mirror_members(redis.client, merchant_id=shop.id,
                                      member_ids={parent.id, grandparent.id}) is False
        assert wallets.sweep_outbox(redis.client) == {"mirrored": 0, "failed": len(queued)}
        assert outbox_members() == queued
        # Reads do not need Redis.
        assert wallets.read_wallet(redis.client, merchant_id=shop.id, member_id=parent.id) \
            == ledger.wallet_balances(shop.id, parent.id)

        own_redis.start()  # same port; an empty server (no persistence)
        assert wallets.sweep_outbox(redis.client) == {"mirrored": len(queued), "failed": 0}
        assert outbox_members() == []
        assert wallet_mirror.read_wallet(redis.client, shop.id, parent.id)["pending"] == 4_000
        wallets.rebuild_cache(redis.client)
        assert_redis_equals_sql(redis.client, shop.id)


# --- rebuild and reads ------------------------------------------------------------------------


def busy_merchant():
    """A merchant with accruals, a refund and a settlement, mirrored."""
    shop = make_merchant()
    grandparent, parent, buyer = chain(shop)
    other_buyer = make_member(shop, upline=grandparent, status="none")
    first = make_order(buyer, lines=[(10_000, 1), (2_345, 2)], discount_fen=300)
    pay_order(first)
    pay_order(make_order(other_buyer, lines=[(7_777, 1)]))
    with transaction(db.session):
        row = db.session.get(Order, (shop.id, first.id))
        commissions.reverse_for_refund(row, refund_key="r", refunded_goods_before_fen=0,
                                       refunded_goods_after_fen=4_000)
        commissions.schedule_settlement(row, received_at=utcnow() - timedelta(days=8),
                                        freeze_days=7)
    with transaction(db.session):
        commissions.settle_due(now=utcnow())
    wallets.sweep_outbox(redis.client)
    return shop


def test_rebuild_cache_restores_a_flushed_redis_exactly(app_context):
    shop, other_shop = busy_merchant(), busy_merchant()
    assert_redis_equals_sql(redis.client, shop.id)
    before = mirror_dump(redis.client)
    # two merchants: two wallets, two rankings and the completeness mark each
    assert len(before) == 2 * (2 + 2 + 1)
    redis.client.flushall()
    assert wallets.rebuild_cache(redis.client) == {"deleted_keys": 0, "wallets": 4}
    assert mirror_dump(redis.client) == before
    assert_redis_equals_sql(redis.client, other_shop.id)


def test_rebuild_cache_replaces_a_wrong_mirror_and_keeps_to_its_merchant(app_context):
    shop, other_shop = busy_merchant(), busy_merchant()
    right = mirror_dump(redis.client)
    wallet_key = next(k for k in right if k.startswith(f"fx:{{m{shop.id}}}:wallet:"))
    redis.client.hset(wallet_key, mapping={"version": 10**9, "pending": 1})
    redis.client.zadd(redis_keys.ranking(shop.id, "1999-01", "sales"), {"12345": 7})
    other_key = next(k for k in right if k.startswith(f"fx:{{m{other_shop.id}}}:wallet:"))
    redis.client.hset(other_key, "pending", 2)
    wallets.rebuild_cache(redis.client, merchant_id=shop.id)
    now = mirror_dump(redis.client)
    assert {k: v for k, v in now.items() if f"{{m{shop.id}}}" in k} == \
        {k: v for k, v in right.items() if f"{{m{shop.id}}}" in k}
    assert now[other_key]["pending"] == "2"  # another merchant's mirror is not touched


def test_read_wallet_uses_the_mirror_when_it_has_one(shop):
    member = make_member(shop)
    accrue(shop.id, member.id, 300, "a")
    assert wallets.read_wallet(redis.client, merchant_id=shop.id, member_id=member.id) == {
        "pending": 300, "available": 0, "withdrawing": 0, "paid_out": 0}  # no mirror yet: SQL
    # A mirror that differs from SQL shows that the read came from Redis.
    wallet_mirror.write(redis.client, state(shop.id, member.id, 10**9, 77))
    assert wallets.read_wallet(redis.client, merchant_id=shop.id, member_id=member.id) == {
        "pending": 77, "available": 78, "withdrawing": 79, "paid_out": 80}


def test_read_wallet_falls_back_to_sql_when_redis_is_down(make_app, app_context):
    shop = make_merchant()
    member = make_member(shop)
    accrue(shop.id, member.id, 300, "a")
    wallet_mirror.write(redis.client, state(shop.id, member.id, 10**9, 77))
    down = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with down.app_context():
        client = redis.client
        assert wallet_mirror.read_wallet(client, shop.id, member.id) is None
        assert wallets.read_wallet(client, merchant_id=shop.id, member_id=member.id) == {
            "pending": 300, "available": 0, "withdrawing": 0, "paid_out": 0}
        assert wallets.mirror_members(client, merchant_id=shop.id,
                                      member_ids={member.id}) is False
        assert wallets.sweep_outbox(client) == {"mirrored": 0, "failed": 1}
        assert outbox_members() == [member.id]
        db.session.remove()


def test_a_redis_that_lost_its_data_serves_rankings_from_sql_until_the_job_restores_the_mirror(
        app_context):
    """An empty restart (no persistence) followed by one payment: the ranking in Redis would
    hold only the member paid since. Without the completeness mark, rankings come from SQL;
    the restore-mirrors job rebuilds the merchant and the mark, and the mirror equals SQL."""
    from app.jobs import restore_mirrors
    from app.services import stats_distributors

    merchant = make_merchant()
    alice = make_member(merchant)
    bob = make_member(merchant, upline=alice)
    carol = make_member(merchant, upline=alice)
    for seller, price in ((bob, 10_000), (carol, 20_000)):
        buyer = make_member(merchant, upline=seller, status="none", user=make_user())
        pay_order(make_order(buyer, lines=[(price, 1)]))
    wallets.sweep_outbox(redis.client)
    period = utcnow().strftime("%Y-%m")

    def board() -> dict:
        return stats_distributors.rankings(merchant_id=merchant.id, period=period,
                                           measure="commission", limit=10,
                                           redis_client=redis.client)

    everyone = {item["member_id"]: item["value"] for item in board()["items"]}
    assert board()["source"] == "redis" and set(everyone) == {alice.id, bob.id, carol.id}

    redis.client.flushdb()  # the restart that lost everything
    buyer = make_member(merchant, upline=bob, status="none", user=make_user())
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    wallets.sweep_outbox(redis.client)  # mirrors bob and alice only
    assert redis.client.zcard(redis_keys.ranking(merchant.id, period, "commission")) == 2
    partial = board()
    assert partial["source"] == "sql"
    assert {item["member_id"] for item in partial["items"]} == {alice.id, bob.id, carol.id}

    assert restore_mirrors() == {"rebuilt_merchants": 1}
    restored = board()
    assert restored["source"] == "redis"
    values = {item["member_id"]: item["value"] for item in partial["items"]}
    assert {item["member_id"]: item["value"] for item in restored["items"]} == values
    assert restore_mirrors() == {"rebuilt_merchants": 0}
    for member in (alice, bob, carol):
        assert wallets.read_wallet(redis.client, merchant_id=merchant.id,
                                   member_id=member.id) == ledger.wallet_balances(merchant.id,
                                                                                  member.id)
