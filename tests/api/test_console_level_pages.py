"""The console's level and risk pages through the test client: level definitions by role
(rates are the owner's), a member's level by hand with a reason, the member page's level
history and risk flags, and flags reviewed and released — CSRF on every form, and another
merchant's ids not found."""

from __future__ import annotations

import pytest

from app.database import utcnow
from app.extensions import db
from app.models import Level, Member, RiskFlag
from app.services import level_definitions
from tests.api.test_console_pages import csrf_token, sign_in
from tests.api.test_risk import self_referral
from tests.factories import make_member

LEVELS = "/console/settings/levels"
SILVER = {"name": "白银", "weight": 10, "tier_rates_bps": [1500, 700],
          "upgrade_rule": {"combine": "any", "conditions": [
              {"metric": "direct_members", "threshold": 2, "window_days": 0}]}}
FORM = {"name": "黄金", "weight": "20", "rate_1": "18", "rate_2": "7.5",
        "upgrade_combine": "any", "upgrade_metric_0": "direct_members",
        "upgrade_threshold_0": "5", "upgrade_window_0": "0",
        "upgrade_metric_1": "direct_sales_fen", "upgrade_threshold_1": "1000.50",
        "upgrade_window_1": "30", "upgrade_metric_2": "", "upgrade_threshold_2": "9",
        "keep_combine": "all", "keep_metric_0": "personal_sales_fen",
        "keep_threshold_0": "100", "keep_window_0": "90"}


@pytest.fixture
def silver(shop) -> Level:
    return level_definitions.create_level(merchant_id=shop.id, fields=dict(SILVER),
                                          staff_id=None)


def post(client, path: str, data: dict, *, token_from: str = "/console/dashboard"):
    return client.post(path, data={"csrf_token": csrf_token(client, token_from), **data})


def stored(model, merchant, id_: int):
    db.session.expire_all()
    return db.session.get(model, (merchant.id, id_))


# -- level definitions -------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["owner1", "operator1", "finance1"])
def test_every_role_reads_the_levels_and_their_conditions(client, silver, username):
    sign_in(client, username)
    html = client.get(LEVELS).get_data(as_text=True)
    assert "白银" in html and "1 级 15%" in html and "满足任一：累计直属成员数 ≥ 2" in html
    assert ('id="new-level"' in html) is (username == "owner1")
    assert client.get(f"{LEVELS}/{silver.id}").status_code == 200


def test_the_owner_creates_a_level_from_the_form_in_percent_and_yuan(client, shop):
    sign_in(client)
    assert post(client, LEVELS, FORM, token_from=LEVELS).status_code == 302
    [level] = db.session.query(Level).filter_by(merchant_id=shop.id).all()
    assert (level.name, level.weight, level.tier_rates_bps) == ("黄金", 20, [1800, 750])
    assert level.upgrade_rule == {"combine": "any", "conditions": [
        {"metric": "direct_members", "threshold": 5, "window_days": 0},
        {"metric": "direct_sales_fen", "threshold": 100_050, "window_days": 30}]}
    assert level.keep_rule == {"combine": "all", "conditions": [
        {"metric": "personal_sales_fen", "threshold": 10_000, "window_days": 90}]}
    # The form shows the stored values back in yuan.
    assert 'value="1000.50"' in client.get(f"{LEVELS}/{level.id}").get_data(as_text=True)


def test_a_level_whose_rates_exceed_the_programs_cap_is_refused(client, shop):
    sign_in(client)
    response = post(client, LEVELS, {**FORM, "rate_1": "60"})
    assert response.status_code == 422 and "tier_rates_bps" in response.get_data(as_text=True)
    assert db.session.query(Level).filter_by(merchant_id=shop.id).count() == 0


def test_an_operator_changes_conditions_but_not_rates(client, silver, shop):
    sign_in(client, "operator1")
    form = {key: value for key, value in FORM.items() if not key.startswith("rate_")}
    assert post(client, f"{LEVELS}/{silver.id}", form).status_code == 302
    level = stored(Level, shop, silver.id)
    assert (level.name, level.tier_rates_bps) == ("黄金", [1500, 700])
    assert level.keep_rule["conditions"][0]["threshold"] == 10_000
    assert post(client, f"{LEVELS}/{silver.id}", {**form, "rate_1": "30"}).status_code == 403
    assert stored(Level, shop, silver.id).tier_rates_bps == [1500, 700]
    assert post(client, LEVELS, FORM).status_code == 403
    assert post(client, f"{LEVELS}/{silver.id}/delete", {}).status_code == 403


def test_finance_cannot_change_a_level(client, silver, shop):
    sign_in(client, "finance1")
    assert post(client, f"{LEVELS}/{silver.id}", {"name": "x", "weight": "3"}).status_code == 403
    assert stored(Level, shop, silver.id).name == "白银"


def test_a_level_form_without_its_csrf_token_changes_nothing(client, silver, shop):
    sign_in(client)
    response = client.post(f"{LEVELS}/{silver.id}", data={**FORM})
    assert response.status_code == 400
    assert stored(Level, shop, silver.id).name == "白银"


def test_the_owner_deletes_a_level_only_when_nobody_holds_it(client, silver, shop):
    holder = make_member(shop)
    level_definitions.change_member_level(merchant_id=shop.id, member_id=holder.id,
                                          level_id=silver.id, reason="试用", staff_id=1,
                                          now=utcnow())
    sign_in(client)
    assert post(client, f"{LEVELS}/{silver.id}/delete", {}).status_code == 409
    level_definitions.change_member_level(merchant_id=shop.id, member_id=holder.id,
                                          level_id=None, reason="结束", staff_id=1,
                                          now=utcnow())
    assert post(client, f"{LEVELS}/{silver.id}/delete", {}).status_code == 302
    assert stored(Level, shop, silver.id) is None


