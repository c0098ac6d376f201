"""The app on a Redis Cluster of three masters (``redis+cluster://`` in REDIS_URL).

Every test here runs on the cluster the fixtures start, and checks where keys really are by
asking each master directly: a merchant's keys share one master (their hash tag), merchants
spread over several, and every Redis use of the app — wallet mirror (Lua), rankings,
HyperLogLogs, the token deny-list, the WeChat access-token cache, rate limits, the rebuild —
works across them. The modules marked ``redis_topologies`` run on this cluster too.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import timedelta

import pytest
import redis as redis_lib
from sqlalchemy import select

from app import clients
from app.database import transaction, utcnow
from app.domain.business_time import business_date
from app.extensions import db, redis
from app.integrations import member_counters, redis_keys, visit_counters, wallet_mirror
from app.integrations.redis_client import cluster_nodes
from app.models import Order, PeriodTotal
from app.services import commissions, events, ledger, stats, wallets
from tests.factories import make_member, make_merchant, make_order, make_share_link
from tests.support.servers import RedisClusterServer
from tests.support.wechat import sandbox_code, sandbox_phone_code

pytestmark = pytest.mark.parametrize("redis_topology", ["cluster"], indirect=True,
                                     scope="session")

LOGIN = "/api/mp/v1/auth/login"
ME = "/api/mp/v1/me"
TIMEZONE = "Asia/Shanghai"

# --- helpers ----------------------------------------------------------------------------------


def masters(server: RedisClusterServer) -> dict[int, redis_lib.Redis]:
    """A plain connection to each master, bypassing the cluster client's routing."""
    return {port: server.node(port) for port in server.ports}


def keys_by_master(server: RedisClusterServer, pattern: str = "*") -> dict[int, set[str]]:
    return {port: set(node.keys(pattern)) for port, node in masters(server).items()}


def master_of(server: RedisClusterServer, key: str) -> int:
    """The one master that stores ``key`` (KEYS lists a node's own keys, whatever their slot;
    EXISTS on another master would answer MOVED)."""
    literal = re.sub(r"([*?\[\]\\])", r"\\\1", key)
    holders = [port for port, node in masters(server).items() if node.keys(literal)]
    assert len(holders) == 1, (key, holders)
    return holders[0]


def merchant_tag(key: str) -> str:
    return key[key.index("{") + 1:key.index("}")]


def merchants_on_every_master(count_per_master: int = 1) -> list:
    """Merchants made until each master owns the keys of at least ``count_per_master``."""
    found, made = defaultdict(list), []
    while min((len(found[node.port]) for node in redis.client.get_primaries()),
              default=0) < count_per_master:
        shop = make_merchant()
        found[redis.client.get_node_from_key(redis_keys.wallet(shop.id, 0)).port].append(shop)
        made.append(shop)
        assert len(made) < 50, "the hash tags of 50 merchants missed a master"
    return made


def pay(order: Order) -> None:
    """Accrue and record the payment as ``payments.apply_payment`` does (figures included)."""
    with transaction(db.session):
        order = db.session.get(Order, (order.merchant_id, order.id))
        order.status, order.paid_at = "paid", utcnow()
        accrued = commissions.accrue_for_paid_order(order, timezone=TIMEZONE, now=utcnow())
        events.order_paid(order, accrued, utcnow())


def shop_with_a_paid_order(shop) -> tuple:
    """(the distributor who earned, the buyer): only the distributor has a wallet."""
    upline = make_member(shop)
    buyer = make_member(shop, upline=upline, status="none")
    pay(make_order(buyer, lines=[(10_000 + shop.id, 1)]))
    return upline, buyer


def sql_rankings(merchant_id: int) -> dict[tuple[str, str], dict[int, int]]:
    rankings: dict = defaultdict(dict)
    for period, member, commission, sales in db.session.execute(
            select(PeriodTotal.period, PeriodTotal.member_id, PeriodTotal.commission_fen,
                   PeriodTotal.sales_fen).where(PeriodTotal.merchant_id == merchant_id)):
        rankings[(period, "commission")][member] = commission
        rankings[(period, "sales")][member] = sales
    return dict(rankings)


def assert_mirror_equals_sql(merchant_id: int, members: list[int]) -> None:
    for member_id in members:
        assert wallet_mirror.read_wallet(redis.client, merchant_id, member_id) == \
            ledger.wallet_balances(merchant_id, member_id)
    rankings = sql_rankings(merchant_id)
    assert rankings
    for (period, measure), expected in rankings.items():
        assert dict(wallet_mirror.top(redis.client, merchant_id, period, measure, 100)) == \
            expected


