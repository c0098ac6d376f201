"""Mass assignment: a client never sets what is not its to set.

Every JSON body in the OpenAPI document is sent valid but for fields a client must never set —
balances, levels, uplines, the merchant, rates, statuses, roles, ids, payment times, amounts —
added at every level of it (the body and each object nested in it): the answer is 422 naming
exactly those fields, and nothing is written. Query strings ignore fields they do not define.
Where a schema legitimately takes such a field (a staff member's role, a refund's amount, the
program's rates), that pair must be reviewed below and an attacker's value is refused by the
test named there. Built from the document, so a new route or field is covered (or fails) on
its own.
"""

from __future__ import annotations

import re

import pytest

from app.api.console.settings import MONEY_RULES
from tests.api.route_map import (
    GHOST_ID,
    ID_KINDS,
    build_world,
    changed_tables,
    empty_database,
    fingerprint,
    object_fields,
    objects,
    operations,
    sample,
)

# What an attacker would like to set, with the value they would like it to have.
ATTACKER_FIELDS = {
    "balance_fen": 99_999_999, "available_fen": 99_999_999, "level_id": 1, "upline_id": 1,
    "merchant_id": GHOST_ID, "rate_bps": 10_000, "tier1_bps": 10_000, "status": "active",
    "role": "owner", "is_admin": True, "id": 1, "member_id": 1,
    "paid_at": "2020-01-01T00:00:00Z", "amount_fen": 1, "price_fen": 1, "paid_fen": 1,
    "discount_fen": 0,
}

# Schemas that legitimately take a sensitive field (one above, or any money or rate), and
# the test here that sends an attacker's value for it.
REVIEWED = {
    "POST /api/console/v1/staff": (
        {"role"}, "test_only_the_owner_adds_staff_and_only_with_a_role_the_console_knows"),
    "POST /api/console/v1/distributors/{member_id}/level": (
        {"level_id"}, "test_only_the_owner_puts_a_member_on_another_level"),
    "POST /api/console/v1/distributors/{member_id}/move": (
        {"upline_id"}, "test_a_move_never_puts_a_member_under_itself_or_its_own_team"),
    "POST /api/console/v1/levels": ({"tier_rates_bps"}, "test_only_the_owner_sets_rates"),
    "PATCH /api/console/v1/levels/{level_id}": (
        {"tier_rates_bps"}, "test_only_the_owner_sets_rates"),
    "PUT /api/console/v1/settings/distribution": (
        MONEY_RULES | {"join_spend_threshold_fen", "risk_refund_rate_bps"},
        "test_only_the_owner_sets_rates"),
    "POST /api/console/v1/settings/commission-preview": (
        MONEY_RULES | {"join_spend_threshold_fen", "risk_refund_rate_bps", "unit_price_fen",
                       "discount_fen"}, "test_a_commission_preview_changes_nothing"),
    "POST /api/console/v1/products": (
        {"price_fen", "status"}, "test_a_price_or_status_is_set_by_catalogue_staff_only"),
    "PATCH /api/console/v1/products/{product_id}": (
        {"price_fen", "status"}, "test_a_price_or_status_is_set_by_catalogue_staff_only"),
    "POST /api/console/v1/orders/{order_id}/refunds": (
        {"amount_fen"}, "test_no_refund_is_more_than_what_is_left_to_refund"),
    "POST /api/mp/v1/merchants/{merchant_id}/orders/{order_id}/refund-requests": (
        {"amount_fen"}, "test_no_refund_is_more_than_what_is_left_to_refund"),
    "POST /api/mp/v1/merchants/{merchant_id}/withdrawals": (
        {"amount_fen"}, "test_a_withdrawal_is_never_more_than_the_available_balance"),
}


def sensitive(name: str) -> bool:
    return name in ATTACKER_FIELDS or name.endswith(("_fen", "_bps"))


def leaves(errors: dict, at: tuple = ()) -> set[str]:
    """``items.0.role`` for each field an error names, at any depth."""
    found = set()
    for key, value in errors.items():
        path = (*at, str(key))
        found |= leaves(value, path) if isinstance(value, dict) else {".".join(path)}
    return found


@pytest.fixture(scope="class")
def world(app, sandbox_url):
    """Merchant A with its staff, members and rows, built once for the class that uses it
    and emptied at its end."""
    try:
        yield build_world(app, app.test_client(), sandbox_url, other_tenant=False)
    finally:
        empty_database(app)


@pytest.fixture(scope="class")
def spec(app):
    return app.test_client().get("/api/openapi.json").get_json()


def test_every_sensitive_field_a_schema_takes_is_reviewed(client):
    spec = client.get("/api/openapi.json").get_json()
    unreviewed = sorted(
        f"{op} {name}" for op in operations(spec) if op.body_schema is not None
        for _, name in object_fields(spec, op.body_schema)
        if sensitive(name) and name not in REVIEWED.get(str(op), (set(),))[0])
    assert unreviewed == []
    assert {test for _, test in REVIEWED.values()} <= set(dir(TestOneShop))


