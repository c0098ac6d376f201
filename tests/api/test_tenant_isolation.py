"""Another merchant's ids, tokens and share links reveal nothing and change nothing.

The hand-written cases come first. The matrix below them is generated from the route map:
every route that takes an id, on every surface (console API and pages, admin API and pages,
mini-program API, the share landing page), is called with another tenant's ids by each kind of
principal. The answer must refuse, be the very answer an id no row has gets (so it does not
even reveal that the row exists), carry none of the other tenant's values, and leave every
table as it was. A route, argument or field the map cannot fill fails
test_the_route_map_knows_every_route_and_id instead of going unchecked.
"""

from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import dataclass, field

import pytest

from app.extensions import db
from app.models import Member
from tests.api.route_map import (
    GHOST_ID,
    ID_KINDS,
    MP_MERCHANT_ROUTES,
    NOT_ROW_IDS,
    PER_MEMBER_KINDS,
    build_world,
    changed_tables,
    empty_database,
    fingerprint,
    gaps,
    operations,
    page_client,
    routes,
    sample,
)
from tests.factories import make_member, make_share_link

SECRET_NAME = "别家的秘密"


@pytest.fixture
def foreign_member(other_shop):
    return make_member(other_shop, status="pending")


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/console/v1/distributors/{id}"),
    ("GET", "/api/console/v1/distributors/{id}/team"),
    ("POST", "/api/console/v1/distributors/{id}/approve"),
    ("POST", "/api/console/v1/distributors/{id}/reject"),
    ("POST", "/api/console/v1/distributors/{id}/freeze"),
    ("POST", "/api/console/v1/distributors/{id}/unfreeze"),
])
def test_staff_cannot_reach_another_merchants_distributors(client, shop, foreign_member,
                                                          staff_headers, method, path):
    response = client.open(path.format(id=foreign_member.id), method=method,
                           json={"reason": "x"}, headers=staff_headers())
    assert response.status_code == 404
    assert response.get_json()["code"] == "distributor_not_found"
    db.session.expire_all()
    assert db.session.get(Member, (foreign_member.merchant_id,
                                   foreign_member.id)).distributor_status == "pending"


def test_a_move_under_another_merchants_member_is_not_found(client, shop, foreign_member,
                                                           staff_headers):
    mine = make_member(shop)
    response = client.post(f"/api/console/v1/distributors/{mine.id}/move",
                           json={"upline_id": foreign_member.id, "reason": "x"},
                           headers=staff_headers())
    assert response.status_code == 404


def test_lists_only_show_the_staff_members_own_merchant(client, shop, other_shop,
                                                       staff_headers):
    make_member(other_shop)
    mine = make_member(shop)
    listed = client.get("/api/console/v1/distributors", headers=staff_headers()).get_json()
    assert [m["id"] for m in listed["items"]] == [mine.id] and listed["total"] == 1


def test_mp_team_of_another_merchant_is_not_reachable(client, shop, other_shop, login):
    from app.models import User

    me = login("two-shops")
    make_member(shop, user=db.session.get(User, me["user"]["id"]))
    foreign = make_member(other_shop)
    response = client.get(f"/api/mp/v1/merchants/{shop.id}/team?member_id={foreign.id}",
                          headers={"Authorization": f"Bearer {me['token']}"})
    assert response.status_code == 404
    assert client.get(f"/api/mp/v1/merchants/{other_shop.id}/team",
                      headers={"Authorization": f"Bearer {me['token']}"}).status_code == 404


def test_a_share_token_only_ever_names_its_own_merchant(client, shop, other_shop,
                                                       auth_headers):
    link = make_share_link(make_member(other_shop))
    from app.domain.share_token import new_token

    forged = f"{new_token(shop.id).split('-')[0]}-{link.token.split('-')[1]}"
    response = client.post("/api/mp/v1/share-visits", json={"share_token": forged},
                           headers=auth_headers())
    assert response.status_code == 404


