"""Reports in a real browser: the consumer analysis, and exports — asked for, watched while
queued, written by the export job, downloaded and opened."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import openpyxl
from playwright.sync_api import expect

from tests.e2e.console.conftest import prepare, run_in_console, screenshot, signed_in


def _run_export_job(console_env: dict) -> None:
    """The scheduler's export job, once (the browser tests run no scheduler)."""
    run_in_console(console_env, "-m", "flask", "--app", "wsgi", "jobs", "run", "run-exports")


def _export(page, console_env: dict, *, kind: str, fmt: str) -> tuple[Path, int, str]:
    """Ask for an export on the page, see it queued, let the job write it, see the page
    offer the file, download it: (the file, the rows the page says, the file's name)."""
    page.locator(".subnav").get_by_role("link", name="导出").click()
    page.select_option("select[name=kind]", kind)
    page.select_option("select[name=format]", fmt)
    page.get_by_role("button", name="开始导出").click()
    submitted = page.locator(".flash").first.inner_text()
    export_id = re.search(r"#(\d+)", submitted).group(1)
    card = page.locator(f"article[data-export='{export_id}']")
    expect(card.locator("[data-status]")).to_have_text("排队中")
    expect(card.locator("progress")).to_be_visible()
    screenshot(page, f"exports-{kind}-queued")
    _run_export_job(console_env)
    download = card.get_by_role("link", name=re.compile("^下载"))
    expect(download).to_be_visible(timeout=20_000)  # the page's poll reloads when it is done
    expect(card.locator("[data-status]")).to_have_text("已完成")
    rows = int(re.search(r"(\d+) 行", card.inner_text()).group(1))
    screenshot(page, f"exports-{kind}-done")
    with page.expect_download() as started:
        download.click()
    return Path(started.value.path()), rows, started.value.suggested_filename


def test_finance_exports_the_orders_as_xlsx_and_the_file_opens(page, console_env):
    signed_in(page, "demo-finance")
    page.goto("/console/orders")
    newest = page.locator("article[data-order] b").first.inner_text()  # its out_trade_no
    page.goto("/console/reports")
    path, rows, name = _export(page, console_env, kind="orders", fmt="xlsx")
    assert name.endswith(".xlsx")
    with path.open("rb") as opened:  # Playwright keeps downloads under a name of its own
        sheet = openpyxl.load_workbook(opened, read_only=True).worksheets[0]
        table = [list(row) for row in sheet.iter_rows(values_only=True)]
    headers, body = table[0], table[1:]
    assert headers[:3] == ["订单ID", "订单号", "状态"]
    assert len(body) == rows > 0
    assert newest in [row[headers.index("订单号")] for row in body]


def test_the_owner_exports_the_withdrawals_as_csv_and_the_file_opens(page, console_env):
    waiting = prepare(console_env, "requested-withdrawal")["withdrawal_id"]
    signed_in(page)
    page.goto("/console/reports")
    path, rows, name = _export(page, console_env, kind="withdrawals", fmt="csv")
    assert name.endswith(".csv")
    with path.open(encoding="utf-8-sig", newline="") as opened:
        table = list(csv.reader(opened))
    headers, body = table[0], table[1:]
    assert headers[0] == "提现ID"
    assert len(body) == rows > 0
    assert str(waiting) in [row[0] for row in body]


def test_an_operator_reads_the_reports_but_cannot_export(page):
    signed_in(page, "demo-operator")
    page.get_by_role("link", name="报表", exact=True).click()
    expect(page.locator("section.chart svg.pygal-chart").first).to_be_visible()
    expect(page.locator(".subnav").get_by_role("link", name="导出")).to_have_count(0)
    screenshot(page, "reports-consumers")
    page.locator(".subnav").get_by_role("link", name="分销员业绩").click()
    expect(page.locator("h1")).to_be_visible()
    screenshot(page, "reports-performance")
    assert page.goto("/console/reports/exports").status == 403
    screenshot(page, "operator-exports-forbidden")
