"""Share visits and bindings on PostgreSQL (app/services/attribution.py): every mode and trigger,
every refusal, the append-only binding log, and 50 simultaneous visits by one new member."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.exc import DBAPIError

from app.database import transaction, utcnow
from app.domain import attribution as rules_of_attribution
from app.extensions import db
from app.models import BindingLog, Member, Merchant, User, Visit
from app.services import attribution, members, tree
from app.services.merchants import program_rules
from tests.factories import make_member, make_merchant, make_share_link, make_user
from tests.integration.test_tree_properties import (
    check_counters,
    check_structure,
    drain,
    stored_counters,
)

CONTEXT = attribution.VisitContext(channel="miniprogram", scene_value="1047",
                                   ip_hash="9f86d081", user_agent="MicroMessenger/8.0")
MODES = ["permanent", "time_limited", "last_touch"]


# --- helpers ----------------------------------------------------------------------------------

def set_rules(merchant_id: int, **rules) -> None:
    with transaction(db.session):
        db.session.get(Merchant, merchant_id).program_rules = rules


def visit(link, user_id: int | None) -> attribution.VisitOutcome:
    return attribution.record_visit(token=link.token, user_id=user_id, context=CONTEXT)


def member_of(merchant_id: int, user_id: int) -> Member:
    db.session.rollback()  # read what is committed now
    member = members.find_member(merchant_id=merchant_id, user_id=user_id)
    assert member is not None
    return member


def fresh(member: Member) -> Member:
    db.session.rollback()
    return db.session.get(Member, (member.merchant_id, member.id))


def logs_of(merchant_id: int, member_id: int) -> list[BindingLog]:
    db.session.rollback()
    return list(db.session.scalars(select(BindingLog).where(
        BindingLog.merchant_id == merchant_id, BindingLog.member_id == member_id)
        .order_by(BindingLog.id)))


def visit_rows(merchant_id: int) -> list[Visit]:
    db.session.rollback()
    return list(db.session.scalars(select(Visit).where(Visit.merchant_id == merchant_id)
                                   .order_by(Visit.id)))


def shift(member: Member, *, bound_back: timedelta) -> None:
    with transaction(db.session):
        row = db.session.get(Member, (member.merchant_id, member.id))
        row.bound_at = row.bound_at - bound_back


def age_account(user_id: int, *, by: timedelta) -> None:
    with transaction(db.session):
        user = db.session.get(User, user_id)
        user.created_at = utcnow() - by


def assert_last_log(merchant_id: int, member_id: int, *, outcome: str, reason: str, rule: str,
                    distributor_id: int, previous: int | None, share_link_id: int) -> None:
    last = logs_of(merchant_id, member_id)[-1]
    assert (last.outcome, last.reason, last.rule) == (outcome, reason, rule)
    assert (last.distributor_id, last.previous_upline_id, last.share_link_id) == \
        (distributor_id, previous, share_link_id)


def assert_last_visit(merchant_id: int, *, link, user_id: int | None, reason: str) -> None:
    last = visit_rows(merchant_id)[-1]
    assert (last.share_link_id, last.distributor_id, last.visitor_user_id) == \
        (link.id, link.distributor_id, user_id)
    assert (last.channel, last.scene_value, last.binding_reason) == ("miniprogram", "1047", reason)


@pytest.fixture
def shop(app_context):
    """A merchant with two active distributors and their share links."""
    merchant = make_merchant()
    first, second = make_member(merchant), make_member(merchant)
    return merchant, first, make_share_link(first), second, make_share_link(second)


# --- each mode with each trigger --------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_visit_trigger_binds_a_new_visitor(shop, mode):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_mode=mode)
    user = make_user()

    outcome = visit(link, user.id)

    assert (outcome.bound, outcome.reason) == (True, "bound")
    assert (outcome.merchant_id, outcome.distributor_id, outcome.share_link_id) == \
        (merchant.id, distributor.id, link.id)
    member = member_of(merchant.id, user.id)
    assert member.upline_id == distributor.id
    assert member.path == f"/{distributor.id}/" and member.depth == 1
    assert utcnow() - member.bound_at < timedelta(minutes=1)
    assert fresh(distributor).direct_members == 1  # in the binding's own transaction
    assert_last_log(merchant.id, member.id, outcome="bound", reason="bound",
                    rule=f"{mode}/visit", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)
    assert_last_visit(merchant.id, link=link, user_id=user.id, reason="bound")
    drain(merchant.id)
    check_counters(merchant.id, drained=True)
    assert stored_counters(merchant.id)[distributor.id][:2] == (1, 1)


@pytest.mark.parametrize("mode", MODES)
def test_register_trigger_binds_an_account_inside_the_window(shop, mode):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_mode=mode, bind_trigger="register")
    user = make_user()
    age_account(user.id, by=timedelta(minutes=29))

    outcome = visit(link, user.id)

    assert (outcome.bound, outcome.reason) == (True, "bound")
    member = member_of(merchant.id, user.id)
    assert member.upline_id == distributor.id
    assert_last_log(merchant.id, member.id, outcome="bound", reason="bound",
                    rule=f"{mode}/register", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)


@pytest.mark.parametrize("mode", MODES)
def test_register_trigger_refuses_an_account_older_than_the_window(shop, mode):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_mode=mode, bind_trigger="register")
    user = make_user()
    age_account(user.id, by=timedelta(minutes=31))

    outcome = visit(link, user.id)

    assert (outcome.bound, outcome.reason) == (False, "register_window_closed")
    member = member_of(merchant.id, user.id)
    assert member.upline_id is None and member.path == "/"
    assert_last_log(merchant.id, member.id, outcome="refused", reason="register_window_closed",
                    rule=f"{mode}/register", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)
    assert_last_visit(merchant.id, link=link, user_id=user.id, reason="register_window_closed")
    assert fresh(distributor).direct_members == 0


@pytest.mark.parametrize("mode", MODES)
def test_first_order_trigger_remembers_the_visit_and_the_first_order_binds(shop, mode):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_mode=mode, bind_trigger="first_order")
    user = make_user()

    outcome = visit(link, user.id)

    assert (outcome.bound, outcome.reason) == (False, "pending_first_order")
    member = member_of(merchant.id, user.id)
    assert member.upline_id is None
    assert (member.pending_upline_id, member.pending_share_link_id) == (distributor.id, link.id)
    assert fresh(distributor).direct_members == 0
    assert_last_log(merchant.id, member.id, outcome="remembered", reason="pending_first_order",
                    rule=f"{mode}/first_order", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)
    assert_last_visit(merchant.id, link=link, user_id=user.id, reason="pending_first_order")

    with transaction(db.session):
        tree.lock_tree(merchant.id)
        reason = attribution.redeem_first_order(
            member=db.session.get(Member, (merchant.id, member.id)),
            rules=program_rules(db.session.get(Merchant, merchant.id)))

    assert reason == "bound"
    member = fresh(member)
    assert member.upline_id == distributor.id and member.path == f"/{distributor.id}/"
    assert (member.pending_upline_id, member.pending_share_link_id) == (None, None)
    assert_last_log(merchant.id, member.id, outcome="bound", reason="bound",
                    rule=f"{mode}/first_order", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)
    drain(merchant.id)
    check_counters(merchant.id, drained=True)
    assert stored_counters(merchant.id)[distributor.id][:2] == (1, 1)


def test_a_second_first_order_redeems_nothing(shop):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_trigger="first_order")
    user = make_user()
    visit(link, user.id)
    member = member_of(merchant.id, user.id)
    rules = program_rules(db.session.get(Merchant, merchant.id))
    for expected in ("bound", None):
        with transaction(db.session):
            tree.lock_tree(merchant.id)
            reason = attribution.redeem_first_order(
                member=db.session.get(Member, (merchant.id, member.id)), rules=rules)
        assert reason == expected
    assert [log.outcome for log in logs_of(merchant.id, member.id)] == ["remembered", "bound"]


def test_first_order_refuses_a_distributor_frozen_since_the_visit(shop):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_trigger="first_order")
    user = make_user()
    visit(link, user.id)
    members.review(merchant_id=merchant.id, member_id=distributor.id, action="freeze",
                   reason="risk review", staff_id=1)
    member = member_of(merchant.id, user.id)

    with transaction(db.session):
        tree.lock_tree(merchant.id)
        reason = attribution.redeem_first_order(
            member=db.session.get(Member, (merchant.id, member.id)),
            rules=program_rules(db.session.get(Merchant, merchant.id)))

    assert reason == "inactive_distributor"
    member = fresh(member)
    assert member.upline_id is None and member.pending_upline_id is None
    assert_last_log(merchant.id, member.id, outcome="refused", reason="inactive_distributor",
                    rule="permanent/first_order", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)


# --- rebinding by mode ------------------------------------------------------------------------

def test_permanent_keeps_the_first_upline_however_old(shop):
    merchant, first, first_link, second, second_link = shop
    user = make_user()
    visit(first_link, user.id)
    member = member_of(merchant.id, user.id)
    shift(member, bound_back=timedelta(days=400))

    outcome = visit(second_link, user.id)

    assert (outcome.bound, outcome.reason) == (False, "already_bound")
    assert member_of(merchant.id, user.id).upline_id == first.id
    assert_last_log(merchant.id, member.id, outcome="refused", reason="already_bound",
                    rule="permanent/visit", distributor_id=second.id, previous=first.id,
                    share_link_id=second_link.id)
    assert_last_visit(merchant.id, link=second_link, user_id=user.id, reason="already_bound")


def test_time_limited_binding_lapses_and_a_new_share_rebinds(shop):
    merchant, first, first_link, second, second_link = shop
    set_rules(merchant.id, bind_mode="time_limited", bind_days=30)
    user = make_user()
    visit(first_link, user.id)
    member = member_of(merchant.id, user.id)
    rules = program_rules(db.session.get(Merchant, merchant.id))

    assert visit(second_link, user.id).reason == "already_bound"  # still inside 30 days
    member = member_of(merchant.id, user.id)
    assert member.upline_id == first.id
    assert rules_of_attribution.has_effective_upline(
        rules, upline_id=member.upline_id, bound_at=member.bound_at, now=utcnow())

    shift(member, bound_back=timedelta(days=30, minutes=1))
    member = member_of(merchant.id, user.id)
    assert member.upline_id == first.id  # the row stays until a new share...
    assert not rules_of_attribution.has_effective_upline(  # ...but earns nobody commission
        rules, upline_id=member.upline_id, bound_at=member.bound_at, now=utcnow())

    outcome = visit(second_link, user.id)

    assert (outcome.bound, outcome.reason) == (True, "rebound")
    member = member_of(merchant.id, user.id)
    assert member.upline_id == second.id and member.path == f"/{second.id}/"
    assert utcnow() - member.bound_at < timedelta(minutes=1)
    assert rules_of_attribution.has_effective_upline(
        rules, upline_id=member.upline_id, bound_at=member.bound_at, now=utcnow())
    assert_last_log(merchant.id, member.id, outcome="rebound", reason="rebound",
                    rule="time_limited/visit", distributor_id=second.id, previous=first.id,
                    share_link_id=second_link.id)
    assert (fresh(first).direct_members, fresh(second).direct_members) == (0, 1)
    drain(merchant.id)
    check_counters(merchant.id, drained=True)
    counters = stored_counters(merchant.id)
    assert (counters[first.id][:2], counters[second.id][:2]) == ((0, 0), (1, 1))


def test_last_touch_without_protection_rebinds_at_once(shop):
    merchant, first, first_link, second, second_link = shop
    set_rules(merchant.id, bind_mode="last_touch")
    user = make_user()
    visit(first_link, user.id)

    outcome = visit(second_link, user.id)

    assert (outcome.bound, outcome.reason) == (True, "rebound")
    member = member_of(merchant.id, user.id)
    assert member.upline_id == second.id
    assert_last_log(merchant.id, member.id, outcome="rebound", reason="rebound",
                    rule="last_touch/visit", distributor_id=second.id, previous=first.id,
                    share_link_id=second_link.id)
    drain(merchant.id)
    check_counters(merchant.id, drained=True)


def test_last_touch_protection_holds_then_ends(shop):
    merchant, first, first_link, second, second_link = shop
    set_rules(merchant.id, bind_mode="last_touch", protection_days=2)
    user = make_user()
    visit(first_link, user.id)
    member = member_of(merchant.id, user.id)

    outcome = visit(second_link, user.id)

    assert (outcome.bound, outcome.reason) == (False, "protected")
    assert member_of(merchant.id, user.id).upline_id == first.id
    assert_last_log(merchant.id, member.id, outcome="refused", reason="protected",
                    rule="last_touch/visit", distributor_id=second.id, previous=first.id,
                    share_link_id=second_link.id)

    shift(member, bound_back=timedelta(days=2))
    assert visit(second_link, user.id).reason == "rebound"
    assert member_of(merchant.id, user.id).upline_id == second.id


# --- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_a_distributor_opening_its_own_share_is_refused(shop, mode):
    merchant, distributor, link, _, _ = shop
    set_rules(merchant.id, bind_mode=mode)
    user_id = fresh(distributor).user_id

    outcome = visit(link, user_id)

    assert (outcome.bound, outcome.reason) == (False, "self")
    assert fresh(distributor).upline_id is None
    assert_last_log(merchant.id, distributor.id, outcome="refused", reason="self",
                    rule=f"{mode}/visit", distributor_id=distributor.id, previous=None,
                    share_link_id=link.id)
    assert_last_visit(merchant.id, link=link, user_id=user_id, reason="self")


@pytest.mark.parametrize("mode", MODES)
def test_binding_under_ones_own_team_is_refused(shop, mode):
    merchant, leader, _, _, _ = shop
    set_rules(merchant.id, bind_mode=mode)
    child = make_member(merchant, upline=leader)
    grandchild = make_member(merchant, upline=child)
    link = make_share_link(grandchild)

    outcome = visit(link, fresh(leader).user_id)

    assert (outcome.bound, outcome.reason) == (False, "cycle")
    assert fresh(leader).upline_id is None
    check_structure(merchant.id)
    assert_last_log(merchant.id, leader.id, outcome="refused", reason="cycle",
                    rule=f"{mode}/visit", distributor_id=grandchild.id, previous=None,
                    share_link_id=link.id)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", ["none", "pending", "rejected", "frozen", "left"])
def test_a_share_of_an_inactive_distributor_is_refused(app_context, mode, status):
    merchant = make_merchant(rules={"bind_mode": mode})
    inactive = make_member(merchant, status=status)
    link = make_share_link(inactive)
    user = make_user()

    outcome = visit(link, user.id)

    assert (outcome.bound, outcome.reason) == (False, "inactive_distributor")
    member = member_of(merchant.id, user.id)
    assert member.upline_id is None
    assert fresh(inactive).direct_members == 0
    assert_last_log(merchant.id, member.id, outcome="refused", reason="inactive_distributor",
                    rule=f"{mode}/visit", distributor_id=inactive.id, previous=None,
                    share_link_id=link.id)
    assert_last_visit(merchant.id, link=link, user_id=user.id, reason="inactive_distributor")


def test_an_anonymous_visit_is_recorded_without_a_decision(shop):
    merchant, _, link, _, _ = shop

    outcome = visit(link, None)

    assert (outcome.bound, outcome.reason) == (False, "")
    assert_last_visit(merchant.id, link=link, user_id=None, reason="")
    assert db.session.scalar(select(func.count()).select_from(BindingLog)) == 0


def test_every_call_writes_one_visit_and_every_decision_one_log(shop):
    merchant, first, first_link, second, second_link = shop
    user = make_user()
    calls = [(first_link, user.id), (first_link, user.id), (second_link, user.id),
             (first_link, None), (first_link, fresh(first).user_id)]
    for link, user_id in calls:
        visit(link, user_id)
    assert [v.binding_reason for v in visit_rows(merchant.id)] == \
        ["bound", "already_bound", "already_bound", "", "self"]
    db.session.rollback()
    reasons = db.session.scalars(select(BindingLog.reason).where(
        BindingLog.merchant_id == merchant.id).order_by(BindingLog.id)).all()
    assert reasons == ["bound", "already_bound", "already_bound", "self"]


# --- the log is append-only -------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE binding_logs SET reason = 'rebound', distributor_id = NULL",
    "DELETE FROM binding_logs",
    "UPDATE visits SET binding_reason = 'bound'",
    "DELETE FROM visits",
])
def test_binding_logs_and_visits_are_append_only_in_the_database(shop, statement):
    merchant, distributor, link, _, _ = shop
    user = make_user()
    visit(link, user.id)
    before = [(log.id, log.reason, log.distributor_id)
              for log in logs_of(merchant.id, member_of(merchant.id, user.id).id)]
    assert len(before) == 1

    with pytest.raises(DBAPIError) as caught:
        db.session.execute(text(statement))
    assert caught.value.orig.sqlstate == "23001"  # restrict_violation, raised by the trigger
    assert "append-only" in str(caught.value.orig)
    db.session.rollback()

    after = [(log.id, log.reason, log.distributor_id)
             for log in logs_of(merchant.id, member_of(merchant.id, user.id).id)]
    assert after == before
    assert len(visit_rows(merchant.id)) == 1


def test_an_orm_change_to_a_binding_log_is_refused(shop):
    merchant, _, link, _, _ = shop
    user = make_user()
    visit(link, user.id)
    log = logs_of(merchant.id, member_of(merchant.id, user.id).id)[0]
    log.reason = "moved"
    with pytest.raises(DBAPIError):
        db.session.commit()
    db.session.rollback()
    assert logs_of(merchant.id, log.member_id)[0].reason == "bound"


# --- concurrency ------------------------------------------------------------------------------

def _race(app, tokens: list[str], user_id: int) -> tuple[list, list]:
    barrier = threading.Barrier(len(tokens))
    outcomes, errors = [], []

    def open_share(token: str) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                outcomes.append(attribution.record_visit(token=token, user_id=user_id,
                                                         context=CONTEXT))
            except Exception as error:  # noqa: BLE001 — collected and asserted below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=open_share, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a visit never finished"
    return outcomes, errors


def _race_setup(rules: dict | None = None, count: int = 50):
    """A merchant, ``count`` active distributors with links, and a new user; the session is
    cleared so that the threads alone touch the database."""
    merchant = make_merchant(rules=rules)
    distributors = [make_member(merchant) for _ in range(count)]
    tokens = [make_share_link(d).token for d in distributors]
    ids = (merchant.id, [d.id for d in distributors], make_user().id)
    db.session.remove()
    return ids, tokens


@pytest.mark.parametrize("membership", ["new user", "existing unbound member"])
def test_fifty_simultaneous_shares_bind_a_new_member_exactly_once(app, app_context, membership):
    (merchant_id, distributor_ids, user_id), tokens = _race_setup()
    if membership == "existing unbound member":  # no unique insert to serialize the race
        with transaction(db.session):
            members.ensure_member(merchant_id=merchant_id, user_id=user_id)
        db.session.remove()

    outcomes, errors = _race(app, tokens, user_id)

    assert errors == []
    assert sorted(o.reason for o in outcomes).count("already_bound") == 49
    winners = [o for o in outcomes if o.bound]
    assert [o.reason for o in winners] == ["bound"]
    member = member_of(merchant_id, user_id)
    assert member.upline_id == winners[0].distributor_id
    assert db.session.scalar(select(func.count()).select_from(Member).where(
        Member.merchant_id == merchant_id, Member.user_id == user_id)) == 1
    logs = logs_of(merchant_id, member.id)
    assert len(logs) == 50
    assert [log.distributor_id for log in logs if log.outcome == "bound"] == [member.upline_id]
    assert len(visit_rows(merchant_id)) == 50
    direct = dict(db.session.execute(select(Member.id, Member.direct_members).where(
        Member.merchant_id == merchant_id, Member.id.in_(distributor_ids))).all())
    assert direct == {i: int(i == member.upline_id) for i in distributor_ids}
    drain(merchant_id)
    check_structure(merchant_id)
    check_counters(merchant_id, drained=True)


def test_fifty_simultaneous_last_touch_shares_rebind_one_at_a_time(app, app_context):
    (merchant_id, distributor_ids, user_id), tokens = _race_setup({"bind_mode": "last_touch"})

    outcomes, errors = _race(app, tokens, user_id)

    assert errors == []
    assert sorted(o.reason for o in outcomes) == ["bound"] + ["rebound"] * 49
    member = member_of(merchant_id, user_id)
    logs = logs_of(merchant_id, member.id)
    assert [log.outcome for log in logs] == ["bound"] + ["rebound"] * 49
    # Each rebinding saw the binding before it: the log is one unbroken chain.
    assert all(later.previous_upline_id == earlier.distributor_id
               for earlier, later in zip(logs, logs[1:], strict=False))
    assert member.upline_id == logs[-1].distributor_id
    assert db.session.scalar(select(func.sum(Member.direct_members)).where(
        Member.merchant_id == merchant_id, Member.id.in_(distributor_ids))) == 1
    drain(merchant_id)
    check_structure(merchant_id)
    check_counters(merchant_id, drained=True)


def test_a_binding_is_only_ever_applied_under_the_tree_lock(shop, monkeypatch):
    merchant, _, _, _, _ = shop
    pending = make_member(merchant, status="pending")
    link = make_share_link(pending)
    user = make_user()
    merchant_id, pending_id = merchant.id, pending.id
    locked_at_attach = []
    real_attach = tree.attach

    def attach(member, upline):
        locked_at_attach.append(db.session.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid()")) > 0)
        real_attach(member, upline)

    def approve_between_look_and_write(session):
        # The merchant approves the distributor just after the first, unlocked look.
        if approved:
            return
        approved.append(True)
        with db.engine.begin() as connection:
            connection.execute(update(Member).where(
                Member.merchant_id == merchant_id, Member.id == pending_id)
                .values(distributor_status="active"))

    approved = []
    monkeypatch.setattr(tree, "attach", attach)
    db.session.rollback()
    session = db.session()
    event.listen(session, "after_rollback", approve_between_look_and_write)
    try:
        outcome = visit(link, user.id)
    finally:
        event.remove(session, "after_rollback", approve_between_look_and_write)

    assert outcome.reason == "bound"  # the approval did land before the write
    assert locked_at_attach == [True]
