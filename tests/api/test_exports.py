"""Exports through the console API: ask (202, queued), the run-exports job writes the file,
the console polls its progress and downloads it; roles, tenancy and bad input."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from app.jobs import run_exports
from tests.api.test_orders import place_paid_order

URL = "/api/console/v1/exports"


def ask(client, headers, **body):
    return client.post(URL, headers=headers, json=body)


def queued(client, headers, **body) -> dict:
    response = ask(client, headers, **body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def status(client, headers, export: dict) -> dict:
    response = client.get(f"{URL}/{export['id']}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def paid(client, shop, chain, pay_account, add_product, sandbox_url) -> dict:
    """One order carol paid through WeChat (the sandbox)."""
    return place_paid_order(client, shop, chain, pay_account(), sandbox_url,
                            add_product(price_fen=9_990), quantity=2)


def test_an_export_is_queued_run_by_the_job_and_downloaded_as_csv(client, staff_headers, paid):
    headers = staff_headers("finance1")
    export = queued(client, headers, kind="orders", format="csv", **{"from": "2020-01-01"})
    assert (export["status"], export["percent"], export["download_url"]) == ("queued", 0, None)
    assert export["from"] == "2020-01-01" and export["to"] is None
    assert client.get(f"{URL}/{export['id']}/file", headers=headers).status_code == 409

    assert run_exports() == {"exported": 1, "failed": 0}
    done = status(client, headers, export)
    assert (done["status"], done["rows_written"], done["rows_total"], done["percent"]) == (
        "done", 1, 1, 100)
    assert done["download_url"] == f"{URL}/{export['id']}/file"
    response = client.get(done["download_url"], headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=orders-20200101-all-{export['id']}.csv")
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0][:4] == ["订单ID", "订单号", "状态", "买家会员ID"]
    assert [rows[1][n] for n in (0, 1, 2, 4, 5, 11)] == [
        str(paid["id"]), paid["out_trade_no"], "paid", "张*", "138****0000", "19980"]


def test_the_xlsx_download_opens_with_openpyxl(client, staff_headers, paid):
    export = queued(client, staff_headers(), kind="commissions", format="xlsx")
    run_exports()
    response = client.get(f"{URL}/{export['id']}/file", headers=staff_headers())
    assert response.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    # carol's 19,980 fen: bob earns 10% (1,998, tier 1), alice 5% (999, tier 2).
    assert [(row[4], row[10]) for row in rows[1:]] == [(1, 1_998), (2, 999)]


def test_the_list_shows_this_merchants_exports_newest_first(client, shop, staff_headers):
    first = queued(client, staff_headers(), kind="distributors", format="csv")
    second = queued(client, staff_headers("finance1"), kind="income", format="xlsx",
                    quarter="2026Q1")
    page = client.get(URL, headers=staff_headers()).get_json()
    assert [item["id"] for item in page["items"]] == [second["id"], first["id"]]
    assert page["total"] == 2 and page["items"][0]["quarter"] == "2026Q1"
    run_exports()
    done = client.get(f"{URL}?status=done", headers=staff_headers()).get_json()
    assert [item["id"] for item in done["items"]] == [first["id"]]


def test_an_operator_may_not_export(client, shop, staff_headers):
    export = queued(client, staff_headers(), kind="orders", format="csv")
    operator = staff_headers("operator1")
    for response in (ask(client, operator, kind="orders", format="csv"),
                     client.get(URL, headers=operator),
                     client.get(f"{URL}/{export['id']}", headers=operator),
                     client.get(f"{URL}/{export['id']}/file", headers=operator)):
        assert response.status_code == 403
        assert response.get_json()["code"] == "role_forbidden"


def test_another_merchants_export_is_not_found(client, shop, other_shop, staff_headers):
    export = queued(client, staff_headers("owner2"), kind="orders", format="csv")
    run_exports()
    for path in (f"{URL}/{export['id']}", f"{URL}/{export['id']}/file"):
        response = client.get(path, headers=staff_headers("finance1"))
        assert response.status_code == 404
        assert response.get_json()["code"] == "export_not_found"
    assert client.get(URL, headers=staff_headers()).get_json()["total"] == 0


def test_a_failed_export_shows_failed_with_its_reason(client, shop, staff_headers, chain):
    from app.database import transaction
    from app.encryption import SecretBox
    from app.extensions import db
    from app.models import Member, Withdrawal

    bob = chain["bob"]["member"]
    with transaction(db.session):
        # A payout recorded under a real name this deployment's key cannot read.
        member = db.session.get(Member, (shop.id, bob.id))
        member.real_name_encrypted = SecretBox("x" * 40).encrypt("李四")
        db.session.add(Withdrawal(merchant_id=shop.id, member_id=bob.id, amount_fen=500,
                                  status="paid_out", requested_on=_day(), out_bill_no="W1",
                                  finished_at=_moment()))
    export = queued(client, staff_headers(), kind="income", format="csv", quarter="2026Q1")
    assert run_exports() == {"exported": 0, "failed": 1}
    failed = status(client, staff_headers(), export)
    assert failed["status"] == "failed" and failed["download_url"] is None
    assert failed["error"] == (f"The real name of member {bob.id} cannot be decrypted with "
                               "this deployment's key.")
    response = client.get(f"{URL}/{export['id']}/file", headers=staff_headers())
    assert response.status_code == 409 and response.get_json()["code"] == "export_not_ready"


def _moment():
    from datetime import UTC, datetime

    return datetime(2026, 2, 1, 4, 0, tzinfo=UTC)


def _day():
    return _moment().date()


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "refunds", "format": "csv"}, "kind"),
    ({"kind": "orders", "format": "pdf"}, "format"),
    ({"kind": "orders"}, "format"),
    ({"kind": "income", "format": "csv"}, "quarter"),
    ({"kind": "income", "format": "csv", "quarter": "2026Q5"}, "quarter"),
    ({"kind": "income", "format": "csv", "quarter": "2026Q1", "from": "2026-01-01"}, "from"),
    ({"kind": "orders", "format": "csv", "quarter": "2026Q1"}, "quarter"),
    ({"kind": "orders", "format": "csv", "from": "2026-02-01", "to": "2026-01-31"}, "to"),
    ({"kind": "orders", "format": "csv", "from": "2026-02-30"}, "from"),
])
def test_bad_requests_are_refused_with_the_field_named(client, shop, staff_headers, body, field):
    response = ask(client, staff_headers(), **body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert client.get(URL, headers=staff_headers()).get_json()["total"] == 0


def test_a_sixth_waiting_export_is_refused(client, shop, staff_headers):
    for _ in range(5):
        queued(client, staff_headers(), kind="orders", format="csv")
    response = ask(client, staff_headers(), kind="orders", format="csv")
    assert response.status_code == 409 and response.get_json()["code"] == "too_many_exports"


def test_the_openapi_document_lists_the_export_routes(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"post", "get"} <= set(paths[URL])
    assert "get" in paths[URL + "/{export_id}"] and "get" in paths[URL + "/{export_id}/file"]
