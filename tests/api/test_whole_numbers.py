"""A fraction where a whole number is due is refused, never rounded away (API.md, money)."""

from __future__ import annotations

import pytest

SAMPLE = {"lines": [{"unit_price_fen": 9900, "quantity": 1}]}


@pytest.mark.parametrize("path,method,body,field", [
    ("/api/console/v1/products", "POST", {"title": "x", "price_fen": 19.9}, "price_fen"),
    ("/api/console/v1/products", "POST", {"title": "x", "price_fen": 1000, "stock": 2.5},
     "stock"),
    ("/api/console/v1/products", "POST",
     {"title": "x", "price_fen": 1000, "commission_override": {"mode": "fixed",
                                                               "values": [10.5, 1]}},
     "commission_override"),
    ("/api/console/v1/settings/distribution", "PUT", {"tier_rates_bps": [1000.5, 500]},
     "tier_rates_bps"),
    ("/api/console/v1/settings/distribution", "PUT", {"withdraw_min_fen": 99.99},
     "withdraw_min_fen"),
    ("/api/console/v1/settings/commission-preview", "POST",
     {"sample_order": {"lines": [{"unit_price_fen": 99.5}]}}, "sample_order"),
    ("/api/console/v1/settings/commission-preview", "POST",
     {"sample_order": {**SAMPLE, "discount_fen": 0.5}}, "sample_order"),
    ("/api/console/v1/distributors/1/move", "POST", {"upline_id": 1.5, "reason": "x"},
     "upline_id"),
])
def test_fractions_are_refused_in_console_bodies(client, shop, staff_headers, path, method,
                                                 body, field):
    response = client.open(path, method=method, json=body, headers=staff_headers())
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_fractions_are_refused_in_mini_program_bodies(client, auth_headers):
    response = client.patch("/api/mp/v1/me", json={"gender": 1.5}, headers=auth_headers())
    assert response.status_code == 422 and "gender" in response.get_json()["errors"]
