"""What the tenant-isolation and mass-assignment matrices are generated from: the app's route
map and OpenAPI document, and two tenants built through the real entry points to fill them.

A route is covered because it exists, not because someone listed it: every rule under the
surfaces below is classified, every path argument and body or query field named like an id
is mapped to the kind of row it names, and anything the map does not know (a new surface, an
argument name, an id kind) is returned by ``gaps()`` so that a test fails instead of skipping
it in silence.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, text
from werkzeug.routing import AnyConverter

from tests.support.wechat import sandbox_code
from tests.support.wechatpay import deliver, pay

# Surfaces, by path prefix (first match wins).
SURFACES = (("/api/console/", "console_api"), ("/api/admin/", "admin_api"),
            ("/api/mp/", "mp"), ("/console/admin/", "admin_page"),
            ("/console/", "console_page"), ("/s/", "landing"))
# Routes outside the matrix, each with the reason.
EXCLUDED = {
    "static": "the app's static files",
    "console_pages.static": "the console's CSS and script",
    "swagger_ui_asset": "Swagger UI's files",
    "api-docs.openapi_json": "the public API description",
    "api-docs.openapi_swagger_ui": "the public API description",
    "health.healthz": "probe, no tenant data",
    "health.readyz": "probe, no tenant data",
    "wechatpay_webhooks.v2_payment_notification":
        "WeChat's callbacks: authenticated by the merchant's own signature, not a token",
    "wechatpay_webhooks.v2_refund_notification":
        "WeChat's callbacks: authenticated by the merchant's own signature, not a token",
    "wechatpay_webhooks.v3_notification":
        "WeChat's callbacks: authenticated by the merchant's own signature, not a token",
}
# The kind of row each path argument, body field or query field names.
ID_KINDS = {"merchant_id": "merchant", "member_id": "member", "upline_id": "member",
            "distributor_id": "member", "order_id": "order", "product_id": "product",
            "withdrawal_id": "withdrawal", "refund_id": "refund", "export_id": "export",
            "level_id": "level", "flag_id": "flag", "token": "share_link"}
# Fields named like ids that name no row of ours.
NOT_ROW_IDS = {"mch_id": "WeChat Pay's merchant number",
               "wechatpay_public_key_id": "WeChat Pay's public key id"}
# Kinds a mini-program user owns alone (another member's are as foreign as another shop's);
# products and share links are public within their merchant by design.
PER_MEMBER_KINDS = {"order", "member"}
# Mini-program routes whose only id is the merchant: what they answer a user who is not a
# member of that merchant's program.
MP_MERCHANT_ROUTES = {
    "mp_programs.merchant_profile": "public",
    "mp_catalogue.list_products": "public",
    "mp_programs.join": "first_contact",  # anyone may apply to any approved program
    "mp_orders.create_order": "first_contact",  # anyone may buy from any approved shop
    "mp_orders.list_my_orders": "own",  # the caller's own orders there (none)
    "mp_programs.my_membership": "member",
    "mp_programs.my_team": "member",
    "mp_wallet.my_wallet": "member",
    "mp_wallet.my_commissions": "member",
    "mp_withdrawals.my_withdrawals": "member",
    "mp_withdrawals.request_withdrawal": "member",
    "mp_share_links.create_share_link": "member",
}
GHOST_ID = 987_654_321  # an id no row has


@dataclass(frozen=True)
class Route:
    rule: object  # werkzeug Rule
    method: str
    surface: str
    values: dict  # fixed non-id arguments (an ``any`` converter's choice)

    @property
    def endpoint(self) -> str:
        return self.rule.endpoint

    @property
    def id_args(self) -> list[str]:
        return sorted(a for a in self.rule.arguments if a not in self.values)

    def path(self, ids: dict) -> str:
        return self.rule.build({**self.values, **ids}, append_unknown=False)[1]

    def __str__(self) -> str:
        choice = "".join(f" ({v})" for v in self.values.values())
        return f"{self.method} {self.rule.rule}{choice}"


def surface_of(rule) -> str | None:
    return next((name for prefix, name in SURFACES if rule.rule.startswith(prefix)), None)


def routes(app) -> list[Route]:
    """Every (rule, method, choice) of the covered surfaces."""
    found = []
    for rule in app.url_map.iter_rules():
        surface = surface_of(rule)
        if rule.endpoint in EXCLUDED or surface is None:
            continue
        choices = [[(name, item) for item in sorted(conv.items)]
                   for name, conv in rule._converters.items() if isinstance(conv, AnyConverter)]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for combo in itertools.product(*choices):
                found.append(Route(rule, method, surface, dict(combo)))
    return sorted(found, key=str)


def gaps(app, spec: dict) -> list[str]:
    """What the matrices would not know how to fill: each is a route left uncovered."""
    problems = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXCLUDED:
            continue
        if surface_of(rule) is None:
            problems.append(f"{rule.rule}: no surface (add it to SURFACES or EXCLUDED)")
            continue
        for name, conv in rule._converters.items():
            if name not in ID_KINDS and not isinstance(conv, AnyConverter):
                problems.append(f"{rule.rule}: path argument {name!r} has no id kind")
        if rule.rule.startswith("/api/mp/") and rule.arguments == {"merchant_id"} \
                and rule.endpoint not in MP_MERCHANT_ROUTES:
            problems.append(f"{rule.rule}: not in MP_MERCHANT_ROUTES")
    for op in operations(spec):
        for place, name in op.id_fields:
            if name not in ID_KINDS:
                problems.append(f"{op}: {place} field {name!r} has no id kind")
    return problems


# -- the OpenAPI document ----------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI template: /api/console/v1/levels/{level_id}
    op: dict
    spec: dict = field(repr=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def body_schema(self) -> dict | None:
        body = self.op.get("requestBody", {}).get("content", {}).get("application/json")
        return resolve(self.spec, body["schema"]) if body else None

    @property
    def query(self) -> list[str]:
        return [p["name"] for p in self.op.get("parameters", []) if p.get("in") == "query"]

    @property
    def secured(self) -> bool:
        return bool(self.op.get("security"))

    @property
    def id_fields(self) -> list[tuple[str, str]]:
        """(place, name) of every body field (at any depth) and query field ending in _id."""
        found = [("query", n) for n in self.query]
        if self.body_schema is not None:
            found += [("body", name) for _, name in object_fields(self.spec, self.body_schema)]
        return sorted({(place, name) for place, name in found
                       if name.endswith("_id") and name not in NOT_ROW_IDS})


def operations(spec: dict) -> list[Operation]:
    return [Operation(method.upper(), path, op, spec)
            for path, ops in sorted(spec["paths"].items()) for method, op in ops.items()
            if method in ("get", "post", "put", "patch", "delete")]


def resolve(spec: dict, schema: dict) -> dict:
    """The schema behind a $ref; of alternatives (a nullable nested object is ``anyOf`` null
    or the object), the one with properties."""
    while "$ref" in schema or "anyOf" in schema or "oneOf" in schema:
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            continue
        options = [resolve(spec, o) for o in schema.get("anyOf") or schema["oneOf"]]
        schema = next((o for o in options if "properties" in o), options[0])
    return schema


def object_fields(spec: dict, schema: dict, at: tuple = ()) -> list[tuple[tuple, str]]:
    """(where, name) of every property of every object in ``schema``; ``where`` is the path
    of keys and list indexes leading to the object holding it."""
    schema = resolve(spec, schema)
    found = []
    for name, prop in schema.get("properties", {}).items():
        found.append((at, name))
        prop = resolve(spec, prop)
        if prop.get("type") == "array":
            found += object_fields(spec, prop.get("items", {}), (*at, name, 0))
        elif prop.get("type") == "object" or "properties" in prop:
            found += object_fields(spec, prop, (*at, name))
    return found


def objects(spec: dict, schema: dict, at: tuple = ()) -> list[tuple[tuple, dict]]:
    """(where, object schema) of the body's object and every object nested in it."""
    schema = resolve(spec, schema)
    found = [(at, schema)]
    for name, prop in schema.get("properties", {}).items():
        prop = resolve(spec, prop)
        if prop.get("type") == "array":
            item = resolve(spec, prop.get("items", {}))
            if "properties" in item:
                found += objects(spec, item, (*at, name, 0))
        elif "properties" in prop:
            found += objects(spec, prop, (*at, name))
    return found


