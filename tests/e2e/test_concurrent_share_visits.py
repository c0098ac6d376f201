"""50 simultaneous share visits by one new member, through gunicorn with several workers."""

from __future__ import annotations

import threading

import requests
from sqlalchemy import select

from app.extensions import db
from app.models import BindingLog, Member
from tests.factories import make_member, make_merchant, make_share_link
from tests.support.wechat import sandbox_code

VISITORS = 50


def test_fifty_concurrent_visits_bind_the_new_member_exactly_once(served_app, app_context):
    base_url, _ = served_app
    shop = make_merchant()  # permanent binding on visit: the defaults
    links = [make_share_link(make_member(shop)).token for _ in range(VISITORS)]
    login = requests.post(f"{base_url}/api/mp/v1/auth/login",
                          json={"code": sandbox_code("contested")}, timeout=10).json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    barrier = threading.Barrier(VISITORS)
    answers: list[dict] = []

    def visit(token: str) -> None:
        barrier.wait()
        response = requests.post(f"{base_url}/api/mp/v1/share-visits",
                                 json={"share_token": token}, headers=headers, timeout=30)
        answers.append({"status": response.status_code, **response.json()})

    threads = [threading.Thread(target=visit, args=(token,)) for token in links]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a["status"] for a in answers] == [200] * VISITORS
    winners = [a for a in answers if a["bound"]]
    assert len(winners) == 1
    assert sorted(a["reason"] for a in answers) == ["already_bound"] * (VISITORS - 1) + ["bound"]
    db.session.expire_all()
    member = db.session.scalars(select(Member).where(
        Member.merchant_id == shop.id, Member.user_id == login["user"]["id"])).one()
    assert member.upline_id == winners[0]["distributor_id"]
    bound_logs = db.session.scalars(select(BindingLog).where(
        BindingLog.member_id == member.id, BindingLog.outcome == "bound")).all()
    assert len(bound_logs) == 1