def test_an_unapproved_merchant_is_invisible(client, app_context, auth_headers):
    from tests.factories import make_merchant

    pending = make_merchant(status="pending", name=SECRET_NAME)
    response = client.get(f"/api/mp/v1/merchants/{pending.id}")
    assert response.status_code == 404 and SECRET_NAME not in response.get_data(as_text=True)


@pytest.fixture
def foreign_order(other_shop):
    """A paid order of another merchant, with a refund its buyer asked for."""
    from app.database import transaction, utcnow
    from app.models import Order, Refund
    from tests.factories import make_order

    order = make_order(make_member(other_shop, status="none"))
    with transaction(db.session):
        row = db.session.get(Order, (other_shop.id, order.id))
        row.status, row.paid_at, row.transaction_id = "paid", utcnow(), "4200000000000001"
        db.session.add(Refund(merchant_id=other_shop.id, order_id=order.id, amount_fen=100,
                              out_refund_no=f"{row.out_trade_no}R1", source="buyer",
                              status="requested"))
        db.session.flush()
        refund_id = db.session.query(Refund.id).scalar()
    return order, refund_id


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/console/v1/orders/{order}/shipment", {"carrier": "顺丰", "tracking_no": "1"}),
    ("POST", "/api/console/v1/orders/{order}/refunds", {"reason": "x"}),
    ("POST", "/api/console/v1/refunds/{refund}/approve", {"reason": "x"}),
    ("POST", "/api/console/v1/refunds/{refund}/reject", {"reason": "x"}),
])
def test_staff_cannot_touch_another_merchants_orders_or_refunds(client, shop, foreign_order,
                                                               staff_headers, method, path,
                                                               body):
    from app.models import Order, Refund

    order, refund_id = foreign_order
    response = client.open(path.format(order=order.id, refund=refund_id), method=method,
                           json=body, headers=staff_headers())
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Order, (order.merchant_id, order.id)).status == "paid"
    assert db.session.get(Refund, (order.merchant_id, refund_id)).status == "requested"
    listed = client.get("/api/console/v1/orders", headers=staff_headers()).get_json()
    assert listed["total"] == 0


def test_a_buyer_cannot_reach_an_order_through_another_merchants_url(client, shop, other_shop,
                                                                    foreign_order, login):
    order, _ = foreign_order
    headers = {"Authorization": f"Bearer {login('mallory')['token']}"}
    for merchant_id in (shop.id, other_shop.id):
        base = f"/api/mp/v1/merchants/{merchant_id}/orders/{order.id}"
        assert client.get(base, headers=headers).status_code == 404
        assert client.post(f"{base}/receipt", headers=headers).status_code == 404
        assert client.post(f"{base}/refund-requests", json={"reason": "x"},
                           headers=headers).status_code == 404


# --- the matrix, generated from the route map -------------------------------------------------

REFUSALS = frozenset({401, 403, 404})
CLIENT_ERRORS = frozenset(range(400, 500))
ANY_STATUS = frozenset(range(100, 600))
LOGIN_PAGES = ("/console/login", "/console/admin/login")
CSRF = re.compile(r'name="csrf_token" value="[^"]+"')
# What a console form sends besides its ids (pages ignore the fields they do not read).
FORM = {"reason": "matrix", "carrier": "顺丰", "tracking_no": "1", "reference": "r-1",
        "name": "matrix", "weight": "7"}


@dataclass
class Case:
    label: str
    method: str
    path: str
    ghost_path: str  # the same request with ids no row has
    client: object = None  # a page client (session cookie); None: the API client
    headers: dict = field(default_factory=dict)
    body: dict | None = None  # JSON for the API, form fields for pages
    ghost_body: dict | None = None
    query: dict | None = None
    ghost_query: dict | None = None
    blank: tuple = ()  # ids blanked out of both answers before they are compared
    secrets: tuple = ()
    allowed: frozenset = REFUSALS
    compare: bool = True