# Candidates for string fields with a pattern: the first that matches is used.
PATTERN_SAMPLES = ("13800000000", "user_x1", "pages/index/index", "ABCDEF12", "2026Q1",
                   "2026-01")
# Fields whose rules the OpenAPI document does not carry (marshmallow validators, rules
# checked against the program: one rate per tier).
FIELD_SAMPLES = {"image_urls": ["https://img.example.com/a.png"], "values": [100, 50],
                 "tier_rates_bps": [1000, 500]}


def sample(spec: dict, schema: dict, ids, name: str = "") -> object:
    """A value that ``schema`` accepts, every optional property included (schema-level rules
    such as "the scene or the share token" hold then); ids come from ``ids(kind)``."""
    schema = resolve(spec, schema)
    if name in ID_KINDS and ids is not None:
        return ids(ID_KINDS[name])
    if name in FIELD_SAMPLES:
        return FIELD_SAMPLES[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {key: sample(spec, prop, ids, key)
                for key, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(spec, schema.get("items", {}), ids, name)
                for _ in range(max(1, schema.get("minItems", 0)))] if "items" in schema else []
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if schema.get("maximum", 1) >= 1 else 0
    if kind == "boolean":
        return True
    if schema.get("format") == "date":
        return "2026-01-01"
    if "pattern" in schema:
        matching = [s for s in PATTERN_SAMPLES if re.fullmatch(schema["pattern"], s)]
        assert matching, f"add a sample for the pattern {schema['pattern']!r} of {name!r}"
        return matching[0]
    return "x" * max(1, schema.get("minLength", 1))


# -- the database as a whole -------------------------------------------------------------------

def fingerprint(app) -> dict[str, str]:
    """One digest per table of every row in it: equal fingerprints, nothing written."""
    from app.extensions import db

    with app.app_context():
        parts = [f"SELECT '{t.name}' AS name, md5(coalesce(string_agg(x::text, '|' "
                 f"ORDER BY x::text), '')) AS digest FROM \"{t.name}\" x"
                 for t in db.metadata.sorted_tables]
        rows = db.session.execute(text(" UNION ALL ".join(parts))).all()
        db.session.rollback()
    return dict(rows)


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


# -- two tenants -------------------------------------------------------------------------------

PASSWORD = "pw-12345-iso"
ADDRESS = {"phone": "13800000000", "province": "广东省", "city": "深圳市", "district": "南山区"}


@dataclass
class Tenant:
    """A merchant with staff of every role, a tree of distributors, a buyer, and one row of
    every kind the routes take an id of. ``private`` holds values only its own staff (and the
    member they belong to) may ever see; ``public`` what its shop shows buyers anyway. Every
    text value carries ``<tag>-private`` or ``<tag>-public``; amounts are unique numbers."""

    tag: str
    merchant_id: int = 0
    staff: dict = field(default_factory=dict)  # role -> API headers
    staff_ids: dict = field(default_factory=dict)  # role -> staff account id
    mp: dict = field(default_factory=dict)  # member label -> API headers
    ids: dict = field(default_factory=dict)  # kind -> {label: id or token}
    private: list = field(default_factory=list)
    public: list = field(default_factory=list)

    def id(self, kind: str) -> int | str:
        return next(iter(self.ids[kind].values()))


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(True))
    return response.get_json() if response.is_json else {}


