"""Every section of the console opens for the owner and fits the screen at a phone's width and
a desktop's (no sideways scrolling of the page: wide tables scroll inside their box), and the
platform administrator's area."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.console.conftest import PASSWORD, VIEWPORTS, screenshot, signed_in


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_every_section_opens_and_fits_the_screen(page):
    signed_in(page)
    links = page.locator("nav.tabs a")
    sections = [(links.nth(n).inner_text(), links.nth(n).get_attribute("href"))
                for n in range(links.count())]
    assert {"概览", "分销员", "订单", "提现", "报表", "风控", "设置"} <= {s[0] for s in sections}
    for label, href in sections:
        answer = page.goto(href)
        assert answer.status == 200, href
        expect(page.locator("nav.tabs a.on")).to_have_text(label)
        assert _page_width(page) <= VIEWPORTS[page.viewport_name]["width"], href
        screenshot(page, "section-" + href.rstrip("/").rsplit("/", 1)[-1])


def test_the_owner_opens_the_demo_levels_and_its_risk_flag(page):
    signed_in(page)
    page.goto("/console/settings/levels")
    levels = page.locator("article[data-level]")
    expect(levels).to_have_count(2)  # the demo's 银牌 and 金牌
    screenshot(page, "levels")
    levels.filter(has_text="金牌").get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("金牌")
    screenshot(page, "level")
    page.goto("/console/risk")
    flag = page.locator("article[data-flag]").first  # the demo's burst of visits
    expect(flag).to_be_visible()
    screenshot(page, "risk")
    flag.get_by_role("link", name=re.compile("›$")).click()
    expect(page.get_by_role("link", name="‹ 风控")).to_be_visible()
    screenshot(page, "risk-flag")


def test_the_sign_in_page_fits_the_screen(page):
    page.goto("/console/login")
    assert _page_width(page) <= VIEWPORTS[page.viewport_name]["width"]
    screenshot(page, "sign-in")


def test_the_platform_admin_sees_the_supplier_application_waiting(page):
    page.goto("/console/admin/login")
    screenshot(page, "admin-sign-in")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/console/admin/merchants")
    application = page.locator("article[data-merchant]", has_text="山野茶坊")
    expect(application).to_contain_text("联系人 林山")
    expect(application.get_by_role("button", name="通过")).to_be_visible()
    assert _page_width(page) <= VIEWPORTS[page.viewport_name]["width"]
    screenshot(page, "admin-merchants")