class Runner:
    """Sends each case (and its ghost) and reports what it revealed or changed."""

    def __init__(self, app):
        self.app, self.api = app, app.test_client()
        self.baseline = fingerprint(app)

    def check(self, case: Case) -> None:
        response = self.send(case, case.path, case.body, case.query)
        status, location, text = answer(response, case.blank)
        problems = []
        if not (status in case.allowed or status == 302 and location.startswith(LOGIN_PAGES)):
            hint = " (a body the route refused: see FIELD_SAMPLES)" if status == 422 else ""
            problems.append(f"answered {status} {location} {text[:300]}{hint}")
        if leaked := [value for value in case.secrets if revealed(value, text + location)]:
            problems.append(f"revealed {leaked}")
        if case.compare:
            ghost = answer(self.send(case, case.ghost_path, case.ghost_body, case.ghost_query),
                           case.blank)
            if ghost != (status, location, text):
                problems.append(f"answered {status} {location} {text[:300]!r} where ids no "
                                f"row has get {ghost[0]} {ghost[1]} {ghost[2][:300]!r}")
        now = fingerprint(self.app)
        if now != self.baseline:
            problems.append(f"changed the tables {changed_tables(self.baseline, now)}")
            self.baseline = now
        assert not problems, f"{case.method} {case.path}: " + "; ".join(problems)

    def send(self, case: Case, path: str, body, query):
        options = {"headers": case.headers, "query_string": query}
        if body is not None:
            options["data" if case.client else "json"] = body
        return (case.client or self.api).open(path, method=case.method, **options)


def answer(response, blank) -> tuple[int, str, str]:
    """Status, redirect and body, with CSRF tokens and the case's ids blanked out."""
    location, text = response.headers.get("Location", ""), response.get_data(as_text=True)
    text = CSRF.sub("", text)
    for value in blank:
        pattern = re.compile(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])")
        location, text = pattern.sub("<id>", location), pattern.sub("<id>", text)
    return response.status_code, location, text


def revealed(value: str, text: str) -> bool:
    """Whether ``value`` is in ``text`` as itself (an amount, not digits of a longer number
    such as a timestamp's microseconds)."""
    return re.search(rf"(?<!\d){re.escape(value)}(?!\d)", text) is not None


def template(rule) -> str:
    """The OpenAPI path of a werkzeug rule: <int:member_id> → {member_id}."""
    return re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)


def page_id_fields(app, route) -> list[str]:
    """Ids a console page reads from its form or query string (pages have no OpenAPI entry,
    so their source is the only place that says)."""
    if route.surface not in ("console_page", "admin_page"):
        return []
    source = inspect.getsource(inspect.unwrap(app.view_functions[route.endpoint]))
    return sorted(set(re.findall(r'"(\w+_id)"', source)) - set(route.rule.arguments)
                  - set(NOT_ROW_IDS))


def session_checked(app, route) -> bool:
    """Whether a page is behind staff_page/admin_page (sign-in pages are open to all)."""
    view = app.view_functions[route.endpoint]
    while view is not None:
        if view.__code__.co_filename.endswith("console/session.py"):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


def with_field(value, name: str, new):
    """``value`` with every ``name`` in it (at any depth) set to ``new``."""
    if isinstance(value, dict):
        return {k: new if k == name else with_field(v, name, new) for k, v in value.items()}
    if isinstance(value, list):
        return [with_field(item, name, new) for item in value]
    return value


def ghost_of(kind: str, tenant) -> int | str:
    if kind == "share_link":  # a token of the tenant's shape that no link has
        return f"{tenant.id('share_link').split('-')[0]}-zzzzzzzzzz"
    return GHOST_ID


def combos(args: list[str], tenant) -> list[tuple[str, dict]]:
    """(label, ids) for every combination of the tenant's rows of each argument's kind."""
    choices = [[(f"{arg}={label}", arg, value)
                for label, value in tenant.ids[ID_KINDS[arg]].items()] for arg in args]
    return [(", ".join(c[0] for c in combo), {c[1]: c[2] for c in combo})
            for combo in itertools.product(*choices)]