def mp_user(client, key: str, nickname: str) -> tuple[dict, int]:
    """A signed-in mini-program user with a nickname; returns (headers, user id)."""
    body = ok(client.post("/api/mp/v1/auth/login", json={"code": sandbox_code(key)}))
    headers = {"Authorization": f"Bearer {body['token']}"}
    ok(client.patch("/api/mp/v1/me", json={"nickname": nickname}, headers=headers))
    return headers, body["user"]["id"]


def bearer(app, audience: str, subject: int) -> dict:
    """Headers with a token as sign-in issues it (signing in again would only re-check the
    password, at a second of Argon2 each)."""
    from app.security import issue_token

    settings = app.extensions["fenxiao.settings"]
    token, _ = issue_token(secret_key=settings.secret_key, audience=audience, subject=subject,
                           ttl_seconds=settings.console_token_ttl_seconds)
    return {"Authorization": f"Bearer {token}"}


def build_tenant(app, client, sandbox_url: str, tag: str, *, roles: tuple[str, ...],
                 prices: tuple[int, int], withdraw_fen: int) -> Tenant:
    from app.services.merchants import create_merchant
    from app.services.staff import add_staff

    t = Tenant(tag)
    secret = f"{tag}-private"
    t.public += [f"{tag}-public", str(prices[0])]
    t.private += [secret, str(prices[1]), str(withdraw_fen)]
    with app.app_context():
        merchant = create_merchant(name=f"{tag}-public-shop",
                                   owner_username=f"{tag.lower()}-owner", owner_password=PASSWORD)
        t.merchant_id, t.staff_ids = merchant.id, {"owner": _owner_id(merchant.id)}
        for role in roles[1:]:
            t.staff_ids[role] = add_staff(merchant_id=merchant.id, password=PASSWORD, role=role,
                                          username=f"{tag.lower()}-{role}",
                                          display_name=f"{secret}-{role}").id
    t.staff = {role: bearer(app, "console", staff_id) for role, staff_id in t.staff_ids.items()}
    t.ids["merchant"] = {"self": t.merchant_id}
    owner = t.staff["owner"]
    mch_id = ok(client.put("/api/console/v1/settings/payment", json={"mode": "sandbox"},
                           headers=owner))["mch_id"]
    t.ids["product"] = {
        state: ok(client.post("/api/console/v1/products", headers=owner, json={
            "title": f"{tag}-{'public' if state == 'on_sale' else 'private'}-{state}",
            "price_fen": price, "stock": 50, "status": state}), 201)["id"]
        for state, price in (("on_sale", prices[0]), ("off_sale", prices[1]))}
    _people(app, client, t)
    _share_links(client, t)
    _orders(app, client, t, sandbox_url, mch_id)
    _withdrawal_level_flag_export(app, client, t, withdraw_fen)
    return t


