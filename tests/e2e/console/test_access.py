"""Who may open what, checked on the server: another merchant's staff find nothing of the demo
shop's (404, as if it did not exist), and an operator reaches no finance action (403)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.console.conftest import csrf_token, prepare, screenshot, signed_in


def test_another_merchants_owner_finds_none_of_the_demo_shops_pages(page, console_env,
                                                                    other_shop):
    demo = prepare(console_env, "demo-records")
    signed_in(page, other_shop["username"])
    screenshot(page, "other-shop-dashboard")
    for path in (f"/console/distributors/{demo['member_id']}",
                 f"/console/distributors/{demo['member_id']}/team"):
        assert page.goto(path).status == 404
        expect(page.locator("h1")).to_have_text("没有找到")
    screenshot(page, "other-shop-not-found")
    page.goto("/console/orders")
    expect(page.get_by_text("没有订单。")).to_be_visible()  # its own list: empty
    page.goto("/console/withdrawals")
    expect(page.get_by_text("没有提现记录。")).to_be_visible()


def test_another_merchants_owner_cannot_act_on_the_demo_shops_records(page, console_env,
                                                                      other_shop):
    demo = prepare(console_env, "demo-records")
    signed_in(page, other_shop["username"])
    token = csrf_token(page)
    actions = {f"/console/orders/{demo['order_id']}/shipment": {"carrier": "x",
                                                                "tracking_no": "y"},
               f"/console/withdrawals/{demo['withdrawal_id']}/approve": {},
               f"/console/distributors/{demo['member_id']}/freeze": {"reason": "试探"}}
    for path, form in actions.items():
        answer = page.request.post(path, form={"csrf_token": token, **form})
        assert answer.status == 404, path


def test_an_operator_cannot_open_the_withdrawals(page):
    signed_in(page, "demo-operator")
    expect(page.locator("nav.tabs a", has_text="提现")).to_have_count(0)
    answer = page.goto("/console/withdrawals")
    assert answer.status == 403
    expect(page.locator("h1")).to_have_text("无权访问")
    screenshot(page, "operator-withdrawals-forbidden")


def test_an_operator_cannot_post_any_finance_action(page, console_env):
    pending = prepare(console_env, "requested-withdrawal")["withdrawal_id"]
    order = prepare(console_env, "demo-records")["order_id"]
    signed_in(page, "demo-operator")
    token = csrf_token(page)
    actions = {f"/console/withdrawals/{pending}/approve": {},
               f"/console/withdrawals/{pending}/reject": {"reason": "试探"},
               f"/console/withdrawals/{pending}/mark-paid": {"reference": "X1"},
               f"/console/orders/{order}/refunds": {"amount": "1.00", "reason": "试探"}}
    for path, form in actions.items():
        answer = page.request.post(path, form={"csrf_token": token, **form})
        assert answer.status == 403, path
    assert prepare(console_env, "requested-withdrawal")["withdrawal_id"] == pending


def test_an_operator_sees_the_money_rules_locked_and_cannot_save_them(page):
    signed_in(page, "demo-operator")
    page.goto("/console/settings")
    expect(page.locator("input[name=rate_1]")).to_be_disabled()
    expect(page.locator("#payment")).to_have_count(0)  # the WeChat Pay keys: owner only
    screenshot(page, "operator-settings")
    answer = page.request.post("/console/settings/distribution",
                               form={"csrf_token": csrf_token(page), "rate_1": "50"})
    assert answer.status == 403
    assert "佣金与结算规则只有店主可以修改。" in answer.text()


def test_a_post_without_the_csrf_token_is_refused(page, console_env):
    pending = prepare(console_env, "pending-applicant")["member_id"]
    signed_in(page)
    answer = page.request.post(f"/console/distributors/{pending}/approve", form={})
    assert answer.status == 400
    assert "页面已过期" in answer.text()
    assert prepare(console_env, "pending-applicant")["member_id"] == pending