@dataclass
class Matrix:
    """The world, its principals and the API description the cases are generated from."""

    app: object
    world: object
    spec: dict
    pages: dict  # role -> (page client, CSRF token) of A's staff; "admin" -> the admin's

    @property
    def routes(self):
        return routes(self.app)

    def op(self, method: str, path: str):
        return next((op for op in operations(self.spec)
                     if (op.method, op.path) == (method, path)), None)

    def body(self, route, tenant, principal: str):
        """A valid body for the route, its own ids from ``tenant``."""
        if route.method not in ("POST", "PUT", "PATCH"):
            return None
        if route.surface.endswith("_page"):
            _, csrf = self.pages[principal]
            return {**FORM, "csrf_token": csrf, **{
                name: str(tenant.id(ID_KINDS[name])) for name in page_id_fields(self.app, route)}}
        op = self.op(route.method, template(route.rule))
        schema = op.body_schema if op else None
        return None if schema is None else sample(self.spec, schema, tenant.id)

    def send_as(self, route, principal: str) -> dict:
        """The client or headers of ``principal``: a role of A, "mallory", "admin", "b-owner"."""
        w = self.world
        if route.surface.endswith("_page"):
            return {"client": self.pages[principal][0]}
        headers = {"mallory": w.mallory, "admin": w.admin, "b-owner": w.b.staff["owner"],
                   "anyone": {}}
        return {"headers": headers[principal] if principal in headers else w.a.staff[principal]}

    def case(self, label: str, route, principal: str, ids: dict, ghost: dict, *, own,
             secrets, **options) -> Case:
        body = self.body(route, own, principal)
        return Case(label=label, method=route.method, path=route.path(ids),
                    ghost_path=route.path(ghost), body=body, ghost_body=body,
                    blank=(*ids.values(), *ghost.values()), secrets=tuple(secrets),
                    **self.send_as(route, principal), **options)


def staff_cases(m: Matrix):
    """A's staff on every console route and page taking an id, with B's ids: the owner (who
    passes every role check) with each of B's rows of that kind, the other roles with one."""
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.surface not in ("console_api", "console_page") or not route.id_args:
            continue
        ghost = {arg: ghost_of(ID_KINDS[arg], b) for arg in route.id_args}
        for role in a.staff:
            rows = combos(route.id_args, b)
            for label, ids in rows if role == "owner" else rows[:1]:
                yield m.case(f"A's {role}: {route} with B's {label}", route, role, ids, ghost,
                             own=a, secrets=b.private + b.public)


def staff_field_cases(m: Matrix):
    """A's owner aims a route at A's own rows but names B's rows in the body, query or form:
    an upline, a level, a member to filter by."""
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.surface not in ("console_api", "console_page"):
            continue
        own = {arg: a.id(ID_KINDS[arg]) for arg in route.id_args}
        for place, name in field_ids(m, route):
            kind = ID_KINDS[name]
            for label, value in b.ids[kind].items():
                case = m.case(f"A's owner: {route} naming B's {kind} {label} in its {place}",
                              route, "owner", own, own, own=a,
                              secrets=b.private + b.public,
                              allowed=CLIENT_ERRORS if place != "query" else ANY_STATUS)
                aim(case, place, name, value, ghost_of(kind, b))
                yield case


def field_ids(m: Matrix, route) -> list[tuple[str, str]]:
    """(place, name) of the ids a route reads from its body, query string or form."""
    if route.surface.endswith("_page"):
        place = "query" if route.method == "GET" else "form"
        return [(place, name) for name in page_id_fields(m.app, route)]
    op = m.op(route.method, template(route.rule))
    return op.id_fields if op else []


def aim(case: Case, place: str, name: str, value, ghost) -> None:
    """Put ``value`` (and in the ghost request ``ghost``) in the case's body or query."""
    if place == "query":
        case.query, case.ghost_query = {name: value}, {name: ghost}
    else:
        case.body, case.ghost_body = (with_field(case.body, name, value),
                                      with_field(case.body, name, ghost))
    case.blank += (value, ghost)