def _owner_id(merchant_id: int) -> int:
    from app.extensions import db
    from app.models import StaffAccount

    return db.session.scalar(select(StaffAccount.id).where(
        StaffAccount.merchant_id == merchant_id, StaffAccount.role == "owner"))


def _people(app, client, t: Tenant) -> None:
    """root ← dist ← buyer (signed in), a pending applicant and a frozen distributor."""
    from app.extensions import db
    from app.models import Merchant, User
    from tests.factories import make_member, make_user

    members, upline = {}, None
    for label, status in (("root", "active"), ("dist", "active"), ("buyer", "none")):
        headers, user_id = mp_user(client, f"{t.tag}-{label}-iso",
                                   f"{t.tag}-private-nick-{label}")
        t.mp[label] = headers
        with app.app_context():
            merchant = db.session.get(Merchant, t.merchant_id)
            member = make_member(merchant, user=db.session.get(User, user_id), upline=upline,
                                 status=status)
            members[label], upline = member.id, member
    with app.app_context():
        merchant = db.session.get(Merchant, t.merchant_id)
        for label in ("pending", "frozen"):
            members[label] = make_member(merchant, status="pending" if label == "pending"
                                         else "active",
                                         user=make_user(nickname=f"{t.tag}-private-{label}")).id
    ok(client.post(f"/api/console/v1/distributors/{members['frozen']}/freeze",
                   json={"reason": f"{t.tag}-private-freeze"}, headers=t.staff["owner"]))
    t.ids["member"] = members


def _share_links(client, t: Tenant) -> None:
    url = f"/api/mp/v1/merchants/{t.merchant_id}/share-links"
    t.ids["share_link"] = {
        "product": ok(client.post(url, json={"product_id": t.ids["product"]["on_sale"]},
                                  headers=t.mp["dist"]), 201)["token"],
        "page": ok(client.post(url, json={}, headers=t.mp["root"]), 201)["token"]}


def _orders(app, client, t: Tenant, sandbox_url: str, mch_id: str) -> None:
    """Orders of the buyer: settled (its commission pays the withdrawal), refund asked,
    shipped, and unpaid."""
    from app.database import transaction, utcnow
    from app.extensions import db, redis
    from app.models import Commission
    from app.services import commissions, wallets

    url = f"/api/mp/v1/merchants/{t.merchant_id}/orders"
    orders = {}
    for label in ("settled", "refund_asked", "shipped", "unpaid"):
        order = ok(client.post(url, headers=t.mp["buyer"], json={
            "items": [{"product_id": t.ids["product"]["on_sale"], "quantity": 1}],
            "address": {**ADDRESS, "receiver": f"{t.tag}-private-收件人",
                        "detail": f"{t.tag}-private-address-{label}"}}), 201)
        orders[label] = order["id"]
        if label != "unpaid":
            paid = pay(sandbox_url, mch_id, order["out_trade_no"])
            assert deliver(client, sandbox_url, paid["notification_id"]).status_code in (200, 204)
    owner = t.staff["owner"]
    ok(client.post(f"/api/console/v1/orders/{orders['shipped']}/shipment", headers=owner,
                   json={"carrier": "顺丰", "tracking_no": f"{t.tag}-private-9431"}))
    refund = ok(client.post(f"{url}/{orders['refund_asked']}/refund-requests",
                            headers=t.mp["buyer"], json={"reason": f"{t.tag}-private-reason"}),
                201)
    with app.app_context(), transaction(db.session):
        for commission in db.session.query(Commission).filter_by(merchant_id=t.merchant_id):
            commission.settle_at = utcnow() - timedelta(seconds=1)
        commissions.settle_due(now=utcnow())
    with app.app_context():
        wallets.sweep_outbox(redis.client)
    t.ids["order"], t.ids["refund"] = orders, {"requested": refund["id"]}


