"""The dashboard in a real browser: the range's figures and the daily charts drawn on the
server as SVG."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.console.conftest import screenshot, signed_in


def test_the_dashboard_draws_both_daily_charts_with_a_line_per_series(page):
    signed_in(page)
    charts = page.locator("section.chart:not(#funnel) svg.pygal-chart")
    expect(charts).to_have_count(2)
    assert charts.nth(0).locator("text.plot_title").text_content() == "每日成交额（元）"
    assert charts.nth(1).locator("text.plot_title").text_content() == "每日订单与新会员"
    for chart in (charts.nth(0), charts.nth(1)):
        lines = chart.locator("g.series > path.line")
        assert lines.count() == 2  # two series per chart, each drawn
        assert all(lines.nth(n).get_attribute("d") for n in range(2))
        assert chart.bounding_box()["width"] > 0
    screenshot(page, "dashboard-charts")


def test_the_dashboard_draws_the_funnel_beside_its_table(page):
    signed_in(page)
    funnel = page.locator("#funnel")
    assert funnel.locator("svg.pygal-chart text.plot_title").text_content() == "转化漏斗"
    expect(funnel.locator("tr[data-step=visits] td").first).to_have_text("访问次数")
    paid = funnel.locator("tr[data-step=paid] td").nth(1).inner_text()
    assert int(paid) > 0  # the demo's orders paid in the range
    screenshot(page, "dashboard-funnel")


def test_the_dashboard_shows_the_demo_shops_sales_of_the_range(page):
    signed_in(page)
    figures = page.locator("#figures [data-figure]")
    expect(figures).to_have_count(12)
    gmv = page.locator("[data-figure=gmv_fen] b").inner_text()
    assert gmv.startswith("¥") and gmv != "¥0.00"  # the demo's orders of the last 30 days
    assert int(page.locator("[data-figure=orders_paid] b").inner_text()) > 0


def test_choosing_a_week_shows_seven_days_against_the_week_before(page):
    signed_in(page)
    end = page.locator("input[name=to]").input_value()
    page.fill("input[name=from]", _days_before(end, 6))
    page.get_by_role("button", name="查看").click()
    expect(page.locator("main p.hint").first).to_contain_text("（7 天），与前 7 天")
    screenshot(page, "dashboard-week")


def _days_before(iso_day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(iso_day) - timedelta(days=days)).isoformat()
