"""Risk signals in the console: the thresholds in the settings, the flag list and a member's
flags, release (owner only, with a reason), the log, and another merchant's flags."""

from __future__ import annotations

import pytest

from app.services import attribution
from tests.factories import make_member, make_share_link, make_user

RISK = "/api/console/v1/risk"


def self_referral(shop):
    """A distributor whose link bound a second account of the same WeChat user (one flag)."""
    distributor = make_member(shop, user=make_user(unionid="un-twin"))
    attribution.record_visit(token=make_share_link(distributor).token,
                             user_id=make_user(unionid="un-twin").id,
                             context=attribution.VisitContext(channel="miniprogram"))
    return distributor


@pytest.fixture
def flagged(shop):
    return self_referral(shop)


def open_flag_id(client, headers) -> int:
    [item] = client.get(f"{RISK}/flags?status=open", headers=headers).get_json()["items"]
    return item["id"]


# --- settings ---------------------------------------------------------------------------------


def test_an_operator_may_tune_the_risk_thresholds(client, shop, staff_headers):
    response = client.put("/api/console/v1/settings/distribution", headers=staff_headers(
        "operator1"), json={"risk_binding_burst_per_hour": 80, "risk_refund_min_orders": 20})
    assert response.status_code == 200, response.get_json()
    body = client.get("/api/console/v1/settings/distribution", headers=staff_headers()).get_json()
    assert (body["risk_binding_burst_per_hour"], body["risk_refund_min_orders"],
            body["risk_refund_rate_bps"]) == (80, 20, 2500)


@pytest.mark.parametrize("change", [{"risk_refund_rate_bps": 10_001},
                                    {"risk_ip_burst_minutes": 0},
                                    {"risk_binding_burst_per_hour": 1.5}])
def test_an_invalid_threshold_is_refused_with_its_field_named(client, shop, staff_headers,
                                                              change):
    response = client.put("/api/console/v1/settings/distribution", headers=staff_headers(),
                          json=change)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == set(change)


def test_the_public_program_profile_does_not_reveal_the_thresholds(client, shop):
    program = client.get(f"/api/mp/v1/merchants/{shop.id}").get_json()["program"]
    assert program and not [name for name in program if name.startswith("risk_")]


# --- reading flags ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner1", "operator1", "finance1"])
def test_every_role_sees_the_flags_with_their_evidence(client, flagged, staff_headers, role):
    body = client.get(f"{RISK}/flags", headers=staff_headers(role)).get_json()
    assert body["total"] == 1
    [item] = body["items"]
    assert (item["member_id"], item["kind"], item["status"]) == (flagged.id, "self_referral",
                                                                 "open")
    assert item["detail"]["matched"] == "unionid"


def test_flags_filter_by_status_and_kind(client, shop, flagged, staff_headers):
    headers = staff_headers()
    assert client.get(f"{RISK}/flags?status=released", headers=headers).get_json()["total"] == 0
    assert client.get(f"{RISK}/flags?kind=refund_rate", headers=headers).get_json()["total"] == 0
    assert client.get(f"{RISK}/flags?kind=self_referral&status=open",
                      headers=headers).get_json()["total"] == 1
    assert client.get(f"{RISK}/flags?kind=nonsense", headers=headers).status_code == 422


def test_a_members_flags_are_listed_on_its_distributor_route(client, shop, flagged,
                                                             staff_headers):
    others = make_member(shop)
    path = "/api/console/v1/distributors/{}/risk-flags"
    mine = client.get(path.format(flagged.id), headers=staff_headers()).get_json()
    assert [i["member_id"] for i in mine["items"]] == [flagged.id]
    assert client.get(path.format(others.id), headers=staff_headers()).get_json()["total"] == 0
    missing = client.get(path.format(999_999), headers=staff_headers())
    assert (missing.status_code, missing.get_json()["code"]) == (404, "distributor_not_found")


# --- release ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator1", "finance1"])
def test_only_the_owner_releases_a_flag(client, flagged, staff_headers, role):
    flag_id = open_flag_id(client, staff_headers())
    response = client.post(f"{RISK}/flags/{flag_id}/release", headers=staff_headers(role),
                           json={"reason": "looks fine"})
    assert (response.status_code, response.get_json()["code"]) == (403, "role_forbidden")
    assert open_flag_id(client, staff_headers()) == flag_id


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 5}])
def test_a_release_without_a_reason_is_refused(client, flagged, staff_headers, body):
    flag_id = open_flag_id(client, staff_headers())
    response = client.post(f"{RISK}/flags/{flag_id}/release", headers=staff_headers(),
                           json=body)
    assert response.status_code == 422
    assert "reason" in response.get_json()["errors"]
    assert open_flag_id(client, staff_headers()) == flag_id


def test_the_owner_releases_once_and_the_log_shows_both_steps(client, flagged, staff_headers):
    headers = staff_headers()
    flag_id = open_flag_id(client, headers)
    response = client.post(f"{RISK}/flags/{flag_id}/release", headers=headers,
                           json={"reason": "the owner's own test account"})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["status"], response.get_json()["release_reason"]) == (
        "released", "the owner's own test account")
    again = client.post(f"{RISK}/flags/{flag_id}/release", headers=headers,
                        json={"reason": "twice"})
    assert (again.status_code, again.get_json()["code"]) == (409, "risk_flag_not_open")
    detail = client.get(f"{RISK}/flags/{flag_id}", headers=headers).get_json()
    assert [(row["action"], row["note"]) for row in detail["log"]] == [
        ("raised", "self_referral"), ("released", "the owner's own test account")]
    assert detail["log"][1]["staff_id"] is not None
    logs = client.get(f"{RISK}/logs?member_id={flagged.id}", headers=headers).get_json()
    assert [row["action"] for row in logs["items"]] == ["released", "raised"]


# --- tenancy ----------------------------------------------------------------------------------


def test_another_merchants_staff_cannot_see_or_release_a_flag(client, shop, other_shop, flagged,
                                                             staff_headers):
    flag_id = open_flag_id(client, staff_headers())
    foreign = staff_headers("owner2")
    for response in (client.get(f"{RISK}/flags/{flag_id}", headers=foreign),
                     client.post(f"{RISK}/flags/{flag_id}/release", headers=foreign,
                                 json={"reason": "not mine"})):
        assert (response.status_code, response.get_json()["code"]) == (404,
                                                                       "risk_flag_not_found")
    assert client.get(f"{RISK}/flags", headers=foreign).get_json()["total"] == 0
    assert client.get(f"{RISK}/logs", headers=foreign).get_json()["total"] == 0
    member_route = client.get(f"/api/console/v1/distributors/{flagged.id}/risk-flags",
                              headers=foreign)
    assert member_route.status_code == 404
    assert open_flag_id(client, staff_headers()) == flag_id


def test_the_risk_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/console/v1/risk/flags", "/api/console/v1/risk/flags/{flag_id}",
            "/api/console/v1/risk/flags/{flag_id}/release", "/api/console/v1/risk/logs",
            "/api/console/v1/distributors/{member_id}/risk-flags"} <= set(paths)
