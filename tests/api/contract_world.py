"""A small, living shop for the OpenAPI contract tests: a row of every kind the routes take an
id of, so generated requests reach real rows as well as missing ones.

Built through the routes and the WeChat sandbox, as the API tests build theirs (payments are
real sandbox payments, delivered as signed notifications); only what has no route of its own
(a flagged distributor, a pending member, a platform admin, the freeze passing) is made by
services and factories. Staff tokens are issued directly, as sign-in would issue them: a
password check costs half a second on a busy machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import strategies as st

from app.database import transaction, utcnow
from app.domain.program_rules import ProgramRules
from app.extensions import db, redis
from app.jobs import run_exports
from app.models import Commission, RiskFlag, StaffAccount
from app.security import issue_token
from app.services import attribution, commissions, wallets
from app.services.merchants import PLATFORM_AGREEMENT_VERSION, apply_as_supplier
from app.services.staff import create_admin
from tests.api.conftest import ADDRESS
from tests.factories import make_member, make_share_link, make_user
from tests.support.wechat import sandbox_code, sandbox_phone_code
from tests.support.wechatpay import deliver, pay, sandbox_merchant, settings_body

TOKEN_TTL_SECONDS = 3600
PASSWORD = "pw-12345"  # the shop fixture's staff password, and the platform admin's
CONSOLE = "/api/console/v1"


@dataclass
class World:
    """Values that path, query and body fields may take (by field name: ids, tokens,
    sign-in codes and credentials), and who signs in as each role."""

    secret_key: str
    known: dict[str, list | st.SearchStrategy | Callable] = field(default_factory=dict)
    subjects: dict[str, tuple[str, int]] = field(default_factory=dict)  # role → (audience, id)

    def add(self, *names: str, value) -> None:
        for name in names:
            self.known.setdefault(name, []).append(value)

    def headers(self, role: str | None) -> dict:
        """Fresh credentials for ``role`` (none for None): a new token on every call, so a
        generated logout revokes nothing that another request relies on."""
        if role is None:
            return {}
        audience, subject = self.subjects[role]
        token, _ = issue_token(secret_key=self.secret_key, audience=audience, subject=subject,
                               ttl_seconds=TOKEN_TTL_SECONDS)
        return {"Authorization": f"Bearer {token}"}


def build_world(*, client, shop, chain, sandbox_url: str, secret_key: str, box,
                trade: bool) -> World:
    """The shop, its people and catalogue, a share link and a supplier application; with
    ``trade``, also orders in every state, a refund request, a withdrawal, a level, a risk
    flag and a finished export."""
    world = World(secret_key=secret_key)
    _people(world, shop, chain)
    _credentials(world)
    world.add("merchant_id", value=shop.id)
    account = sandbox_merchant(sandbox_url)
    _ok(client.put(f"{CONSOLE}/settings/payment", json=settings_body(account),
                   headers=world.headers("owner")))
    products = [_product(client, world, price_fen=10_000),
                _product(client, world, price_fen=2_990,
                         commission_override={"mode": "fixed", "values": [100, 50]}),
                _product(client, world, price_fen=500, status="off_sale")]
    world.add("token", "share_token", "scene", value=make_share_link(chain["bob"]["member"]).token)
    application = apply_as_supplier(
        name="新供应商", contact_name="李四", contact_phone="13900000000",
        owner_username="supplier1", owner_password="pw-12345678",
        agreement_version=PLATFORM_AGREEMENT_VERSION, box=box)
    world.add("merchant_id", value=application.id)
    if trade:
        _trade(world, client, shop, chain, sandbox_url, account, products[0])
    return world


def _people(world: World, shop, chain) -> None:
    world.subjects["buyer"] = ("mp", chain["carol"]["member"].user_id)
    world.subjects["distributor"] = ("mp", chain["bob"]["member"].user_id)
    for account in db.session.query(StaffAccount).filter_by(merchant_id=shop.id):
        world.subjects[account.role] = ("console", account.id)
    world.subjects["admin"] = ("admin", create_admin(username="admin1", password=PASSWORD).id)
    applicant = make_member(shop, status="pending")
    for member in (*(chain[name]["member"] for name in ("alice", "bob", "carol")), applicant):
        world.add("member_id", "upline_id", "distributor_id", value=member.id)


def _credentials(world: World) -> None:
    """What sign-in, phone binding, joining and supplier applications accept."""
    login_codes = st.builds(sandbox_code, st.just("dave"))
    phone_codes = st.builds(sandbox_phone_code, st.just("13800000001"))
    world.known["code"] = lambda operation: (
        phone_codes if operation.path.endswith("/me/phone") else login_codes)
    world.add("username", value="owner1")
    world.add("username", value="admin1")
    world.add("password", value=PASSWORD)
    world.add("agreement_version", value=ProgramRules().agreement_version)
    world.add("agreement_version", value=PLATFORM_AGREEMENT_VERSION)
    world.add("tier_rates_bps", value=[1200, 600])


def _product(client, world: World, **fields) -> dict:
    product = _ok(client.post(f"{CONSOLE}/products", headers=world.headers("owner"),
                              json={"title": "丑橘 5斤", "stock": 1_000, **fields}))
    world.add("product_id", value=product["id"])
    return product


def _trade(world: World, client, shop, chain, sandbox_url: str, account: dict,
           product: dict) -> None:
    owner, carol = world.headers("owner"), chain["carol"]["headers"]
    buyer_orders = f"/api/mp/v1/merchants/{shop.id}/orders"
    orders = {}
    for state in ("created", "paid", "shipped", "received", "refund_requested"):
        orders[state] = _ok(client.post(buyer_orders, headers=carol, json={
            "items": [{"product_id": product["id"], "quantity": 1}], "address": ADDRESS}))
        world.add("order_id", value=orders[state]["id"])
        if state != "created":
            paid = pay(sandbox_url, account["mch_id"], orders[state]["out_trade_no"])
            assert deliver(client, sandbox_url, paid["notification_id"]).status_code == 204
    for state in ("shipped", "received"):
        _ok(client.post(f"{CONSOLE}/orders/{orders[state]['id']}/shipment", headers=owner,
                        json={"carrier": "顺丰", "tracking_no": "SF1234567890"}))
    _ok(client.post(f"{buyer_orders}/{orders['received']['id']}/receipt", headers=carol))
    refund = _ok(client.post(f"{buyer_orders}/{orders['refund_requested']['id']}/refund-requests",
                             headers=carol, json={"reason": "坏了"}))
    world.add("refund_id", value=refund["id"])

    _pass_the_freeze()
    withdrawal = _ok(client.post(f"/api/mp/v1/merchants/{shop.id}/withdrawals",
                                 headers=chain["bob"]["headers"], json={"amount_fen": 200}))
    world.add("withdrawal_id", value=withdrawal["id"])
    level = _ok(client.post(f"{CONSOLE}/levels", headers=owner, json={
        "name": "金牌", "weight": 10, "tier_rates_bps": [1200, 600]}))
    world.add("level_id", value=level["id"])
    world.add("flag_id", value=_flag(shop))
    export = _ok(client.post(f"{CONSOLE}/exports", headers=owner,
                             json={"kind": "orders", "format": "csv"}))
    run_exports()
    world.add("export_id", value=export["id"])


def _pass_the_freeze() -> None:
    """The received order's commission settles now (the others have no settle date until
    they are received)."""
    with transaction(db.session):
        for commission in db.session.query(Commission).filter(
                Commission.status == "pending", Commission.settle_at.is_not(None)):
            commission.settle_at = utcnow() - timedelta(seconds=1)
    commissions.settle_due(now=utcnow())
    wallets.sweep_outbox(redis.client)


def _flag(shop) -> int:
    """An open risk flag: a distributor whose link bound another account of the same WeChat
    user."""
    twin = make_member(shop, user=make_user(unionid="un-twin"))
    attribution.record_visit(token=make_share_link(twin).token,
                             user_id=make_user(unionid="un-twin").id,
                             context=attribution.VisitContext(channel="miniprogram"))
    return db.session.query(RiskFlag.id).filter_by(merchant_id=shop.id).scalar()


def _ok(response) -> dict:
    assert response.status_code < 300, response.get_json()
    return response.get_json()
