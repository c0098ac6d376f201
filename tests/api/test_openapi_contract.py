"""Schemathesis against /api/openapi.json: every route, signed in as each kind of user it
serves, answers no 5xx and only what the document says (status, content type, body schema).

Each test builds a living shop (tests/api/contract_world.py) and sends every operation of its
group valid and invalid requests as each of its roles in turn (tests/api/contract_runner.py);
the requests keep changing that shop, as real clients would.
"""

from __future__ import annotations

import pytest

from tests.api import contract_runner as runner
from tests.api.contract_world import build_world

GROUPS = {  # who calls the operations of each group
    "public": (None,),
    "/api/mp/": ("buyer", "distributor"),
    "/api/console/": ("owner", "operator", "finance"),
    "/api/admin/": ("admin",),
}


def group_of(operation) -> str | None:
    if not runner.is_signed_in(operation):
        return "public"
    return next((prefix for prefix in GROUPS if operation.path.startswith(prefix)), None)


@pytest.fixture
def check_group(app, app_settings, client, shop, chain, sandbox_url):
    from app import clients

    def _check(group: str, *, trade: bool) -> None:
        world = build_world(client=client, shop=shop, chain=chain, sandbox_url=sandbox_url,
                            secret_key=app_settings.secret_key, box=clients.secret_box(),
                            trade=trade)
        schema = runner.load(app, world.known)
        operations = [op for op in runner.operations(schema) if group_of(op) == group]
        assert operations, group
        failures = {}
        for role in GROUPS[group]:
            outcome = runner.explore(operations, lambda role=role: world.headers(role))
            failures.update({f"{role or 'anonymous'}: {label}": message
                             for label, message in outcome.failures.items()})
            # Real rows were reached: some requests succeeded, not only 4xx.
            assert any(200 <= status < 300 for status in outcome.statuses), (role, outcome)
        assert not failures, runner.report(failures)
    return _check


def test_public_routes_keep_their_contract_without_a_token(check_group):
    check_group("public", trade=False)


def test_mini_program_routes_keep_their_contract_for_buyers_and_distributors(check_group):
    check_group("/api/mp/", trade=True)


def test_console_routes_keep_their_contract_for_every_staff_role(check_group):
    check_group("/api/console/", trade=True)


def test_admin_routes_keep_their_contract_for_the_platform_admin(check_group):
    check_group("/api/admin/", trade=False)


def test_every_documented_operation_is_in_one_of_these_groups(app):
    schema = runner.load(app, {})
    operations = runner.operations(schema)
    assert len(operations) > 80
    assert all(group_of(op) in GROUPS for op in operations)


# --- what the contract run found, pinned down one by one -------------------------------------


def test_the_documented_error_shape_is_the_one_the_api_sends(client):
    spec = client.get("/api/openapi.json").get_json()
    error = spec["components"]["schemas"]["ErrorOut"]
    body = client.get("/api/mp/v1/merchants/999/products").get_json()
    assert error["properties"]["code"]["type"] == "string"
    assert set(body) == set(error["required"]) == set(error["properties"])


def test_text_with_a_nul_character_is_refused_naming_the_field(client, auth_headers, shop,
                                                               staff_headers):
    patched = client.patch("/api/mp/v1/me", headers=auth_headers("alice"),
                           json={"nickname": "阿\x00丽"})
    assert patched.status_code == 422
    assert set(patched.get_json()["errors"]) == {"nickname"}
    searched = client.get("/api/console/v1/products?q=%00", headers=staff_headers())
    assert searched.status_code == 422
    assert set(searched.get_json()["errors"]) == {"q"}
    address = {"receiver": "张三", "phone": "13800000000", "province": "广东省",
               "city": "深圳市", "detail": "科技园\x00"}
    ordered = client.post(f"/api/mp/v1/merchants/{shop.id}/orders", headers=auth_headers("bob"),
                          json={"items": [{"product_id": 1, "quantity": 1}], "address": address})
    assert set(ordered.get_json()["errors"]) == {"address.detail"}


def test_a_share_token_with_a_nul_character_is_an_unknown_link(client):
    assert client.get("/s/1-abc%00def").status_code == 404
    wxacode = client.get("/api/mp/v1/merchants/1/share-links/1-abc%00def/wxacode.png")
    assert wxacode.status_code == 404 and wxacode.get_json()["code"] == "not_found"


def test_an_id_beyond_bigint_names_nothing(client, shop, staff_headers):
    beyond = 2**63
    path = client.get(f"/api/mp/v1/merchants/{beyond}/products")
    assert path.status_code == 404 and path.get_json()["code"] == "not_found"
    query = client.get(f"/api/console/v1/risk/flags?member_id={beyond}",
                       headers=staff_headers())
    assert query.status_code == 422 and set(query.get_json()["errors"]) == {"member_id"}
    body = client.post("/api/console/v1/distributors/1/move", headers=staff_headers(),
                       json={"upline_id": beyond, "reason": "换团队"})
    assert body.status_code == 422 and set(body.get_json()["errors"]) == {"upline_id"}
    assert client.get(f"/api/mp/v1/merchants/{beyond - 1}/products").status_code == 404
