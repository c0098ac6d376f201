"""The attribution decision (app/domain/attribution.py): every reason, every mode, every trigger.

The boundaries are DOMAIN.md's: a time-limited binding lapses exactly ``bind_days`` after it was
made, last-touch protection ends exactly ``protection_days`` after the last binding, and the
register window closes exactly ``register_window_minutes`` after the account was created.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import attribution as a
from app.domain.attribution import BindingFacts, binding_expired, decide_binding
from app.domain.program_rules import ProgramRules, rules_from_dict

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MEMBER, DISTRIBUTOR, OTHER = 10, 20, 30
SECOND = timedelta(seconds=1)


def rules(**changes) -> ProgramRules:
    return rules_from_dict(None, changes)


def facts(**overrides) -> BindingFacts:
    base = {"now": NOW, "member_id": MEMBER, "member_upline_id": None, "member_bound_at": None,
            "user_created_at": NOW - timedelta(minutes=5), "distributor_id": DISTRIBUTOR,
            "distributor_active": True, "distributor_in_member_team": False, "event": "visit"}
    base.update(overrides)
    return BindingFacts(**base)


def bound_to(upline: int, *, ago: timedelta) -> dict:
    return {"member_upline_id": upline, "member_bound_at": NOW - ago}


PERMANENT = {"bind_mode": "permanent"}
TIME_LIMITED = {"bind_mode": "time_limited", "bind_days": 30}
LAST_TOUCH = {"bind_mode": "last_touch", "protection_days": 0}
LAST_TOUCH_PROTECTED = {"bind_mode": "last_touch", "protection_days": 3}
MODES = {"permanent": PERMANENT, "time_limited": TIME_LIMITED, "last_touch": LAST_TOUCH,
         "last_touch_protected": LAST_TOUCH_PROTECTED}
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)

# (id, rule changes, fact overrides, expected reason)
CASES = [
    # permanent: the first valid upline stays, however old the binding
    ("permanent-unbound-binds", PERMANENT, {}, a.BOUND),
    ("permanent-bound-elsewhere", PERMANENT, bound_to(OTHER, ago=MINUTE), a.ALREADY_BOUND),
    ("permanent-bound-long-ago", PERMANENT, bound_to(OTHER, ago=400 * DAY), a.ALREADY_BOUND),
    ("permanent-same-upline", PERMANENT, bound_to(DISTRIBUTOR, ago=DAY), a.ALREADY_BOUND),
    # time_limited: expires at exactly bind_days
    ("time-limited-unbound-binds", TIME_LIMITED, {}, a.BOUND),
    ("time-limited-one-second-before-expiry", TIME_LIMITED,
     bound_to(OTHER, ago=30 * DAY - SECOND), a.ALREADY_BOUND),
    ("time-limited-at-expiry-rebinds", TIME_LIMITED, bound_to(OTHER, ago=30 * DAY), a.REBOUND),
    ("time-limited-after-expiry-rebinds", TIME_LIMITED, bound_to(OTHER, ago=31 * DAY),
     a.REBOUND),
    ("time-limited-same-upline-live", TIME_LIMITED, bound_to(DISTRIBUTOR, ago=29 * DAY),
     a.ALREADY_BOUND),
    ("time-limited-same-upline-expired-renews", TIME_LIMITED,
     bound_to(DISTRIBUTOR, ago=30 * DAY), a.REBOUND),
    ("time-limited-short-bind-days", {"bind_mode": "time_limited", "bind_days": 1},
     bound_to(OTHER, ago=DAY), a.REBOUND),
    ("time-limited-short-bind-days-live", {"bind_mode": "time_limited", "bind_days": 1},
     bound_to(OTHER, ago=DAY - SECOND), a.ALREADY_BOUND),
    # last_touch without protection: every valid visit rebinds at once
    ("last-touch-unbound-binds", LAST_TOUCH, {}, a.BOUND),
    ("last-touch-rebinds-immediately", LAST_TOUCH, bound_to(OTHER, ago=timedelta(0)),
     a.REBOUND),
    ("last-touch-same-upline", LAST_TOUCH, bound_to(DISTRIBUTOR, ago=DAY), a.ALREADY_BOUND),
    # last_touch with protection: protected until exactly protection_days
    ("last-touch-protected-unbound-binds", LAST_TOUCH_PROTECTED, {}, a.BOUND),
    ("last-touch-protected-just-bound", LAST_TOUCH_PROTECTED, bound_to(OTHER, ago=MINUTE),
     a.PROTECTED),
    ("last-touch-protected-one-second-before-end", LAST_TOUCH_PROTECTED,
     bound_to(OTHER, ago=3 * DAY - SECOND), a.PROTECTED),
    ("last-touch-protection-ends-exactly", LAST_TOUCH_PROTECTED, bound_to(OTHER, ago=3 * DAY),
     a.REBOUND),
    ("last-touch-protected-same-upline", LAST_TOUCH_PROTECTED,
     bound_to(DISTRIBUTOR, ago=MINUTE), a.ALREADY_BOUND),
    # register trigger: the window closes at exactly register_window_minutes
    ("register-inside-window", {"bind_trigger": "register"},
     {"user_created_at": NOW - 30 * MINUTE + SECOND}, a.BOUND),
    ("register-at-window-boundary", {"bind_trigger": "register"},
     {"user_created_at": NOW - 30 * MINUTE}, a.REGISTER_WINDOW_CLOSED),
    ("register-outside-window", {"bind_trigger": "register"},
     {"user_created_at": NOW - 31 * MINUTE}, a.REGISTER_WINDOW_CLOSED),
    ("register-custom-window-inside", {"bind_trigger": "register", "register_window_minutes": 5},
     {"user_created_at": NOW - 5 * MINUTE + SECOND}, a.BOUND),
    ("register-custom-window-boundary",
     {"bind_trigger": "register", "register_window_minutes": 5},
     {"user_created_at": NOW - 5 * MINUTE}, a.REGISTER_WINDOW_CLOSED),
    ("register-permanent-bound", {"bind_trigger": "register"},
     bound_to(OTHER, ago=MINUTE), a.ALREADY_BOUND),
    ("register-last-touch-inside-window", {"bind_trigger": "register", **LAST_TOUCH},
     {**bound_to(OTHER, ago=MINUTE), "user_created_at": NOW - 10 * MINUTE}, a.REBOUND),
    ("register-last-touch-outside-window", {"bind_trigger": "register", **LAST_TOUCH},
     {**bound_to(OTHER, ago=MINUTE), "user_created_at": NOW - 30 * MINUTE},
     a.REGISTER_WINDOW_CLOSED),
    ("register-time-limited-expired-inside-window", {"bind_trigger": "register", **TIME_LIMITED},
     {**bound_to(OTHER, ago=30 * DAY), "user_created_at": NOW - 29 * MINUTE}, a.REBOUND),
    # first_order trigger: a visit is remembered, the first order binds
    ("first-order-visit-remembered", {"bind_trigger": "first_order"}, {},
     a.PENDING_FIRST_ORDER),
    ("first-order-event-binds", {"bind_trigger": "first_order"}, {"event": "first_order"},
     a.BOUND),
    ("first-order-visit-permanent-bound", {"bind_trigger": "first_order"},
     bound_to(OTHER, ago=MINUTE), a.ALREADY_BOUND),
    ("first-order-event-permanent-bound", {"bind_trigger": "first_order"},
     {**bound_to(OTHER, ago=MINUTE), "event": "first_order"}, a.ALREADY_BOUND),
    ("first-order-visit-last-touch-bound", {"bind_trigger": "first_order", **LAST_TOUCH},
     bound_to(OTHER, ago=MINUTE), a.PENDING_FIRST_ORDER),
    ("first-order-event-last-touch-rebinds", {"bind_trigger": "first_order", **LAST_TOUCH},
     {**bound_to(OTHER, ago=MINUTE), "event": "first_order"}, a.REBOUND),
    ("first-order-event-last-touch-protected",
     {"bind_trigger": "first_order", **LAST_TOUCH_PROTECTED},
     {**bound_to(OTHER, ago=DAY), "event": "first_order"}, a.PROTECTED),
    ("first-order-visit-time-limited-expired", {"bind_trigger": "first_order", **TIME_LIMITED},
     bound_to(OTHER, ago=30 * DAY), a.PENDING_FIRST_ORDER),
    ("first-order-event-time-limited-live", {"bind_trigger": "first_order", **TIME_LIMITED},
     {**bound_to(OTHER, ago=DAY), "event": "first_order"}, a.ALREADY_BOUND),
    ("first-order-event-time-limited-expired", {"bind_trigger": "first_order", **TIME_LIMITED},
     {**bound_to(OTHER, ago=30 * DAY), "event": "first_order"}, a.REBOUND),
    # the first_order event of a member whose account is old is not held to a register window
    ("first-order-event-old-account", {"bind_trigger": "first_order"},
     {"event": "first_order", "user_created_at": NOW - 400 * DAY}, a.BOUND),
    # the always-refusals, one representative each (the grid below covers every mode)
    ("self", {}, {"distributor_id": MEMBER}, a.SELF),
    ("cycle", {}, {"distributor_in_member_team": True}, a.CYCLE),
    ("inactive", {}, {"distributor_active": False}, a.INACTIVE_DISTRIBUTOR),
]


@pytest.mark.parametrize(("changes", "overrides", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_decide_binding_table(changes, overrides, expected):
    assert decide_binding(rules(**changes), facts(**overrides)).reason == expected


def test_the_table_covers_every_reason():
    reasons = {case[3] for case in CASES}
    assert reasons == {a.BOUND, a.REBOUND, *a.REFUSALS, a.PENDING_FIRST_ORDER}


def test_decision_flags_follow_the_reason():
    assert a.Decision(a.BOUND).binds and a.Decision(a.REBOUND).binds
    assert a.Decision(a.PENDING_FIRST_ORDER).remembers
    assert not a.Decision(a.PENDING_FIRST_ORDER).binds
    for refusal in a.REFUSALS:
        assert not a.Decision(refusal).binds
        assert not a.Decision(refusal).remembers


# Every upline state a member can be in when a share arrives.
UPLINE_STATES = {
    "unbound": {},
    "bound-elsewhere-now": bound_to(OTHER, ago=timedelta(0)),
    "bound-elsewhere-long-ago": bound_to(OTHER, ago=400 * DAY),
    "bound-to-this-distributor-now": bound_to(DISTRIBUTOR, ago=timedelta(0)),
    "bound-to-this-distributor-long-ago": bound_to(DISTRIBUTOR, ago=400 * DAY),
}
TRIGGERS = {
    "visit": ({"bind_trigger": "visit"}, {}),
    "register-open": ({"bind_trigger": "register"}, {"user_created_at": NOW}),
    "register-closed": ({"bind_trigger": "register"}, {"user_created_at": NOW - 400 * DAY}),
    "first-order-visit": ({"bind_trigger": "first_order"}, {}),
    "first-order-event": ({"bind_trigger": "first_order"}, {"event": "first_order"}),
}
REFUSAL_FACTS = {
    a.SELF: {"distributor_id": MEMBER},
    a.CYCLE: {"distributor_in_member_team": True},
    a.INACTIVE_DISTRIBUTOR: {"distributor_active": False},
}


def _grid():
    for mode_name, mode in MODES.items():
        for trigger_name, (trigger, trigger_facts) in TRIGGERS.items():
            for state_name, state in UPLINE_STATES.items():
                for reason, refusal in REFUSAL_FACTS.items():
                    if reason == a.SELF and state.get("member_upline_id") == DISTRIBUTOR:
                        continue  # the member's upline would be the member itself
                    if reason == a.CYCLE and state.get("member_upline_id") == DISTRIBUTOR:
                        continue  # the upline cannot also be in the member's team
                    yield pytest.param({**mode, **trigger}, {**trigger_facts, **state, **refusal},
                                       reason, id=f"{reason}-{mode_name}-{trigger_name}-"
                                                  f"{state_name}")


@pytest.mark.parametrize(("changes", "overrides", "expected"), list(_grid()))
def test_self_cycle_and_inactive_refusals_win_in_every_mode(changes, overrides, expected):
    assert decide_binding(rules(**changes), facts(**overrides)).reason == expected


def test_binding_expired_only_in_time_limited_mode():
    old = NOW - 400 * DAY
    assert binding_expired(rules(**TIME_LIMITED), bound_at=old, now=NOW)
    assert not binding_expired(rules(**PERMANENT), bound_at=old, now=NOW)
    assert not binding_expired(rules(**LAST_TOUCH), bound_at=old, now=NOW)
    assert not binding_expired(rules(**TIME_LIMITED), bound_at=None, now=NOW)


@pytest.mark.parametrize(("changes", "upline", "ago", "expected"), [
    (TIME_LIMITED, OTHER, 30 * DAY - SECOND, True),
    (TIME_LIMITED, OTHER, 30 * DAY, False),
    (TIME_LIMITED, None, None, False),
    (PERMANENT, OTHER, 400 * DAY, True),
    (LAST_TOUCH, OTHER, 400 * DAY, True),
    (PERMANENT, None, None, False),
], ids=["time-limited-live", "time-limited-lapsed", "time-limited-unbound", "permanent-old",
        "last-touch-old", "permanent-unbound"])
def test_has_effective_upline(changes, upline, ago, expected):
    bound_at = None if ago is None else NOW - ago
    assert a.has_effective_upline(rules(**changes), upline_id=upline, bound_at=bound_at,
                                  now=NOW) is expected


# --- properties ---------------------------------------------------------------------------

ids = st.integers(1, 4)
offsets = st.integers(0, 90 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))

rule_sets = st.builds(
    lambda mode, trigger, bind_days, protection, window: rules(
        bind_mode=mode, bind_trigger=trigger, bind_days=bind_days, protection_days=protection,
        register_window_minutes=window),
    st.sampled_from(["permanent", "time_limited", "last_touch"]),
    st.sampled_from(["visit", "register", "first_order"]),
    st.integers(1, 60), st.integers(0, 10), st.integers(0, 180))


@st.composite
def any_facts(draw) -> BindingFacts:
    member_id = draw(ids)
    upline = draw(st.none() | ids.filter(lambda i: i != member_id))
    return BindingFacts(
        now=NOW, member_id=member_id, member_upline_id=upline,
        member_bound_at=None if upline is None else NOW - draw(offsets),
        user_created_at=NOW - draw(offsets), distributor_id=draw(ids),
        distributor_active=draw(st.booleans()), distributor_in_member_team=draw(st.booleans()),
        event=draw(st.sampled_from(["visit", "first_order"])))


@given(rule_sets, any_facts())
def test_never_binds_a_member_to_itself(program, fact):
    decision = decide_binding(program, fact)
    if fact.distributor_id == fact.member_id:
        assert decision.reason == a.SELF
        assert not decision.binds and not decision.remembers


@given(rule_sets, any_facts())
def test_never_binds_into_the_members_own_team(program, fact):
    decision = decide_binding(program, fact)
    if fact.distributor_in_member_team:
        assert not decision.binds and not decision.remembers


@given(rule_sets, any_facts())
def test_never_binds_or_remembers_an_inactive_distributor(program, fact):
    decision = decide_binding(program, fact)
    if not fact.distributor_active:
        assert not decision.binds and not decision.remembers


@given(rule_sets.map(lambda r: rules(bind_mode="permanent", bind_trigger=r.bind_trigger,
                                     register_window_minutes=r.register_window_minutes)),
       any_facts())
def test_permanent_never_rebinds(program, fact):
    decision = decide_binding(program, fact)
    assert decision.reason != a.REBOUND
    if fact.member_upline_id is not None:
        assert not decision.binds and not decision.remembers


@given(rule_sets, any_facts())
def test_bound_means_no_upline_and_rebound_means_a_different_one(program, fact):
    decision = decide_binding(program, fact)
    if decision.reason == a.BOUND:
        assert fact.member_upline_id is None
    if decision.reason == a.REBOUND:
        assert fact.member_upline_id is not None
        assert program.bind_mode in ("time_limited", "last_touch")


@given(rule_sets, any_facts())
def test_only_a_first_order_visit_is_remembered(program, fact):
    decision = decide_binding(program, fact)
    if decision.remembers:
        assert program.bind_trigger == "first_order" and fact.event == "visit"
    if program.bind_trigger == "first_order" and fact.event == "visit":
        assert not decision.binds


@given(rule_sets, any_facts())
def test_a_valid_share_to_an_unbound_member_is_never_refused_by_the_mode(program, fact):
    decision = decide_binding(program, fact)
    valid = (fact.distributor_id != fact.member_id and fact.distributor_active
             and not fact.distributor_in_member_team and fact.member_upline_id is None)
    if valid:
        assert decision.reason in (a.BOUND, a.PENDING_FIRST_ORDER, a.REGISTER_WINDOW_CLOSED)
