"""Joining a program (mini-program) and reviewing distributors (console)."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Member, StatusLog
from tests.factories import make_member

DISTRIBUTORS = "/api/console/v1/distributors"


def join(client, merchant_id, headers, **body):
    return client.post(f"/api/mp/v1/merchants/{merchant_id}/distributor",
                       json={"agreement_version": "v1", **body}, headers=headers)


def set_rules(client, staff_headers, **rules):
    response = client.put("/api/console/v1/settings/distribution", json=rules,
                          headers=staff_headers())
    assert response.status_code == 200, response.get_json()


def test_apply_mode_needs_real_name_and_phone_then_a_review(client, shop, auth_headers,
                                                            staff_headers):
    headers = auth_headers("alice")
    missing = join(client, shop.id, headers)
    assert missing.status_code == 422
    assert set(missing.get_json()["errors"]) == {"real_name", "phone"}

    applied = join(client, shop.id, headers, real_name="王小明", phone="13812345678")
    assert applied.status_code == 200 and applied.get_json()["status"] == "pending"
    member_id = applied.get_json()["member_id"]

    pending = client.get(f"{DISTRIBUTORS}?status=pending", headers=staff_headers()).get_json()
    assert [m["id"] for m in pending["items"]] == [member_id]
    assert pending["items"][0]["phone_masked"] == "138****5678"
    assert pending["items"][0]["real_name_masked"] == "王**"

    approved = client.post(f"{DISTRIBUTORS}/{member_id}/approve", json={},
                           headers=staff_headers("operator1"))
    assert approved.status_code == 200 and approved.get_json()["distributor_status"] == "active"
    mine = client.get(f"/api/mp/v1/merchants/{shop.id}/distributor", headers=headers).get_json()
    assert mine["status"] == "active" and mine["team_size"] == 0 and mine["upline"] is None


def test_a_rejection_needs_a_reason_and_keeps_it(client, shop, auth_headers, staff_headers):
    member_id = join(client, shop.id, auth_headers("bob"), real_name="李四",
                     phone="13900000000").get_json()["member_id"]
    no_reason = client.post(f"{DISTRIBUTORS}/{member_id}/reject", json={},
                            headers=staff_headers())
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    rejected = client.post(f"{DISTRIBUTORS}/{member_id}/reject", json={"reason": "资料不全"},
                           headers=staff_headers())
    assert rejected.get_json()["distributor_status"] == "rejected"
    detail = client.get(f"{DISTRIBUTORS}/{member_id}", headers=staff_headers()).get_json()
    assert detail["status_history"][0]["reason"] == "资料不全"
    assert detail["status_history"][0]["to_status"] == "rejected"


def test_everyone_mode_makes_a_distributor_at_once(client, shop, auth_headers, staff_headers):
    set_rules(client, staff_headers, join_mode="everyone")
    response = join(client, shop.id, auth_headers("carol"))
    assert response.get_json()["status"] == "active"
    again = join(client, shop.id, auth_headers("carol"))
    assert again.get_json()["member_id"] == response.get_json()["member_id"]


def test_spend_threshold_mode_refuses_until_the_spend_is_reached(client, shop, auth_headers,
                                                                 staff_headers):
    set_rules(client, staff_headers, join_mode="spend_threshold",
              join_spend_threshold_fen=10_000)
    response = join(client, shop.id, auth_headers("dave"))
    assert response.status_code == 409
    assert response.get_json()["code"] == "spend_threshold_not_reached"


def test_a_stale_agreement_version_is_refused(client, shop, auth_headers):
    response = client.post(f"/api/mp/v1/merchants/{shop.id}/distributor",
                           json={"agreement_version": "v0", "real_name": "王五",
                                 "phone": "13800000001"}, headers=auth_headers("erin"))
    assert response.status_code == 422 and "agreement_version" in response.get_json()["errors"]


@pytest.mark.parametrize("action,start,allowed", [
    ("freeze", "active", True), ("freeze", "pending", False), ("unfreeze", "frozen", True),
    ("unfreeze", "active", False), ("approve", "active", False), ("approve", "pending", True),
])
def test_status_changes_follow_the_machine(client, shop, staff_headers, action, start,
                                           allowed):
    member = make_member(shop, status=start)
    response = client.post(f"{DISTRIBUTORS}/{member.id}/{action}", json={"reason": "测试"},
                           headers=staff_headers())
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 409
        assert response.get_json()["code"] == "invalid_status_transition"
        db.session.expire_all()
        assert db.session.get(Member, (shop.id, member.id)).distributor_status == start
        assert db.session.query(StatusLog).count() == 0


def test_finance_may_read_distributors_but_not_review_them(client, shop, staff_headers):
    member = make_member(shop, status="pending")
    headers = staff_headers("finance1")
    assert client.get(DISTRIBUTORS, headers=headers).status_code == 200
    response = client.post(f"{DISTRIBUTORS}/{member.id}/approve", json={}, headers=headers)
    assert response.status_code == 403 and response.get_json()["code"] == "role_forbidden"


def test_a_move_takes_the_whole_team_and_is_logged(client, shop, staff_headers):
    from app.jobs import apply_team_deltas

    root, other = make_member(shop), make_member(shop)
    child = make_member(shop, upline=root)
    grandchild = make_member(shop, upline=child)
    response = client.post(f"{DISTRIBUTORS}/{child.id}/move",
                           json={"upline_id": other.id, "reason": "团队调整"},
                           headers=staff_headers())
    assert response.status_code == 200, response.get_json()
    apply_team_deltas()
    db.session.expire_all()
    assert db.session.get(Member, (shop.id, grandchild.id)).path == f"/{other.id}/{child.id}/"
    assert db.session.get(Member, (shop.id, other.id)).team_size == 2
    assert db.session.get(Member, (shop.id, root.id)).team_size == 0
    detail = client.get(f"{DISTRIBUTORS}/{child.id}", headers=staff_headers()).get_json()
    assert detail["binding_history"][0]["outcome"] == "moved"
    assert detail["binding_history"][0]["note"] == "团队调整"


@pytest.mark.parametrize("target,code", [("self", "self"), ("descendant", "cycle"),
                                         ("frozen", "inactive_distributor")])
def test_a_move_that_breaks_the_rules_is_refused_and_changes_nothing(client, shop,
                                                                     staff_headers, target,
                                                                     code):
    root = make_member(shop)
    child = make_member(shop, upline=root)
    grandchild = make_member(shop, upline=child)
    upline = {"self": child, "descendant": grandchild,
              "frozen": make_member(shop, status="frozen")}[target]
    response = client.post(f"{DISTRIBUTORS}/{child.id}/move",
                           json={"upline_id": upline.id, "reason": "x"},
                           headers=staff_headers())
    assert response.status_code == 409
    assert response.get_json()["code"] == code
    db.session.expire_all()
    assert db.session.get(Member, (shop.id, child.id)).upline_id == root.id


def test_the_console_browses_a_team_level_by_level(client, shop, staff_headers):
    root = make_member(shop)
    children = [make_member(shop, upline=root) for _ in range(3)]
    make_member(shop, upline=children[0])
    from app.jobs import apply_team_deltas

    apply_team_deltas()
    page = client.get(f"{DISTRIBUTORS}/{root.id}/team?per_page=2",
                      headers=staff_headers()).get_json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["per_page"] == 2
    level_two = client.get(f"{DISTRIBUTORS}/{children[0].id}/team",
                           headers=staff_headers()).get_json()
    assert level_two["total"] == 1
    first = next(m for m in client.get(f"{DISTRIBUTORS}/{root.id}/team?per_page=100",
                                       headers=staff_headers()).get_json()["items"]
                 if m["id"] == children[0].id)
    assert first["team_size"] == 1 and first["direct_members"] == 1


def test_per_page_is_capped(client, shop, staff_headers):
    response = client.get(f"{DISTRIBUTORS}?per_page=1000", headers=staff_headers())
    assert response.status_code == 422 and "per_page" in response.get_json()["errors"]