def _withdrawal_level_flag_export(app, client, t: Tenant, withdraw_fen: int) -> None:
    from app.jobs import run_exports
    from app.services import attribution
    from tests.factories import make_member, make_share_link, make_user

    withdrawal = ok(client.post(f"/api/mp/v1/merchants/{t.merchant_id}/withdrawals",
                                json={"amount_fen": withdraw_fen}, headers=t.mp["dist"]), 201)
    assert withdrawal["status"] == "requested", withdrawal
    t.ids["withdrawal"] = {"requested": withdrawal["id"]}
    owner = t.staff["owner"]
    levels = {label: ok(client.post("/api/console/v1/levels", headers=owner, json={
        "name": f"{t.tag}-private-level-{label}", "weight": weight,
        "tier_rates_bps": [1200, 600]}), 201)["id"]
        for label, weight in (("held", 5), ("unused", 9))}
    ok(client.post(f"/api/console/v1/distributors/{t.ids['member']['root']}/level",
                   headers=owner, json={"level_id": levels["held"], "reason": "by hand"}))
    t.ids["level"] = levels
    with app.app_context():  # a self-referral: the twin account's visit raises a flag
        from app.extensions import db
        from app.models import Merchant, RiskFlag

        merchant, twin = db.session.get(Merchant, t.merchant_id), f"{t.tag}-twin-iso"
        flagged = make_member(merchant, user=make_user(unionid=twin,
                                                       nickname=f"{t.tag}-private-flagged"))
        attribution.record_visit(token=make_share_link(flagged).token,
                                 user_id=make_user(unionid=twin).id,
                                 context=attribution.VisitContext(channel="miniprogram"))
        t.ids["member"]["flagged"] = flagged.id
        t.ids["flag"] = {"open": db.session.scalar(
            select(RiskFlag.id).where(RiskFlag.merchant_id == t.merchant_id))}
    assert t.ids["flag"]["open"], "the self-referral raised no flag"
    export = ok(client.post("/api/console/v1/exports", headers=t.staff["owner"],
                            json={"kind": "orders", "format": "csv"}), 202)
    with app.app_context():
        assert run_exports()["exported"] == 1
    t.ids["export"] = {"done": export["id"]}


@dataclass
class World:
    a: Tenant
    b: Tenant | None
    mallory: dict  # API headers of a distributor of A with nothing of her own to hide
    mallory_member_id: int
    admin: dict  # API headers of a platform administrator
    admin_id: int


def build_world(app, client, sandbox_url: str, *, other_tenant: bool = True) -> World:
    """Merchants A and B (unless ``other_tenant`` is false), built the same way with their own
    unique values, a platform administrator, and mallory."""
    from app.extensions import db
    from app.models import Merchant, User
    from app.services.staff import create_admin
    from tests.factories import make_member

    a = build_tenant(app, client, sandbox_url, "A", roles=("owner", "operator", "finance"),
                     prices=(123_457, 234_561), withdraw_fen=31_415)
    b = build_tenant(app, client, sandbox_url, "B", roles=("owner",), prices=(975_319, 864_213),
                     withdraw_fen=86_429) if other_tenant else None
    # One export of each still queued (built last: the job would take the oldest first).
    for t in filter(None, (a, b)):
        t.ids["export"]["queued"] = ok(client.post("/api/console/v1/exports", json={
            "kind": "distributors", "format": "xlsx"}, headers=t.staff["owner"]), 202)["id"]
    mallory, user_id = mp_user(client, "mallory-iso", "mallory")
    with app.app_context():
        member_id = make_member(db.session.get(Merchant, a.merchant_id),
                                user=db.session.get(User, user_id)).id
        admin_id = create_admin(username="iso-admin", password=PASSWORD).id
    return World(a, b, mallory, member_id, bearer(app, "admin", admin_id), admin_id)


def empty_database(app) -> None:
    """What conftest's _clean_state does after each test: empty every table and Redis."""
    from app.extensions import db, redis

    with app.app_context():
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()
        redis.client.flushdb()


def page_client(app, staff_id: int, *, admin: bool = False):
    """A test client signed in to the console pages as the staff member (or administrator)
    ``staff_id`` — the session cookie the sign-in form sets — and its forms' CSRF token."""
    client = app.test_client()
    with client.session_transaction() as session:
        session.permanent, session["admin_id" if admin else "staff_id"] = True, staff_id
    page = client.get("/console/admin/merchants" if admin else "/console/dashboard")
    page = page.get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
