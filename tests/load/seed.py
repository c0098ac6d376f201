"""The shop the load runs against, built the way a merchant builds it: the merchant by the service
(as ``flask merchants create`` does), everything else over HTTP through gunicorn — a sandbox
WeChat Pay account (APIv3, public key), an open program, products with plenty of stock, staff in
each role, and a tree of distributors who joined through each other's share links."""

from __future__ import annotations

import requests

from tests.benchmarks.notify import ADDRESS
from tests.support.wechat import sandbox_code
from tests.support.wechatpay import sandbox_merchant, settings_body

OWNER, PASSWORD = "load-owner", "load-pass-123"
STAFF = {"load-operator": "operator", "load-finance": "finance"}
# Prices chosen so both tiers earn odd amounts: floors happen on every order.
PRODUCTS = [("丑橘 5斤", 9_990), ("赣南脐橙 10斤", 12_850), ("砂糖橘 3斤", 3_333),
            ("沃柑 5斤", 5_999), ("耙耙柑 5斤", 7_777)]
STOCK = 10**9  # the schema's maximum: the run never runs out
# Distributor i joins through the link of distributor UPLINE[i] (None: a root): two roots, then
# three levels below them, so orders pay both tiers, one tier (roots' direct buyers) or more.
UPLINE = [None, None, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7]


class Console:
    """requests against the served app that fail loudly: a seed that half worked would make the
    load's numbers meaningless."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def call(self, method: str, path: str, *, expect: int = 200, token: str | None = None,
             body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        response = self.session.request(method, self.base_url + path, json=body,
                                        headers=headers, timeout=60)
        if response.status_code != expect:
            raise RuntimeError(f"seeding: {method} {path} answered {response.status_code} "
                               f"(expected {expect}): {response.text[:500]}")
        return response.json() if response.content else {}


def build_shop(base_url: str, sandbox_url: str) -> dict:
    """Everything the locustfile needs, as JSON-ready values."""
    from app.services.merchants import create_merchant

    api = Console(base_url)
    merchant = create_merchant(name="压测鲜果铺", owner_username=OWNER, owner_password=PASSWORD)
    owner = api.call("POST", "/api/console/v1/auth/login",
                     body={"username": OWNER, "password": PASSWORD})["token"]
    account = sandbox_merchant(sandbox_url, "v3_public_key")
    api.call("PUT", "/api/console/v1/settings/payment", token=owner, body=settings_body(account))
    api.call("PUT", "/api/console/v1/settings/distribution", token=owner,
             body={"join_mode": "everyone", "freeze_days": 0})
    for username, role in STAFF.items():
        api.call("POST", "/api/console/v1/staff", expect=201, token=owner,
                 body={"username": username, "password": PASSWORD, "role": role})
    product_ids = [api.call("POST", "/api/console/v1/products", expect=201, token=owner,
                            body={"title": title, "price_fen": price, "stock": STOCK})["id"]
                   for title, price in PRODUCTS]
    keys, links = _distributors(api, merchant.id, product_ids)
    return {"merchant_id": merchant.id, "mch_id": account["mch_id"],
            "sandbox_url": sandbox_url, "product_ids": product_ids,
            "distributor_keys": keys, "share_tokens": links,
            "staff": [OWNER, *STAFF], "password": PASSWORD, "address": ADDRESS}


def _distributors(api: Console, merchant_id: int, product_ids: list[int]
                  ) -> tuple[list[str], list[str]]:
    keys, links = [], []
    for index, upline in enumerate(UPLINE):
        key = f"load-distributor-{index}"
        token = api.call("POST", "/api/mp/v1/auth/login",
                         body={"code": sandbox_code(key)})["token"]
        if upline is not None:
            visit = api.call("POST", "/api/mp/v1/share-visits", token=token,
                             body={"share_token": links[upline]})
            if not visit["bound"]:
                raise RuntimeError(f"seeding: {key} was not bound: {visit}")
        joined = api.call("POST", f"/api/mp/v1/merchants/{merchant_id}/distributor",
                          token=token, body={"agreement_version": "v1"})
        if joined["status"] != "active":
            raise RuntimeError(f"seeding: {key} is {joined['status']}, not active")
        link = api.call("POST", f"/api/mp/v1/merchants/{merchant_id}/share-links",
                        expect=201, token=token,
                        body={"product_id": product_ids[index % len(product_ids)]})
        keys.append(key)
        links.append(link["token"])
    return keys, links