class TestOneShop:
    """The generated checks and the attackers' values, all on one shop built once."""

    @pytest.fixture(autouse=True)
    def _clean_state(self):
        # Overrides the shared fixture: the class's tests share ``world``, emptied at its end.
        yield

    def test_every_json_body_refuses_fields_a_client_must_not_set(self, app, world, spec,
                                                                  subtests):
        api, checked = app.test_client(), 0
        for op in operations(spec):
            if op.body_schema is None:
                continue
            body, expected = sample(spec, op.body_schema, world.a.id), set()
            for at, schema in objects(spec, op.body_schema):
                extras = {k: v for k, v in ATTACKER_FIELDS.items()
                          if k not in schema.get("properties", {})}
                place_in(body, at, extras)
                expected |= {".".join(map(str, (*at, name))) for name in extras}
            with subtests.test(msg=str(op)):
                before = fingerprint(app)
                response = api.open(path_of(op, world), method=op.method, json=body,
                                    headers=principal(op, world))
                assert response.status_code == 422, response.get_data(as_text=True)
                assert leaves(response.get_json()["errors"]) == expected
                assert changed_tables(before, fingerprint(app)) == []
                checked += 1
        assert checked >= 30

    def test_query_strings_ignore_fields_they_do_not_define(self, app, world, spec, subtests):
        api, checked = app.test_client(), 0
        for op in operations(spec):
            if op.method != "GET" or not op.query:
                continue
            extras = {k: v for k, v in ATTACKER_FIELDS.items() if k not in op.query}
            with subtests.test(msg=str(op)):
                path, headers = path_of(op, world), principal(op, world)
                plain = api.get(path, headers=headers)
                loaded = api.get(path, headers=headers, query_string=extras)
                assert plain.status_code == 200, plain.get_data(as_text=True)
                assert (loaded.status_code, loaded.get_json()) == (200, plain.get_json())
                checked += 1
        assert checked >= 20

    # -- attackers' values for fields their schema takes ----------------------------------

    def test_only_the_owner_adds_staff_and_only_with_a_role_the_console_knows(self, app,
                                                                              world):
        api, before = app.test_client(), fingerprint(app)
        staff = {"username": "intruder", "password": "pw-12345-x", "display_name": "x"}
        for role, headers in (("owner", world.a.staff["operator"]),
                              ("owner", world.a.staff["finance"])):
            response = api.post(STAFF, json={**staff, "role": role}, headers=headers)
            assert (response.status_code, response.get_json()["code"]) == (
                403, "role_forbidden")
        for role in ("admin", "platform_admin", "Owner", ""):
            response = api.post(STAFF, json={**staff, "role": role},
                                headers=world.a.staff["owner"])
            assert response.status_code == 422 and "role" in response.get_json()["errors"]
        assert changed_tables(before, fingerprint(app)) == []

    def test_only_the_owner_sets_rates(self, app, world):
        """Operators run the program but every money rule, and a level's rates, are the
        owner's (403 naming the field, nothing stored)."""
        api, operator, before = app.test_client(), world.a.staff["operator"], fingerprint(app)
        rules = api.get(SETTINGS, headers=operator).get_json()
        for name in sorted(MONEY_RULES):
            value = (not rules[name] if isinstance(rules[name], bool) else
                     [rate + 100 for rate in rules[name]] if isinstance(rules[name], list)
                     else rules[name] + 1)
            response = api.put(SETTINGS, json={name: value}, headers=operator)
            assert response.status_code == 403, (name, response.get_json())
            assert set(response.get_json()["errors"]) == {name}
        level = world.a.id("level")
        for method, path in (("PATCH", f"{LEVELS}/{level}"), ("POST", LEVELS)):
            response = api.open(path, method=method, headers=operator, json={
                "name": "x", "weight": 77, "tier_rates_bps": [2900, 100]})
            assert response.status_code == 403, response.get_json()
        assert api.get(SETTINGS, headers=operator).get_json() == rules
        assert changed_tables(before, fingerprint(app)) == []

    def test_a_commission_preview_changes_nothing(self, app, world):
        api, before = app.test_client(), fingerprint(app)
        response = api.post("/api/console/v1/settings/commission-preview", json={
            "draft": {"tier_rates_bps": [2000, 1000], "withdraw_min_fen": 1},
            "sample_order": {"lines": [{"unit_price_fen": 10_000}], "discount_fen": 0}},
            headers=world.a.staff["operator"])
        assert response.status_code == 200, response.get_json()
        assert [t["amount_fen"] for t in response.get_json()["tiers"]] == [2_000, 1_000]
        assert changed_tables(before, fingerprint(app)) == []

    def test_only_the_owner_puts_a_member_on_another_level(self, app, world):
        api, before = app.test_client(), fingerprint(app)
        member, level = world.a.ids["member"]["dist"], world.a.ids["level"]["unused"]
        for role in ("operator", "finance"):
            response = api.post(f"/api/console/v1/distributors/{member}/level",
                                json={"level_id": level, "reason": "x"},
                                headers=world.a.staff[role])
            assert response.status_code == 403, response.get_json()
        response = api.post(f"/api/mp/v1/merchants/{world.a.merchant_id}/distributor",
                            json={"agreement_version": "v1", "level_id": level},
                            headers=world.a.mp["dist"])
        assert response.status_code == 422 and "level_id" in response.get_json()["errors"]
        assert changed_tables(before, fingerprint(app)) == []

    def test_a_move_never_puts_a_member_under_itself_or_its_own_team(self, app, world):
        api, before, members = app.test_client(), fingerprint(app), world.a.ids["member"]
        for upline in ("root", "dist", "buyer"):  # itself, then the members of its team
            response = api.post(f"/api/console/v1/distributors/{members['root']}/move",
                                json={"upline_id": members[upline], "reason": "x"},
                                headers=world.a.staff["operator"])
            assert response.status_code == 409, response.get_json()
            assert set(response.get_json()["errors"]) == {"upline_id"}
        response = api.patch("/api/mp/v1/me", json={"upline_id": members["root"]},
                             headers=world.mallory)
        assert response.status_code == 422 and "upline_id" in response.get_json()["errors"]
        assert changed_tables(before, fingerprint(app)) == []

    def test_a_price_or_status_is_set_by_catalogue_staff_only(self, app, world):
        api, before = app.test_client(), fingerprint(app)
        product = f"{PRODUCTS}/{world.a.id('product')}"
        for change in ({"price_fen": 1}, {"status": "off_sale"}):
            response = api.patch(product, json=change, headers=world.a.staff["finance"])
            assert response.status_code == 403, response.get_json()
        for change in ({"status": "deleted"}, {"status": "paid"}, {"price_fen": 0},
                       {"price_fen": -1}, {"price_fen": 19.9}, {"price_fen": "1"}):
            response = api.patch(product, json=change, headers=world.a.staff["owner"])
            assert response.status_code == 422, (change, response.get_json())
            assert set(response.get_json()["errors"]) == set(change)
        assert changed_tables(before, fingerprint(app)) == []

    def test_no_refund_is_more_than_what_is_left_to_refund(self, app, world):
        api, before, order = app.test_client(), fingerprint(app), world.a.ids["order"]["shipped"]
        paid = api.get(f"{world_orders(world)}/{order}",
                       headers=world.a.mp["buyer"]).get_json()["paid_fen"]
        for amount in (paid + 1, 10**12, 0, -1, 1.5):
            body = {"reason": "x", "amount_fen": amount}
            mine = api.post(f"{world_orders(world)}/{order}/refund-requests", json=body,
                            headers=world.a.mp["buyer"])
            theirs = api.post(f"/api/console/v1/orders/{order}/refunds", json=body,
                              headers=world.a.staff["owner"])
            for response in (mine, theirs):
                assert response.status_code == 422, (amount, response.get_json())
                assert set(response.get_json()["errors"]) == {"amount_fen"}
        assert changed_tables(before, fingerprint(app)) == []

    def test_a_withdrawal_is_never_more_than_the_available_balance(self, app, world):
        api, before = app.test_client(), fingerprint(app)
        url = f"/api/mp/v1/merchants/{world.a.merchant_id}"
        available = api.get(f"{url}/wallet", headers=world.a.mp["dist"]).get_json()[
            "available_fen"]
        assert available > 100
        response = api.post(f"{url}/withdrawals", json={"amount_fen": available + 1},
                            headers=world.a.mp["dist"])
        assert (response.status_code, response.get_json()["code"]) == (
            422, "insufficient_balance")
        for amount in (0, -available, 0.5, str(available)):
            response = api.post(f"{url}/withdrawals", json={"amount_fen": amount},
                                headers=world.a.mp["dist"])
            assert response.status_code == 422 and "amount_fen" in response.get_json()["errors"]
        assert changed_tables(before, fingerprint(app)) == []


STAFF = "/api/console/v1/staff"
SETTINGS = "/api/console/v1/settings/distribution"
LEVELS = "/api/console/v1/levels"
PRODUCTS = "/api/console/v1/products"


def world_orders(world) -> str:
    return f"/api/mp/v1/merchants/{world.a.merchant_id}/orders"


def place_in(body, at: tuple, extras: dict) -> None:
    for key in at:
        body = body[key]
    body.update(extras)


def path_of(op, world) -> str:
    """The operation's path with A's own ids (the ones a caller from A may use)."""
    return re.sub(r"{(\w+)}", lambda m: str(world.a.id(ID_KINDS[m.group(1)])), op.path)


def principal(op, world) -> dict:
    """Whoever may call the operation at all: A's owner, the administrator, or mallory."""
    if not op.secured:
        return {}
    if op.path.startswith("/api/console/"):
        return world.a.staff["owner"]
    return world.admin if op.path.startswith("/api/admin/") else world.mallory