def member_cases(m: Matrix):
    """mallory, a distributor of A, on every mini-program route taking an id: another shop's
    rows under either shop's path, and another member's rows (orders, team members) in
    either shop; a share token forged from A's prefix and B's link."""
    a, b = m.world.a, m.world.b
    secrets = a.private + b.private + b.public
    for route in m.routes:
        others = [arg for arg in route.id_args if arg != "merchant_id"]
        if route.surface != "mp" or not others:
            continue
        member_kinds = {ID_KINDS[arg] for arg in others} & PER_MEMBER_KINDS
        variants = [(a, b, "another shop's"), (b, a, "another shop's")]
        variants += [(a, a, "another member's"), (b, b, "another member's")] \
            if member_kinds else []
        for shop, source, whose in variants:
            ghost = {"merchant_id": shop.merchant_id,
                     **{arg: ghost_of(ID_KINDS[arg], shop) for arg in others}}
            rows = combos(others, source)
            if "token" in others:  # A's merchant prefix on B's random part
                forged = f"{shop.id('share_link').split('-')[0]}-" \
                         f"{source.id('share_link').split('-')[1]}"
                rows.append(("a forged token", {"token": forged}))
            for label, ids in rows:
                yield m.case(f"mallory: {route} in shop {shop.tag} with {whose} {label}", route,
                             "mallory", {"merchant_id": shop.merchant_id, **ids}, ghost,
                             own=shop, secrets=secrets)


def member_shop_cases(m: Matrix):
    """mallory on B's routes that answer a member about their own membership, wallet, team
    or withdrawals: she is no member there, so there is nothing of hers and nothing of
    anyone else's to show."""
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.surface != "mp" or route.id_args != ["merchant_id"]:
            continue
        kind = MP_MERCHANT_ROUTES[route.endpoint]
        if kind in ("public", "first_contact"):  # open to every user by design
            continue
        ids = {"merchant_id": b.merchant_id}
        yield m.case(f"mallory: {route} in shop B, where she is no member", route, "mallory",
                     ids, ids, own=b, secrets=a.private + b.private, compare=False,
                     allowed=REFUSALS if kind == "member" else frozenset({200}))


def member_field_cases(m: Matrix):
    """mallory names another shop's rows, or another member's, in a body or query string
    under A's path: a product to share or buy, a team member to open."""
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.surface != "mp":
            continue
        own = {arg: a.id(ID_KINDS[arg]) for arg in route.id_args}
        for place, name in field_ids(m, route):
            kind = ID_KINDS[name]
            sources = [b, a] if kind in PER_MEMBER_KINDS else [b]
            for source, (label, value) in ((s, row) for s in sources
                                           for row in s.ids[kind].items()):
                case = m.case(f"mallory: {route} naming {source.tag}'s {kind} {label} in its "
                              f"{place}", route, "mallory", own, own, own=a,
                              secrets=a.private + b.private + b.public, allowed=CLIENT_ERRORS)
                aim(case, place, name, value, ghost_of(kind, a))
                yield case


def landing_cases(m: Matrix):
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.surface != "landing":
            continue
        forged = f"{a.id('share_link').split('-')[0]}-{b.id('share_link').split('-')[1]}"
        yield m.case(f"anyone: {route} with a token forged from A's prefix and B's link", route,
                     "anyone", {"token": forged}, {"token": ghost_of("share_link", a)}, own=a,
                     secrets=b.private + b.public)


def admin_cases(m: Matrix):
    """Merchant reviews are the platform's: A's staff and mallory are refused on B, and B's
    owner on A, whatever the id."""
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.surface not in ("admin_api", "admin_page") or not route.id_args:
            continue
        principals = [("owner", b, a), ("b-owner", a, b), ("mallory", b, a)]
        for principal, target, own in principals:
            if route.surface == "admin_page" and principal != "owner":
                continue
            ids, ghost = {"merchant_id": target.merchant_id}, {"merchant_id": GHOST_ID}
            yield m.case(f"{principal}: {route} on merchant {target.tag}", route, principal,
                         ids, ghost, own=own, secrets=target.private)


