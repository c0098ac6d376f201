"""Orders in a real browser: shipping a paid order."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.console.conftest import prepare, screenshot, signed_in


def test_the_owner_ships_a_paid_order_and_it_moves_to_shipped(page, console_env):
    order_id = prepare(console_env, "paid-order")["order_id"]
    tracking_no = f"SF-E2E-{order_id}-{page.viewport_name}"
    signed_in(page)
    page.goto("/console/orders?status=paid")
    card = page.locator(f"article[data-order='{order_id}']")
    expect(card.locator(".status")).to_have_text("待发货")
    screenshot(page, "orders-to-ship")
    card.locator("input[name=carrier]").fill("顺丰速运")
    card.locator("input[name=tracking_no]").fill(tracking_no)
    card.get_by_role("button", name="发货").click()
    expect(page.locator(".flash")).to_have_text("已发货。")
    page.goto("/console/orders?status=paid")
    expect(card).to_have_count(0)
    page.goto("/console/orders?status=shipped")
    expect(card.locator(".status")).to_have_text("已发货")
    expect(card).to_contain_text(f"顺丰速运 {tracking_no}")
    expect(card.locator("input[name=tracking_no]")).to_have_count(0)  # no second shipment
    screenshot(page, "orders-shipped")