def test_another_merchants_level_is_not_found(client, shop, other_shop):
    foreign = level_definitions.create_level(merchant_id=other_shop.id, fields=dict(SILVER),
                                             staff_id=None)
    sign_in(client)
    assert client.get(f"{LEVELS}/{foreign.id}").status_code == 404
    assert post(client, f"{LEVELS}/{foreign.id}", FORM).status_code == 404
    assert post(client, f"{LEVELS}/{foreign.id}/delete", {}).status_code == 404
    assert stored(Level, other_shop, foreign.id).name == "白银"


# -- a member's level by hand ------------------------------------------------------------------

def test_the_owner_moves_a_member_to_a_level_and_the_member_page_shows_why(client, shop,
                                                                            silver):
    member = make_member(shop)
    sign_in(client)
    path = f"/console/distributors/{member.id}"
    response = post(client, f"{path}/level", {"level_id": str(silver.id), "reason": "大客户"})
    assert response.status_code == 302 and response.headers["Location"] == path
    assert stored(Member, shop, member.id).level_id == silver.id
    html = client.get(path).get_data(as_text=True)
    assert "当前：<b>白银</b>" in html and "手动调整 · 基础等级 → 白银 · 大客户" in html
    assert post(client, f"{path}/level", {"level_id": "", "reason": "到期"}).status_code == 302
    assert stored(Member, shop, member.id).level_id is None


@pytest.mark.parametrize("username", ["operator1", "finance1"])
def test_only_the_owner_changes_a_members_level(client, shop, silver, username):
    member = make_member(shop)
    sign_in(client, username)
    response = post(client, f"/console/distributors/{member.id}/level",
                    {"level_id": str(silver.id), "reason": "试用"})
    assert response.status_code == 403
    assert stored(Member, shop, member.id).level_id is None


def test_a_manual_level_change_needs_a_reason(client, shop, silver):
    member = make_member(shop)
    sign_in(client)
    response = post(client, f"/console/distributors/{member.id}/level",
                    {"level_id": str(silver.id), "reason": "  "})
    assert response.status_code == 422 and "reason" in response.get_data(as_text=True)
    assert stored(Member, shop, member.id).level_id is None


def test_another_merchants_member_keeps_its_level(client, shop, other_shop, silver):
    foreign = make_member(other_shop)
    sign_in(client)
    response = post(client, f"/console/distributors/{foreign.id}/level",
                    {"level_id": str(silver.id), "reason": "试用"})
    assert response.status_code == 404
    assert stored(Member, other_shop, foreign.id).level_id is None


# -- risk flags --------------------------------------------------------------------------------

@pytest.fixture
def flag(shop) -> RiskFlag:
    flagged = self_referral(shop)
    return db.session.query(RiskFlag).filter_by(merchant_id=shop.id,
                                                member_id=flagged.id).one()


@pytest.mark.parametrize("username", ["owner1", "operator1", "finance1"])
def test_every_role_sees_open_flags_with_their_evidence(client, flag, username):
    sign_in(client, username)
    html = client.get("/console/risk").get_data(as_text=True)
    assert f'data-flag="{flag.id}"' in html and "疑似自买自推" in html
    assert "共用微信 UnionID" in html
    detail = client.get(f"/console/risk/{flag.id}").get_data(as_text=True)
    assert ('id="release"' in detail) is (username == "owner1")


def test_the_member_page_lists_the_members_flags(client, flag):
    sign_in(client, "operator1")
    html = client.get(f"/console/distributors/{flag.member_id}").get_data(as_text=True)
    assert "风险提示（1）" in html and f'href="/console/risk/{flag.id}"' in html


def test_released_flags_are_listed_apart_from_open_ones(client, flag):
    sign_in(client)
    html = client.get("/console/risk", query_string={"status": "released"})
    assert f'data-flag="{flag.id}"' not in html.get_data(as_text=True)


def test_the_owner_releases_a_flag_with_a_reason_and_the_log_shows_it(client, shop, flag):
    sign_in(client)
    path = f"/console/risk/{flag.id}"
    assert post(client, f"{path}/release", {"reason": ""}).status_code == 422
    assert stored(RiskFlag, shop, flag.id).status == "open"
    assert post(client, f"{path}/release", {"reason": "已核实为家人"}).status_code == 302
    released = stored(RiskFlag, shop, flag.id)
    assert (released.status, released.release_reason) == ("released", "已核实为家人")
    assert "解除 · 员工" in client.get(path).get_data(as_text=True)
    assert post(client, f"{path}/release", {"reason": "再次"}).status_code == 409


@pytest.mark.parametrize("username", ["operator1", "finance1"])
def test_only_the_owner_releases_a_flag(client, shop, flag, username):
    sign_in(client, username)
    response = post(client, f"/console/risk/{flag.id}/release", {"reason": "看过了"})
    assert response.status_code == 403
    assert stored(RiskFlag, shop, flag.id).status == "open"


def test_a_release_without_its_csrf_token_changes_nothing(client, shop, flag):
    sign_in(client)
    response = client.post(f"/console/risk/{flag.id}/release", data={"reason": "看过了"})
    assert response.status_code == 400
    assert stored(RiskFlag, shop, flag.id).status == "open"


def test_another_merchants_flag_is_not_found(client, shop, other_shop):
    foreign = self_referral(other_shop)
    [flag] = db.session.query(RiskFlag).filter_by(merchant_id=other_shop.id,
                                                  member_id=foreign.id).all()
    sign_in(client)
    assert client.get(f"/console/risk/{flag.id}").status_code == 404
    assert post(client, f"/console/risk/{flag.id}/release", {"reason": "x"}).status_code == 404
    assert stored(RiskFlag, other_shop, flag.id).status == "open"
