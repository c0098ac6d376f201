"""The console's dashboard additions (funnel, rankings), reports (consumer analysis,
performance per distributor) and exports through the test client: what each role may open
and do, CSRF, and another merchant's exports. The figures themselves are checked against the
raw tables in tests/integration; here they are checked to reach the page."""

from __future__ import annotations

import csv
import io
import re

import pytest

from app.database import utcnow
from app.extensions import db
from app.jobs import run_exports
from app.models import Export
from app.services import exports as export_service
from tests.api.test_console_pages import csrf_token, sign_in
from tests.api.test_orders import place_paid_order

EXPORTS = "/console/reports/exports"


@pytest.fixture
def paid(client, shop, chain, pay_account, add_product, sandbox_url) -> dict:
    """carol paid 100 yuan through WeChat (the sandbox); bob earns 10%, alice 5%."""
    return place_paid_order(client, shop, chain, pay_account(), sandbox_url,
                            add_product(price_fen=10_000))


def page_text(client, path: str, **query) -> str:
    response = client.get(path, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def section(html: str, element_id: str) -> str:
    """The markup of the element with ``element_id`` up to the end of its section."""
    start = html.index(f'id="{element_id}"')
    return html[start:html.index("</section>", start)]


def exports_of(shop) -> list[Export]:
    db.session.expire_all()
    return list(db.session.query(Export).filter_by(merchant_id=shop.id).order_by(Export.id))


# -- the dashboard -----------------------------------------------------------------------------

def test_the_dashboard_shows_the_funnel_with_its_conversions(client, paid):
    sign_in(client, "finance1")
    funnel = section(page_text(client, "/console/dashboard"), "funnel")
    assert "<svg" in funnel and "<script" not in funnel
    paid_row = re.search(r'data-step="paid"><td>支付订单</td><td>(\d+)</td><td>([^<]+)</td>',
                         funnel)
    # One order created, one paid: 100% of the step before.
    assert paid_row.groups() == ("1", "100%")


def test_the_dashboard_ranks_this_months_distributors(client, chain, paid):
    sign_in(client)
    rankings = section(page_text(client, "/console/dashboard"), "rankings")
    bob = f'/console/distributors/{chain["bob"]["member"].id}"'
    sales, commission, new_members = rankings.split('<div class="card">')[1:]
    assert bob in sales and "¥100.00" in sales
    # bob earned 10% as tier 1, alice 5% as tier 2: bob leads.
    assert commission.index(bob) < commission.index(
        f'/console/distributors/{chain["alice"]["member"].id}"')
    assert "¥10.00" in commission and "¥5.00" in commission


def test_finance_sees_the_rankings_without_links_to_member_pages(client, paid):
    sign_in(client, "finance1")
    rankings = section(page_text(client, "/console/dashboard"), "rankings")
    assert "¥100.00" in rankings and "/console/distributors/" not in rankings


# -- reports -----------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["owner1", "operator1", "finance1"])
def test_every_role_reads_the_consumer_analysis(client, paid, username):
    sign_in(client, username)
    html = page_text(client, "/console/reports")
    assert re.search(r'data-figure="buyers"><small>买家</small><b>1</b>', html)
    assert re.search(r"<td>广东省</td><td>深圳市</td><td>1</td>", section(html, "regions"))
    assert html.count("<svg") == 2  # by hour and by weekday


@pytest.mark.parametrize("username", ["owner1", "operator1", "finance1"])
def test_every_role_reads_the_performance_of_each_distributor(client, chain, paid, username):
    sign_in(client, username)
    html = page_text(client, "/console/reports/performance")
    row = re.search(rf'data-member="{chain["bob"]["member"].id}">(.*?)</tr>', html, re.DOTALL)
    cells = re.findall(r"<td>([^<]*)</td>", row.group(1).split("</td>", 1)[1])  # after the name
    assert cells[:4] == ["1", "¥100.00", "¥10.00", "¥0.00"]  # orders, sales, earned, settled


def test_the_performance_filters_to_one_distributor(client, chain, paid):
    sign_in(client)
    html = page_text(client, "/console/reports/performance",
                     distributor_id=chain["alice"]["member"].id)
    assert re.findall(r'data-member="(\d+)"', html) == [str(chain["alice"]["member"].id)]


def test_a_report_date_that_is_no_date_is_refused_by_name(client, shop):
    sign_in(client)
    response = client.get("/console/reports", query_string={"from": "2026-02-30"})
    assert response.status_code == 422 and "from" in response.get_data(as_text=True)


# -- exports -----------------------------------------------------------------------------------

def ask(client, token: str | None, **fields):
    data = {"kind": "orders", "format": "csv", **fields}
    if token is not None:
        data["csrf_token"] = token
    return client.post(EXPORTS, data=data)


def test_finance_asks_for_an_export_watches_it_and_downloads_the_file(client, shop, paid):
    sign_in(client, "finance1")
    response = ask(client, csrf_token(client, EXPORTS), **{"from": "2020-01-01", "to": ""})
    assert response.status_code == 302
    [export] = exports_of(shop)
    assert (export.kind, export.format, export.status) == ("orders", "csv", "queued")
    assert export.params == {"from": "2020-01-01", "to": None}
    assert f'data-progress="{EXPORTS}/{export.id}/progress"' in page_text(client, EXPORTS)
    assert client.get(f"{EXPORTS}/{export.id}/progress").get_json()["status"] == "queued"
    assert client.get(f"{EXPORTS}/{export.id}/file").status_code == 409

    assert run_exports() == {"exported": 1, "failed": 0}
    progress = client.get(f"{EXPORTS}/{export.id}/progress").get_json()
    assert (progress["status"], progress["percent"], progress["rows_written"]) == ("done", 100, 1)
    assert f'href="{EXPORTS}/{export.id}/file"' in page_text(client, EXPORTS)
    download = client.get(f"{EXPORTS}/{export.id}/file")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename=orders-20200101-all-{export.id}.csv")
    rows = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[1][1] == paid["out_trade_no"]


def test_the_income_report_takes_the_quarter_and_the_others_the_dates(client, shop):
    sign_in(client)
    token = csrf_token(client, EXPORTS)
    assert ask(client, token, kind="income", format="xlsx", quarter="2026Q1",
               **{"from": "2026-01-05"}).status_code == 302
    assert ask(client, token, kind="withdrawals", quarter="2026Q1",
               **{"to": "2026-03-31"}).status_code == 302
    income, withdrawals = exports_of(shop)
    assert (income.kind, income.params) == ("income", {"quarter": "2026Q1"})
    assert withdrawals.params == {"from": None, "to": "2026-03-31"}


@pytest.mark.parametrize("fields", [{"kind": "everything"}, {"format": "pdf"},
                                    {"kind": "income", "quarter": "2026Q5"},
                                    {"from": "2026-13-01"}])
def test_an_export_asked_for_wrongly_is_refused_and_not_queued(client, shop, fields):
    sign_in(client, "finance1")
    assert ask(client, csrf_token(client, EXPORTS), **fields).status_code == 422
    assert exports_of(shop) == []


def test_an_export_form_without_its_csrf_token_queues_nothing(client, shop):
    sign_in(client, "finance1")
    assert ask(client, None).status_code == 400
    assert exports_of(shop) == []


def test_operators_can_neither_open_nor_ask_for_nor_download_exports(client, shop):
    export = export_service.create_export(merchant_id=shop.id, staff_id=None, kind="orders",
                                          fmt="csv", now=utcnow())
    sign_in(client, "operator1")
    token = csrf_token(client, "/console/reports")
    assert client.get(EXPORTS).status_code == 403
    assert ask(client, token).status_code == 403
    assert client.get(f"{EXPORTS}/{export.id}/progress").status_code == 403
    assert client.get(f"{EXPORTS}/{export.id}/file").status_code == 403
    assert len(exports_of(shop)) == 1
    assert f'href="{EXPORTS}"' not in page_text(client, "/console/reports")


def test_another_merchants_export_is_not_found(client, shop, other_shop):
    foreign = export_service.create_export(merchant_id=other_shop.id, staff_id=None,
                                           kind="orders", fmt="csv", now=utcnow())
    run_exports()
    sign_in(client)
    assert client.get(f"{EXPORTS}/{foreign.id}/progress").status_code == 404
    assert client.get(f"{EXPORTS}/{foreign.id}/file").status_code == 404
    assert f"data-export=\"{foreign.id}\"" not in page_text(client, EXPORTS)