def wrong_kind_cases(m: Matrix):
    """Every signed-in route, called with a token or session of another kind (a buyer's token
    on the console, a staff token on the mini-program, either on the admin area, an admin's
    session on the staff pages and the reverse), on A's own rows."""
    a = m.world.a
    wrong = {"console_api": ("mallory", "admin"), "mp": ("owner", "admin"),
             "admin_api": ("owner", "mallory"), "console_page": ("admin",),
             "admin_page": ("owner",)}
    for route in m.routes:
        if route.surface not in wrong or not signed_in_only(m, route):
            continue
        ids = {arg: a.id(ID_KINDS[arg]) for arg in route.id_args}
        for principal in wrong[route.surface]:
            yield m.case(f"{principal}: {route}", route, principal, ids, ids, own=a,
                         secrets=a.private, compare=False)


def own_read_cases(m: Matrix):
    """What A's owner reads (every console page and GET route, over each of A's rows) and
    what mallory reads about herself in A carry nothing of B's, nor of A's other members."""
    a, b = m.world.a, m.world.b
    for route in m.routes:
        if route.method != "GET":
            continue
        if route.surface in ("console_api", "console_page"):
            for label, ids in combos(route.id_args, a):
                yield m.case(f"A's owner: {route} on A's {label or 'rows'}", route, "owner",
                             ids, ids, own=a, secrets=b.private + b.public, compare=False,
                             allowed=frozenset(range(200, 500)))
        elif route.surface == "mp" and set(route.id_args) <= {"merchant_id"}:
            ids = {"merchant_id": a.merchant_id} if route.id_args else {}
            yield m.case(f"mallory: {route} in shop A", route, "mallory", ids, ids, own=a,
                         secrets=a.private + b.private + b.public, compare=False,
                         allowed=frozenset({200}))


def signed_in_only(m: Matrix, route) -> bool:
    if route.surface.endswith("_page"):
        return session_checked(m.app, route)
    op = m.op(route.method, template(route.rule))
    return bool(op and op.secured)


@pytest.fixture(scope="class")
def world(app, sandbox_url):
    """Merchants A and B, built once for the class that uses them and emptied at its end."""
    try:
        yield build_world(app, app.test_client(), sandbox_url)
    finally:
        empty_database(app)


@pytest.fixture(scope="class")
def matrix(app, world):
    pages = {role: page_client(app, staff_id) for role, staff_id in world.a.staff_ids.items()}
    pages["admin"] = page_client(app, world.admin_id, admin=True)
    spec = app.test_client().get("/api/openapi.json").get_json()
    return Matrix(app, world, spec, pages), Runner(app)


class TestTheMatrix:
    """One world serves every case of this class."""

    @pytest.fixture(autouse=True)
    def _clean_state(self):
        # Overrides the shared fixture: emptying the tables after each test would drop the
        # world the other tests of this class still use (``world`` empties them at the end).
        yield

    @staticmethod
    def run_all(matrix, subtests, *generators) -> None:
        m, runner = matrix
        cases = [case for generate in generators for case in generate(m)]
        assert cases, "the route map generated no case"
        for case in cases:
            with subtests.test(msg=case.label):
                runner.check(case)

    def test_staff_find_nothing_under_another_merchants_ids(self, matrix, subtests):
        self.run_all(matrix, subtests, staff_cases, staff_field_cases)

    def test_members_find_nothing_under_other_members_or_shops_ids(self, matrix, subtests):
        self.run_all(matrix, subtests, member_cases, member_shop_cases, member_field_cases,
                     landing_cases)

    def test_only_the_platform_reviews_merchants(self, matrix, subtests):
        self.run_all(matrix, subtests, admin_cases)

    def test_a_token_or_session_of_another_kind_opens_nothing(self, matrix, subtests):
        self.run_all(matrix, subtests, wrong_kind_cases)

    def test_what_staff_and_members_may_read_shows_only_their_own_shop(self, matrix,
                                                                         subtests):
        self.run_all(matrix, subtests, own_read_cases)


def test_the_route_map_knows_every_route_and_id(app, client):
    spec = client.get("/api/openapi.json").get_json()
    problems = gaps(app, spec)
    for route in routes(app):
        problems += [f"{route}: form or query field {name!r} has no id kind"
                     for name in page_id_fields(app, route) if name not in ID_KINDS]
    assert problems == []
