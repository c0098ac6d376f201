"""Commission plan versions and the draft preview in the console."""

from __future__ import annotations

PREVIEW = "/api/console/v1/settings/commission-preview"
SAMPLE = {"lines": [{"unit_price_fen": 9900, "quantity": 1},
                    {"unit_price_fen": 1005, "quantity": 3}], "discount_fen": 500}


def test_the_preview_shows_each_tier_on_the_sample_order(client, shop, staff_headers):
    response = client.post(PREVIEW, json={"sample_order": SAMPLE}, headers=staff_headers())
    body = response.get_json()
    assert response.status_code == 200, body
    # the 500 discount by largest remainder: 383 and 117, so bases 9517 and 2898
    assert body["tiers"] == [{"tier": 1, "rate_bps": 1000, "amount_fen": 951 + 289},
                             {"tier": 2, "rate_bps": 500, "amount_fen": 475 + 144}]
    assert body["total_fen"] == 1859 and body["paid_fen"] == 12415


def test_a_draft_is_previewed_but_not_saved(client, shop, staff_headers):
    draft = {"tiers": 3, "tier_rates_bps": [1200, 600, 300], "third_tier_acknowledged": True}
    body = client.post(PREVIEW, json={"draft": draft, "sample_order": SAMPLE},
                       headers=staff_headers()).get_json()
    assert [t["rate_bps"] for t in body["tiers"]] == [1200, 600, 300]
    assert any(w.startswith("third_tier") for w in body["warnings"])
    rules = client.get("/api/console/v1/settings/distribution", headers=staff_headers())
    assert rules.get_json()["tier_rates_bps"] == [1000, 500]


def test_an_invalid_draft_is_refused_with_its_field(client, shop, staff_headers):
    response = client.post(PREVIEW, json={"draft": {"tiers": 4}, "sample_order": SAMPLE},
                           headers=staff_headers())
    assert response.status_code == 422 and "tiers" in response.get_json()["errors"]
    over = client.post(PREVIEW, json={"sample_order": {**SAMPLE, "discount_fen": 10**9}},
                       headers=staff_headers())
    assert over.status_code == 422 and "discount_fen" in over.get_json()["errors"]


def test_each_change_of_money_rules_publishes_a_version(client, shop, staff_headers):
    headers = staff_headers()
    assert [v["version"] for v in client.get("/api/console/v1/settings/commission-plans",
                                             headers=headers).get_json()] == [1]
    client.put("/api/console/v1/settings/distribution", json={"tier_rates_bps": [1500, 500]},
               headers=headers)
    client.put("/api/console/v1/settings/distribution", json={"bind_mode": "last_touch"},
               headers=headers)  # not a money rule: no new version
    versions = client.get("/api/console/v1/settings/commission-plans", headers=headers)
    assert [(v["version"], v["tier_rates_bps"]) for v in versions.get_json()] == [
        (2, [1500, 500]), (1, [1000, 500])]
