"""POST /api/mp/v1/share-visits, the share token on sign-in, and my team."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BindingLog, Member, User, Visit
from tests.factories import make_member, make_share_link
from tests.support.wechat import sandbox_code

pytestmark = pytest.mark.redis_topologies

VISITS = "/api/mp/v1/share-visits"


def user_id_of(login_body) -> int:
    return login_body["user"]["id"]


def membership(merchant_id: int, user_id: int) -> Member:
    db.session.expire_all()
    return db.session.scalars(select(Member).where(Member.merchant_id == merchant_id,
                                                   Member.user_id == user_id)).one()


def test_a_new_member_is_bound_by_the_first_share_and_only_that_one(client, shop, login):
    first, second = make_member(shop), make_member(shop)
    visitor = login("newbie")
    headers = {"Authorization": f"Bearer {visitor['token']}"}
    bound = client.post(VISITS, json={"share_token": make_share_link(first).token},
                        headers=headers)
    assert bound.status_code == 200
    assert bound.get_json() == {"merchant_id": shop.id, "distributor_id": first.id,
                                "bound": True, "reason": "bound"}
    again = client.post(VISITS, json={"share_token": make_share_link(second).token},
                        headers=headers)
    assert again.get_json()["bound"] is False and again.get_json()["reason"] == "already_bound"
    assert membership(shop.id, user_id_of(visitor)).upline_id == first.id
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 2
    outcomes = db.session.scalars(select(BindingLog.outcome).order_by(BindingLog.id)).all()
    assert outcomes == ["bound", "refused"]


def test_the_raw_url_encoded_scene_works_too(client, shop, auth_headers):
    link = make_share_link(make_member(shop))
    response = client.post(VISITS, json={"scene": quote(link.token, safe="")},
                           headers=auth_headers("scene-user"))
    assert response.get_json()["reason"] == "bound"


def test_sharing_with_oneself_is_refused(client, shop, login):
    me = login("self-sharer")
    member = make_member(shop, user=db.session.get(User, user_id_of(me)))
    response = client.post(VISITS, json={"share_token": make_share_link(member).token},
                           headers={"Authorization": f"Bearer {me['token']}"})
    assert response.get_json() == {"merchant_id": shop.id, "distributor_id": member.id,
                                   "bound": False, "reason": "self"}


def test_an_inactive_distributors_link_does_not_bind(client, shop, auth_headers):
    link = make_share_link(make_member(shop, status="frozen"))
    response = client.post(VISITS, json={"share_token": link.token},
                           headers=auth_headers("someone"))
    assert response.get_json()["reason"] == "inactive_distributor"


def test_a_visit_needs_a_scene_or_a_token(client, auth_headers):
    response = client.post(VISITS, json={}, headers=auth_headers())
    assert response.status_code == 422 and "share_token" in response.get_json()["errors"]


def test_an_unknown_token_is_a_404(client, shop, auth_headers):
    for token in ("zz-AAAAAAAAAA", "not-a-token", "1-AAAAAAAAAA"):
        response = client.post(VISITS, json={"share_token": token}, headers=auth_headers())
        assert response.status_code == 404
        assert response.get_json()["code"] == "share_link_not_found"


def test_signing_in_with_a_share_token_binds(client, shop):
    distributor = make_member(shop)
    link = make_share_link(distributor)
    response = client.post("/api/mp/v1/auth/login",
                           json={"code": sandbox_code("arrived-by-link"),
                                 "share_token": link.token})
    assert response.status_code == 200
    assert membership(shop.id, user_id_of(response.get_json())).upline_id == distributor.id


def test_signing_in_with_a_stale_share_token_still_signs_in(client, shop):
    response = client.post("/api/mp/v1/auth/login",
                           json={"code": sandbox_code("stale-link"),
                                 "share_token": "zz-AAAAAAAAAA"})
    assert response.status_code == 200


def test_my_team_shows_my_direct_members_and_only_my_own_team(client, shop, login):
    from app.jobs import apply_team_deltas

    me = login("leader")
    leader = make_member(shop, user=db.session.get(User, user_id_of(me)))
    child = make_member(shop, upline=leader)
    make_member(shop, upline=child)
    stranger = make_member(shop)
    apply_team_deltas()
    headers = {"Authorization": f"Bearer {me['token']}"}
    team = client.get(f"/api/mp/v1/merchants/{shop.id}/team", headers=headers).get_json()
    assert [m["id"] for m in team["items"]] == [child.id]
    assert team["items"][0]["team_size"] == 1
    down = client.get(f"/api/mp/v1/merchants/{shop.id}/team?member_id={child.id}",
                      headers=headers).get_json()
    assert down["total"] == 1
    outside = client.get(f"/api/mp/v1/merchants/{shop.id}/team?member_id={stranger.id}",
                         headers=headers)
    assert outside.status_code == 404
    mine = client.get(f"/api/mp/v1/merchants/{shop.id}/distributor", headers=headers).get_json()
    assert (mine["direct_members"], mine["team_size"]) == (1, 2)


def test_visits_are_counted_once_per_visitor_in_redis(client, shop, auth_headers):
    from app.extensions import redis
    from app.integrations import redis_keys, visit_counters

    distributor = make_member(shop)
    link = make_share_link(distributor)
    for user_key in ("v1", "v1", "v2"):
        client.post(VISITS, json={"share_token": link.token}, headers=auth_headers(user_key))
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 3
    assert visit_counters.unique_visitors(
        redis.client, redis_keys.unique_visitors_of_link(shop.id, link.id)) == 2
    assert visit_counters.unique_visitors(
        redis.client, redis_keys.unique_visitors_of_distributor(shop.id, distributor.id)) == 2
