"""Settings in a real browser: the commission preview follows the rates being typed, and a
saved rate is kept."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.console.conftest import screenshot, signed_in


def test_typing_rates_updates_the_preview_of_a_hundred_yuan_order(page):
    signed_in(page)
    page.goto("/console/settings")
    screenshot(page, "settings")
    page.fill("input[name=rate_1]", "12.5")
    page.fill("input[name=rate_2]", "4")
    expect(page.locator("#preview-tiers li")).to_have_text(
        ["1 级：¥12.50（12.50%）", "2 级：¥4.00（4%）"])
    expect(page.locator("#preview-total")).to_have_text("¥16.50")
    screenshot(page, "settings-preview")


def test_a_rate_over_the_cap_is_explained_in_the_preview(page):
    signed_in(page)
    page.goto("/console/settings")
    page.fill("input[name=max_total]", "30")
    page.fill("input[name=rate_1]", "40")
    expect(page.locator("#preview-error")).to_be_visible()
    screenshot(page, "settings-preview-refused")


def test_the_owner_saves_a_new_rate_and_the_page_keeps_it(page):
    signed_in(page)
    page.goto("/console/settings")
    first_rate = page.locator("input[name=rate_1]")
    usual = first_rate.input_value()
    try:
        first_rate.fill("11")
        page.get_by_role("button", name="保存规则").click()
        expect(page.locator(".flash").first).to_contain_text("规则已保存")
        expect(first_rate).to_have_value("11")
        expect(page.locator("#preview-tiers li").first).to_have_text("1 级：¥11.00（11%）")
        screenshot(page, "settings-saved")
    finally:
        page.goto("/console/settings")
        first_rate.fill(usual)
        page.get_by_role("button", name="保存规则").click()
        expect(first_rate).to_have_value(usual)