@pytest.fixture
def own_cluster():
    """A cluster of this test's own, which it may break."""
    server = RedisClusterServer().start()
    yield server
    server.stop()


# --- the fixture ------------------------------------------------------------------------------


def test_the_cluster_is_three_masters_that_together_own_every_slot_and_the_app_uses_it(
        app, redis_cluster_server):
    owned: dict[int, int] = defaultdict(int)
    for node in masters(redis_cluster_server).values():
        info = node.execute_command("CLUSTER INFO")
        assert (info["cluster_state"], info["cluster_known_nodes"], info["cluster_size"]) == \
            ("ok", "3", "3")
        assert node.info("replication")["role"] == "master"
        assert node.info("replication")["connected_slaves"] == 0
    ranges = masters(redis_cluster_server)[redis_cluster_server.ports[0]].execute_command(
        "CLUSTER SLOTS")
    slots = []
    for start, end, primary, *replicas in ranges:
        owned[primary[1]] += end - start + 1
        slots.extend(range(start, end + 1))
        assert replicas == []
    assert sorted(slots) == list(range(16384))  # every slot, each once
    assert set(owned) == set(redis_cluster_server.ports) and min(owned.values()) > 5000

    connection = app.extensions["fenxiao.redis"]
    assert connection.is_cluster and connection.url == redis_cluster_server.url
    with app.app_context():
        assert sorted(node.port for node in redis.client.get_primaries()) == \
            sorted(redis_cluster_server.ports)
        assert connection.limiter_storage_uri == redis_cluster_server.url


