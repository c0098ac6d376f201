"""Withdrawals in a real browser: finance approves one and it goes to WeChat (the sandbox)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.console.conftest import prepare, screenshot, signed_in


def test_finance_approves_a_withdrawal_and_it_waits_for_the_distributor_to_confirm(
        page, console_env):
    withdrawal_id = prepare(console_env, "requested-withdrawal")["withdrawal_id"]
    signed_in(page, "demo-finance")
    page.get_by_role("link", name="提现", exact=True).click()
    card = page.locator(f"article[data-withdrawal='{withdrawal_id}']")
    expect(card.locator(".status")).to_have_text("待审核")
    screenshot(page, "withdrawals-requested")
    card.get_by_role("button", name="通过并打款").click()
    expect(page.locator(".flash")).to_have_text("已通过，等待分销员在微信中确认收款。")
    expect(card).to_have_count(0)  # back on the review queue, which no longer has it
    page.goto("/console/withdrawals?status=transferring")
    expect(card.locator(".status")).to_have_text("待确认收款")
    expect(card.get_by_role("button", name="通过并打款")).to_have_count(0)
    screenshot(page, "withdrawals-transferring")


def test_finance_sees_the_withdrawals_but_not_the_program_sections(page):
    signed_in(page, "demo-finance")
    sections = page.locator("nav.tabs a").all_inner_texts()
    assert "提现" in sections
    assert "分销员" not in sections and "设置" not in sections
