"""Distributors in a real browser: reviewing an application, a member's page, the team
browser."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.console.conftest import prepare, screenshot, signed_in


def test_the_owner_approves_a_pending_application_from_the_list(page, console_env):
    applicant = prepare(console_env, "pending-applicant")["member_id"]
    signed_in(page)
    page.goto("/console/distributors?status=pending")
    row = page.locator("tbody tr").filter(
        has=page.locator(f"a[href='/console/distributors/{applicant}']"))
    expect(row.locator(".status")).to_have_text("待审核")
    screenshot(page, "distributors-pending")
    row.get_by_role("button", name="通过", exact=True).click()
    expect(page.locator(".flash")).to_have_text("已通过申请。")
    expect(row).to_have_count(0)  # back on the pending list, which no longer has it
    page.goto(f"/console/distributors/{applicant}")
    expect(page.locator("h1 .status")).to_have_text("分销员")
    expect(page.get_by_text("待审核 → 分销员")).to_be_visible()  # the status history
    screenshot(page, "distributor-member")


def test_the_team_browser_goes_down_and_back_up_one_level_at_a_time(page):
    signed_in(page)
    page.goto("/console/distributors?q=小波")
    screenshot(page, "distributors-search")
    page.get_by_role("link", name="小波", exact=True).click()
    expect(page.locator("h1")).to_contain_text("小波")
    expect(page.locator("main section.card").first).to_contain_text("上级：阿丽")
    page.get_by_role("link", name="逐级查看团队 ›").click()
    expect(page.locator("h1")).to_have_text("小波 的直属成员")
    expect(page.get_by_role("link", name="大卫", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="艾琳", exact=True)).to_be_visible()
    screenshot(page, "distributors-team")
    page.get_by_role("link", name="‹ 上一级").click()
    expect(page.locator("h1")).to_have_text("阿丽 的直属成员")