def test_readiness_pings_every_master(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == "ok"


# --- where keys live --------------------------------------------------------------------------


def test_each_merchants_wallets_rankings_and_buyer_counts_share_one_master_and_merchants_spread(
        app_context, redis_cluster_server):
    shops = merchants_on_every_master()
    earners = {shop.id: shop_with_a_paid_order(shop)[0] for shop in shops}
    assert wallets.sweep_outbox(redis.client)["failed"] == 0

    today = business_date(utcnow(), timezone=TIMEZONE)
    for shop in shops:
        # The Lua mirror and the rankings, read back through the cluster client.
        assert_mirror_equals_sql(shop.id, [earners[shop.id].id])
        # The paying buyer was counted in the day's HyperLogLog after the commit.
        board = stats.dashboard(merchant_id=shop.id, span=stats.DateRange(today, today),
                                redis_client=redis.client)
        assert (board["distinct_source"], board["current"]["paying_buyers"]) == \
            ("hyperloglog", 1)

    # Asked of each master directly: every key of a merchant on one master, and the merchants
    # on all three.
    where: dict[str, set[int]] = defaultdict(set)
    for port, keys in keys_by_master(redis_cluster_server, f"{redis_keys.PREFIX}:*").items():
        for key in keys:
            where[merchant_tag(key)].add(port)
    assert set(where) == {f"m{shop.id}" for shop in shops}
    assert all(len(ports) == 1 for ports in where.values()), where
    assert set().union(*where.values()) == set(redis_cluster_server.ports)
    for shop in shops:
        (port,) = where[f"m{shop.id}"]
        kinds = {key.split(":")[2] for key in redis_cluster_server.node(port).keys(
            f"fx:{{m{shop.id}}}:*")}
        assert {"wallet", "rank", "buyers"} <= kinds


def test_one_pipeline_counts_members_of_merchants_on_different_masters(app_context,
                                                                       redis_cluster_server):
    shops = merchants_on_every_master()
    day = business_date(utcnow(), timezone=TIMEZONE)
    counted = {(shop.id, day): {"buyers": {1, 2, shop.id + 10}, "distributors": {3}}
               for shop in shops}
    assert member_counters.add(redis.client, counted)
    for shop in shops:
        names = member_counters.keys(shop.id, [day, day - timedelta(days=1)], "buyers")
        assert member_counters.all_exist(redis.client, names[:1])
        assert member_counters.all_exist(redis.client, names) is False
        assert member_counters.union_count(redis.client, names) == 3
        holder = master_of(redis_cluster_server, names[0])
        assert redis_cluster_server.node(holder).pfcount(names[0]) == 3
    assert len({master_of(redis_cluster_server, member_counters.keys(shop.id, [day], "buyers")[0])
                for shop in shops}) == 3


def test_landing_visits_count_unique_visitors_on_the_master_of_each_merchant(
        app_context, client, redis_cluster_server):
    shops = merchants_on_every_master()
    for shop in shops:
        distributor = make_member(shop)
        link = make_share_link(distributor)
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
            response = client.get(f"/s/{link.token}", environ_base={"REMOTE_ADDR": address})
            assert response.status_code == 200
        day = business_date(utcnow(), timezone=TIMEZONE)
        keys = [redis_keys.unique_visitors_of_link(shop.id, link.id),
                redis_keys.unique_visitors_of_distributor(shop.id, distributor.id),
                redis_keys.unique_visitors_of_day(shop.id, day)]
        assert [visit_counters.unique_visitors(redis.client, key) for key in keys] == [2, 2, 2]
        holders = {master_of(redis_cluster_server, key) for key in keys}
        assert len(holders) == 1
        assert redis_cluster_server.node(*holders).pfcount(keys[0]) == 2


# --- sign-in: deny-list, access-token cache, rate limits --------------------------------------


def test_logout_denies_the_token_through_a_key_on_one_master(client, redis_cluster_server):
    tokens = [client.post(LOGIN, json={"code": sandbox_code(user)}).get_json()["token"]
              for user in ("alice", "bob")]
    headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
    assert client.post("/api/mp/v1/auth/logout", headers=headers[0]).status_code == 204

    refused = client.get(ME, headers=headers[0])
    assert refused.status_code == 401 and refused.get_json()["code"] == "token_revoked"
    assert client.get(ME, headers=headers[1]).status_code == 200
    revoked = [key for keys in keys_by_master(redis_cluster_server, "fx:revoked:*").values()
               for key in keys]
    assert len(revoked) == 1
    holder = master_of(redis_cluster_server, revoked[0])
    assert redis_cluster_server.node(holder).ttl(revoked[0]) > 0


def test_the_wechat_access_token_is_cached_once_on_the_cluster(app, client,
                                                                redis_cluster_server):
    headers = {"Authorization": "Bearer " + client.post(
        LOGIN, json={"code": sandbox_code("alice")}).get_json()["token"]}
    with app.app_context():
        key = redis_keys.wechat_access_token(clients.settings().wechat_appid)

    def bind(phone: str) -> None:
        response = client.post(f"{ME}/phone", json={"code": sandbox_phone_code(phone)},
                               headers=headers)
        assert response.status_code == 200, response.get_json()

    bind("13800000001")
    holder = redis_cluster_server.node(master_of(redis_cluster_server, key))
    cached = holder.get(key)
    assert cached and 0 < holder.ttl(key) <= 7200 - 300
    bind("13800000002")
    # The second binding reused the token the first one cached.
    assert holder.get(key) == cached


def test_sign_ins_are_limited_per_ip_and_per_openid_with_counters_on_the_cluster(
        make_app, redis_cluster_server):
    per_ip = make_app(login_rate_limit_ip="3/minute").test_client()
    statuses = [per_ip.post(LOGIN, json={"code": sandbox_code(f"u{i}")}).status_code
                for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert per_ip.post(LOGIN, json={"code": sandbox_code("u9")}).get_json()["code"] == \
        "rate_limited"

    per_openid = make_app(login_rate_limit_openid="2/minute")
    client = per_openid.test_client()
    statuses = [client.post(LOGIN, json={"code": sandbox_code("alice")}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.post(LOGIN, json={"code": sandbox_code("bob")}).status_code == 200
    # The keyed limit itself, on the cluster storage: the third hit of a key is refused.
    with per_openid.app_context():
        limit = clients.openid_login_limit()
        assert [limit.hit("cluster-check") for _ in range(3)] == [True, True, False]

    # Both kinds of counters are on the cluster's masters.
    counters = {key for keys in keys_by_master(redis_cluster_server, "LIMITS:*").values()
                for key in keys}
    assert "LIMITS:LIMITER/127.0.0.1/mp_auth.login/3/1/minute" in counters
    assert "LIMITS:LIMITER/mp-login-openid/cluster-check/2/1/minute" in counters


# --- rebuild ----------------------------------------------------------------------------------


def test_flask_wallets_rebuild_cache_rewrites_the_mirror_on_every_master(
        app, redis_cluster_server):
    with app.app_context():
        shops = merchants_on_every_master()
        earners = {shop.id: shop_with_a_paid_order(shop)[0].id for shop in shops}
        wallets.sweep_outbox(redis.client)
        period = db.session.scalars(select(PeriodTotal.period)).first()
        right = {key: redis.client.hgetall(key) for shop in shops
                 for key in redis.client.scan_iter(match=f"fx:{{m{shop.id}}}:wallet:*")}
        # Wrong on every master: a wallet ahead of SQL and a ranking SQL never had.
        for shop in shops:
            redis.client.hset(redis_keys.wallet(shop.id, earners[shop.id]),
                              mapping={"version": 10**9, "pending": 1})
            redis.client.zadd(redis_keys.ranking(shop.id, "1999-01", "sales"), {"12345": 7})
        stray = [redis_keys.ranking(shop.id, "1999-01", "sales") for shop in shops]
        assert {master_of(redis_cluster_server, key) for key in stray} == \
            set(redis_cluster_server.ports)
        mirrored = sum(len(keys) for pattern in redis_keys.mirror_patterns(None)
                       for keys in keys_by_master(redis_cluster_server, pattern).values())

    result = app.test_cli_runner().invoke(args=["wallets", "rebuild-cache"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "deleted_keys": mirrored, "wallets": len(shops)}

    with app.app_context():
        for key in stray:
            assert not any(node.keys(key) for node in masters(redis_cluster_server).values())
        for shop in shops:
            assert_mirror_equals_sql(shop.id, [earners[shop.id]])
        assert {key: redis.client.hgetall(key) for key in right} == right
        assert wallet_mirror.top(redis.client, shops[0].id, period, "sales", 10)


# --- outages: as with a single server, Redis never decides ------------------------------------


def test_a_master_down_fails_readiness_and_its_merchants_read_wallets_from_sql(
        make_app, own_cluster):
    application = make_app(redis_url=own_cluster.url)
    with application.app_context():
        assert application.test_client().get("/readyz").status_code == 200
        shops = merchants_on_every_master()
        members = {shop.id: shop_with_a_paid_order(shop) for shop in shops}
        wallets.sweep_outbox(redis.client)
        victim = shops[0]
        dead = master_of(own_cluster, redis_keys.wallet(victim.id, members[victim.id][0].id))
        process = own_cluster.processes[own_cluster.ports.index(dead)]
        process.kill()
        process.wait()

        response = application.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["errors"] == {"redis": ["unreachable"]}
        upline = members[victim.id][0]
        assert wallet_mirror.read_wallet(redis.client, victim.id, upline.id) is None
        assert wallets.read_wallet(redis.client, merchant_id=victim.id,
                                   member_id=upline.id) == ledger.wallet_balances(
            victim.id, upline.id)
        pay(make_order(members[victim.id][1], lines=[(5_000, 1)]))
        assert wallets.mirror_members(redis.client, merchant_id=victim.id,
                                      member_ids={upline.id}) is False
        db.session.remove()


def test_with_the_whole_cluster_down_sign_in_and_the_deny_list_check_fail_open(
        make_app, own_cluster):
    application = make_app(redis_url=own_cluster.url)
    for process in own_cluster.processes:
        process.kill()
        process.wait()
    client = application.test_client()
    response = client.post(LOGIN, json={"code": sandbox_code("offline")})
    assert response.status_code == 200, response.get_json()
    headers = {"Authorization": f"Bearer {response.get_json()['token']}"}
    assert client.get(ME, headers=headers).status_code == 200
    assert client.get("/readyz").status_code == 503
    with application.app_context():
        assert member_counters.union_count(redis.client, ["fx:{m1}:buyers:day:x"]) is None
        assert visit_counters.unique_visitors(redis.client, "fx:{m1}:uv:link:1") is None


def test_a_cluster_url_names_its_startup_nodes_and_credentials(redis_url, redis_cluster_server):
    nodes, credentials = cluster_nodes(redis_url)
    assert [(node.host, node.port) for node in nodes] == [
        ("127.0.0.1", port) for port in redis_cluster_server.ports]
    assert credentials == {}
    nodes, credentials = cluster_nodes("redis+cluster://u:p@10.0.0.1:7000, 10.0.0.2:7001")
    assert [(node.host, node.port) for node in nodes] == [("10.0.0.1", 7000),
                                                         ("10.0.0.2", 7001)]
    assert credentials == {"username": "u", "password": "p"}
    for bad in ("redis+cluster://", "redis+cluster://10.0.0.1"):
        with pytest.raises(ValueError):
            cluster_nodes(bad)
