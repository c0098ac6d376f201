"""Statistics over HTTP: every staff role reads them, only their own merchant's, with ranges
checked and refused in the one error shape (the figures themselves are checked against the raw
tables in tests/integration/test_rollups.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.database import utcnow
from app.domain.business_time import business_date
from tests.integration import stats_world

pytestmark = pytest.mark.redis_topologies

DASHBOARD = "/api/console/v1/dashboard"


@pytest.fixture
def world(shop, sandbox_url):
    return stats_world.build(shop.id, sandbox_url)


def get(client, path: str, headers: dict, **query):
    response = client.get(path, headers=headers, query_string=query)
    return response.status_code, response.get_json()


def test_every_staff_role_reads_the_dashboard(client, shop, staff_headers):
    for username in ("owner1", "operator1", "finance1"):
        status, body = get(client, DASHBOARD, staff_headers(username))
        assert status == 200, body


def test_the_dashboard_needs_a_console_token(client, shop):
    status, body = get(client, DASHBOARD, {})
    assert status == 401 and body["code"] == "missing_token"


def test_a_range_that_ends_before_it_starts_is_refused(client, shop, staff_headers):
    status, body = get(client, DASHBOARD, staff_headers(), **{"from": "2026-03-02",
                                                              "to": "2026-03-01"})
    assert status == 422
    assert body["code"] == "invalid_input" and list(body["errors"]) == ["from"]


def test_a_range_of_366_days_is_read_and_one_of_367_refused(client, shop, staff_headers):
    status, body = get(client, DASHBOARD, staff_headers(), **{"from": "2025-01-01",
                                                              "to": "2026-01-01"})
    assert status == 200 and body["days"] == 366 and len(body["series"]) == 366
    status, body = get(client, DASHBOARD, staff_headers(), **{"from": "2025-01-01",
                                                              "to": "2026-01-02"})
    assert status == 422 and list(body["errors"]) == ["to"]


def test_a_date_that_is_no_date_is_refused_by_name(client, shop, staff_headers):
    status, body = get(client, DASHBOARD, staff_headers(), **{"from": "2026-02-30"})
    assert status == 422 and "from" in body["errors"]


def test_without_a_range_the_dashboard_shows_the_30_days_ending_today(client, shop,
                                                                         staff_headers):
    status, body = get(client, DASHBOARD, staff_headers())
    today = business_date(utcnow(), timezone="Asia/Shanghai")
    assert (body["from"], body["to"], body["days"]) == (
        (today - timedelta(days=29)).isoformat(), today.isoformat(), 30)
    assert body["previous"]["to"] == (today - timedelta(days=30)).isoformat()


def test_the_dashboard_shows_figures_the_previous_range_the_change_and_each_day(
        client, world, staff_headers):
    d = world.day
    status, body = get(client, DASHBOARD, staff_headers("finance1"),
                       **{"from": d(2).isoformat(), "to": d(4).isoformat()})
    assert status == 200
    # D2-D4: o2, o3 (two units), o4, o5, o6 paid: 60,000 fen over 5 orders.
    assert (body["current"]["gmv_fen"], body["current"]["orders_paid"],
            body["current"]["average_order_fen"]) == (60_000, 5, 12_000)
    assert (body["previous"]["from"], body["previous"]["gmv_fen"]) == (d(-1).isoformat(), 10_000)
    assert body["change"]["gmv_fen"] == {"delta": 50_000, "change_bps": 50_000}
    assert [point["day"] for point in body["series"]] == [d(n).isoformat() for n in (2, 3, 4)]
    assert [point["orders_paid"] for point in body["series"]] == [3, 2, 0]
    assert (body["distinct_source"], body["current"]["paying_buyers"]) == ("hyperloglog", 5)
    status, exact = get(client, DASHBOARD, staff_headers(), exact="true",
                        **{"from": d(2).isoformat(), "to": d(4).isoformat()})
    assert (exact["distinct_source"], exact["current"]) == ("sql", body["current"])


def test_another_merchants_staff_see_none_of_it(client, world, other_shop, staff_headers):
    d = world.day
    status, body = get(client, DASHBOARD, staff_headers("owner2"),
                       **{"from": d(1).isoformat(), "to": d(14).isoformat()})
    assert status == 200 and body["current"]["orders_paid"] == 0
    status, body = get(client, "/api/console/v1/stats/funnel", staff_headers("owner2"),
                       distributor_id=world.members["bob"])
    assert status == 404
    for path in (f"/api/console/v1/stats/teams/{world.members['bob']}",
                 f"/api/console/v1/stats/teams/{world.members['bob']}/orders"):
        assert get(client, path, staff_headers("owner2"))[0] == 404


def test_the_funnel_overall_and_for_one_distributor(client, world, staff_headers):
    status, body = get(client, "/api/console/v1/stats/funnel", staff_headers("operator1"))
    steps = {step["step"]: step for step in body["steps"]}
    assert status == 200 and body["unique_visitors_source"] == "hyperloglog"
    assert [s["step"] for s in body["steps"]] == ["links_shared", "visits", "unique_visitors",
                                                  "bindings", "orders", "paid",
                                                  "commission_settled_fen"]
    # 6 unique of 9 visits; 5 bound.
    assert (steps["unique_visitors"]["conversion_bps"], steps["bindings"]["value"]) == \
        (6_666, 5)
    status, body = get(client, "/api/console/v1/stats/funnel", staff_headers(),
                       distributor_id=world.members["bob"],
                       **{"from": world.day(1).isoformat()})
    steps = {step["step"]: step["value"] for step in body["steps"]}
    assert (steps["bindings"], steps["orders"], steps["paid"]) == (3, None, 4)
    assert steps["commission_settled_fen"] == 1_000


def test_rankings_by_each_measure(client, world, staff_headers):
    from app.extensions import redis
    from app.services import wallets

    wallets.sweep_outbox(redis.client)
    period = world.day(3).strftime("%Y-%m")
    status, body = get(client, "/api/console/v1/stats/rankings", staff_headers("finance1"),
                       period=period, by="commission")
    assert status == 200 and body["source"] == "redis"
    assert all(item["nickname"] is not None for item in body["items"])
    status, body = get(client, "/api/console/v1/stats/rankings", staff_headers(),
                       by="new_members")
    assert [(i["member_id"], i["value"]) for i in body["items"]] == \
        [(world.members["bob"], 3), (world.members["alice"], 2)]


@pytest.mark.parametrize("query", [{"period": "2026-13"}, {"period": "202603"},
                                   {"by": "visits"}, {"limit": "101"}])
def test_rankings_refuse_bad_arguments(client, shop, staff_headers, query):
    status, body = get(client, "/api/console/v1/stats/rankings", staff_headers(), **query)
    assert status == 422 and set(body["errors"]) == set(query)


def test_the_consumer_analysis(client, world, staff_headers):
    status, body = get(client, "/api/console/v1/stats/consumers", staff_headers(),
                       **{"from": world.day(1).isoformat(), "to": world.day(4).isoformat()})
    assert status == 200
    assert (body["buyers"], body["new_buyers"], body["repeat_buyers"]) == (5, 5, 1)
    assert len(body["by_hour"]) == 24 and len(body["by_weekday"]) == 7
    regions = {(r["province"], r["city"]): r["buyers"] for r in body["by_region"]}
    assert regions == {("广东省", "深圳市"): 5, ("上海市", "上海市"): 1}


def test_performance_per_distributor_is_paginated(client, world, staff_headers):
    status, body = get(client, "/api/console/v1/stats/performance", staff_headers(),
                       per_page=1, **{"from": world.day(1).isoformat()})
    assert status == 200 and body["total"] == 2 and len(body["items"]) == 1
    # bob's tier-1 sales: o1 10,000 + o2 10,000 + o3 20,000 - 3,000 + o4 10,000 - 10,000.
    assert (body["items"][0]["member_id"], body["items"][0]["direct_sales_fen"]) == \
        (world.members["bob"], 37_000)


def test_a_team_view_shows_counters_direct_members_and_the_teams_orders(client, world,
                                                                          staff_headers):
    alice = world.members["alice"]
    status, body = get(client, f"/api/console/v1/stats/teams/{alice}", staff_headers())
    assert status == 200 and body["direct_members"] == 2
    assert {m["id"] for m in body["direct"]["items"]} == {world.members["bob"],
                                                         world.members["frank"]}
    assert set(body["wallet"]) == {"pending", "available", "withdrawing", "paid_out"}
    status, body = get(client, f"/api/console/v1/stats/teams/{alice}/orders", staff_headers(),
                       per_page=100)
    assert status == 200 and body["total"] == 7  # every order but gina's
    by_id = {order["id"]: order for order in body["items"]}
    assert by_id[world.orders["o1"]]["shipment_status"] == "received"
    assert by_id[world.orders["o1"]]["team_level"] == 2
    assert by_id[world.orders["o2"]]["shipment_status"] == "awaiting_shipment"
    assert by_id[world.orders["o8"]]["shipment_status"] == "unpaid"
    status, body = get(client, f"/api/console/v1/stats/teams/{alice}/orders", staff_headers(),
                       status="refunded")
    assert [order["id"] for order in body["items"]] == [world.orders["o4"]]


def test_the_statistics_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/console/v1/dashboard", "/api/console/v1/stats/funnel",
                 "/api/console/v1/stats/rankings", "/api/console/v1/stats/consumers",
                 "/api/console/v1/stats/performance",
                 "/api/console/v1/stats/teams/{member_id}",
                 "/api/console/v1/stats/teams/{member_id}/orders"):
        assert "get" in paths[path], path
