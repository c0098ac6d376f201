"""The member tree on PostgreSQL under random bindings, moves, reviews, sales and queue drains.

A hypothesis state machine drives the real services (attribution.record_visit,
attribution.redeem_first_order, members.move, members.review, tree.queue_sales,
tree.apply_team_deltas) on one merchant and checks, after every step, the tree's structure
against its upline chains and the counters against a recursive query over ``upline_id`` (the
test oracle DOMAIN.md names; production never runs it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

from app.database import transaction, utcnow
from app.domain import attribution as attribution_rules
from app.domain import tree as tree_rules
from app.domain.program_rules import rules_from_dict
from app.errors import Conflict
from app.extensions import db
from app.models import BindingLog, Member, Merchant, TeamDeltaRow, User, Visit
from app.services import attribution, members, tree
from app.services.merchants import program_rules
from tests.factories import make_member, make_merchant, make_share_link, make_user

CONTEXT = attribution.VisitContext(channel="miniprogram", scene_value="1047")

# --- the oracle -------------------------------------------------------------------------------

_CLOSURE = text("""
WITH RECURSIVE up(member_id, ancestor_id, steps) AS (
    SELECT id, upline_id, 1 FROM members
    WHERE merchant_id = :merchant_id AND upline_id IS NOT NULL
  UNION ALL
    SELECT up.member_id, m.upline_id, up.steps + 1
    FROM up JOIN members m ON m.merchant_id = :merchant_id AND m.id = up.ancestor_id
    WHERE m.upline_id IS NOT NULL AND up.steps <= :limit
)
SELECT member_id, ancestor_id, steps FROM up
""")


def member_rows(merchant_id: int) -> dict[int, dict]:
    """Every member of the merchant as stored, read fresh from the database."""
    rows = db.session.execute(select(
        Member.id, Member.upline_id, Member.path, Member.depth, Member.distributor_status,
        Member.bound_at, Member.pending_upline_id, Member.direct_members, Member.team_size,
        Member.team_sales_fen, Member.personal_sales_fen, Member.user_id)
        .where(Member.merchant_id == merchant_id)).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def ancestor_chains(merchant_id: int, *, limit: int = 10_000) -> dict[int, list[int]]:
    """Each member's ancestors, root first, by a recursive query over ``upline_id`` (bounded,
    so that a cycle shows as a chain longer than the member count instead of hanging)."""
    chains: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for member_id, ancestor_id, steps in db.session.execute(
            _CLOSURE, {"merchant_id": merchant_id, "limit": limit}):
        chains[member_id].append((steps, ancestor_id))
    return {member_id: [a for _, a in sorted(pairs, reverse=True)]
            for member_id, pairs in chains.items()}


def oracle_counters(merchant_id: int, personal: dict[int, int] | None = None
                    ) -> dict[int, tuple[int, int, int, int]]:
    """(direct_members, team_size, team_sales_fen, personal_sales_fen) of every member, from
    the recursive query; personal sales are the stored ones unless ``personal`` says."""
    rows = member_rows(merchant_id)
    chains = ancestor_chains(merchant_id, limit=len(rows) + 1)
    own = {i: (personal.get(i, 0) if personal is not None else row["personal_sales_fen"])
           for i, row in rows.items()}
    direct = defaultdict(int)
    size = defaultdict(int)
    sales = defaultdict(int)
    for row in rows.values():
        if row["upline_id"] is not None:
            direct[row["upline_id"]] += 1
    for member_id, chain in chains.items():
        for ancestor_id in chain:
            size[ancestor_id] += 1
            sales[ancestor_id] += own[member_id]
    return {i: (direct[i], size[i], sales[i], own[i]) for i in rows}


def stored_counters(merchant_id: int) -> dict[int, tuple[int, int, int, int]]:
    return {i: (r["direct_members"], r["team_size"], r["team_sales_fen"],
                r["personal_sales_fen"]) for i, r in member_rows(merchant_id).items()}


def queued_deltas(merchant_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(TeamDeltaRow)
                             .where(TeamDeltaRow.merchant_id == merchant_id))


def drain(merchant_id: int, *, batch: int = tree.DELTA_BATCH) -> int:
    with transaction(db.session):
        tree.lock_tree(merchant_id)
        applied = tree.apply_team_deltas(merchant_id, batch=batch)
    return applied


def check_structure(merchant_id: int) -> dict[int, dict]:
    """No member is its own ancestor, no cycle, path and depth agree with the upline chain."""
    rows = member_rows(merchant_id)
    limit = len(rows)
    walked: dict[int, list[int]] = {}
    for member_id, row in rows.items():
        assert row["upline_id"] != member_id, f"member {member_id} is its own upline"
        chain: list[int] = []
        upline = row["upline_id"]
        while upline is not None:
            assert upline != member_id, f"member {member_id} is its own ancestor"
            assert len(chain) < limit, f"the upline chain of {member_id} does not end"
            assert upline in rows, f"member {member_id} has an upline outside the merchant"
            chain.append(upline)
            upline = rows[upline]["upline_id"]
        chain.reverse()
        walked[member_id] = chain
        expected_path = "/" + "".join(f"{a}/" for a in chain)
        assert row["path"] == expected_path, (member_id, row["path"], chain)
        assert row["depth"] == len(chain) == tree_rules.depth(row["path"])
        assert tree_rules.ancestors(row["path"]) == chain
    recursive = ancestor_chains(merchant_id, limit=limit + 1)
    assert {i: c for i, c in walked.items() if c} == recursive
    return rows


def check_counters(merchant_id: int, personal: dict[int, int] | None = None,
                   *, drained: bool) -> None:
    stored = stored_counters(merchant_id)
    oracle = oracle_counters(merchant_id, personal)
    assert {i: s[0] for i, s in stored.items()} == {i: o[0] for i, o in oracle.items()}, \
        "direct_members differ from the recursive query"
    if drained:
        wrong = {i: (stored[i], oracle[i]) for i in stored if stored[i] != oracle[i]}
        assert not wrong, f"(stored, oracle) of members whose counters are wrong: {wrong}"


# --- the state machine ------------------------------------------------------------------------

def reset_database() -> None:
    """Each example starts empty (the autouse cleanup runs only after the whole test): every
    merchant-scoped table references merchants, so CASCADE empties them all."""
    db.session.remove()
    db.session.execute(text("TRUNCATE merchants, users RESTART IDENTITY CASCADE"))
    db.session.commit()


picks = st.integers(0, 10**6)
MAX_MEMBERS = 14
RULE_SETS = [
    {},
    {"bind_mode": "last_touch"},
    {"bind_mode": "last_touch", "protection_days": 1},
    {"bind_mode": "time_limited", "bind_days": 1},
    {"bind_trigger": "first_order"},
    {"bind_mode": "last_touch", "bind_trigger": "first_order"},
    {"bind_trigger": "register"},
    {"bind_mode": "time_limited", "bind_days": 1, "bind_trigger": "register"},
]
MOVE_REFUSALS = ("self", "cycle", "inactive_distributor", "already_bound")
REVIEWS = {"freeze": ("active", "frozen"), "unfreeze": ("frozen", "active"),
           "approve": ("pending", "active")}


class TreeMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        reset_database()
        merchant = make_merchant()
        self.merchant_id = merchant.id
        self.personal: dict[int, int] = defaultdict(int)
        self.tokens: dict[int, str] = {}
        self.pending: list[int] = []
        self.count = 0
        self.queued = 0

    # helpers

    def _ids(self) -> list[int]:
        return sorted(db.session.scalars(select(Member.id).where(
            Member.merchant_id == self.merchant_id)))

    def _pick(self, pick: int) -> int:
        ids = self._ids()
        return ids[pick % len(ids)]

    def _pick_other(self, pick: int, *, than: int) -> int:
        """Another member than ``than`` when there is one (self-pairs have their own draws)."""
        ids = [i for i in self._ids() if i != than] or [than]
        return ids[pick % len(ids)]

    def _token(self, distributor_id: int) -> str:
        if distributor_id not in self.tokens:
            link = make_share_link(db.session.get(Member, (self.merchant_id, distributor_id)))
            self.tokens[distributor_id] = link.token
        return self.tokens[distributor_id]

    def _facts(self, member_row: dict | None, user_id: int, distributor_id: int,
               kind: str) -> attribution_rules.BindingFacts:
        """The decision's facts, read independently of the service (cycles by the recursive
        query, not by paths)."""
        rows = member_rows(self.merchant_id)
        chains = ancestor_chains(self.merchant_id, limit=len(rows) + 1)
        member_id = member_row["id"] if member_row else 0  # a new member: not yet an id
        return attribution_rules.BindingFacts(
            now=utcnow(), member_id=member_id,
            member_upline_id=member_row["upline_id"] if member_row else None,
            member_bound_at=member_row["bound_at"] if member_row else None,
            user_created_at=db.session.get(User, user_id).created_at,
            distributor_id=distributor_id,
            distributor_active=rows[distributor_id]["distributor_status"] == "active",
            distributor_in_member_team=member_id in chains.get(distributor_id, []),
            event=kind)

    def _log_count(self) -> int:
        return db.session.scalar(select(func.count()).select_from(BindingLog)
                                 .where(BindingLog.merchant_id == self.merchant_id))

    def _rules(self):
        return program_rules(db.session.get(Merchant, self.merchant_id))

    # rules

    @initialize(count=st.integers(2, 6), changes=st.sampled_from(RULE_SETS))
    def seed(self, count, changes):
        self.set_program_rules(changes)
        for _ in range(count):
            make_member(db.session.get(Merchant, self.merchant_id))

    @precondition(lambda self: self.count < MAX_MEMBERS)
    @rule(status=st.sampled_from(["active", "active", "active", "none", "pending", "frozen"]),
          upline=st.none() | picks)
    def add_member(self, status, upline):
        merchant = db.session.get(Merchant, self.merchant_id)
        upline_member = None
        if upline is not None:
            upline_member = db.session.get(Member, (self.merchant_id, self._pick(upline)))
        make_member(merchant, upline=upline_member, status=status)

    @rule(changes=st.sampled_from(RULE_SETS))
    def set_program_rules(self, changes):
        rules_from_dict(None, changes)  # the test's own rule sets are valid
        with transaction(db.session):
            db.session.get(Merchant, self.merchant_id).program_rules = dict(changes)

    @rule(visitor=picks, distributor=picks, itself=st.integers(0, 9))
    def member_visits_a_share(self, visitor, distributor, itself):
        distributor_id = self._pick(distributor)
        visitor_id = distributor_id if itself == 0 else self._pick_other(visitor,
                                                                          than=distributor_id)
        self._visit(visitor_id, distributor_id)

    @rule(visitor=picks, distributor=picks)
    def bound_member_visits_another_share(self, visitor, distributor):
        """Rebinding, protection and lapsed bindings need members that already have one."""
        rows = member_rows(self.merchant_id)
        bound = sorted(i for i, r in rows.items() if r["upline_id"] is not None)
        if not bound:
            return
        visitor_id = bound[visitor % len(bound)]
        others = sorted(i for i in rows if i not in (visitor_id, rows[visitor_id]["upline_id"]))
        if others:
            self._visit(visitor_id, others[distributor % len(others)])

    @rule(distributor=picks, ancestor=picks)
    def ancestor_visits_a_share_of_its_own_team(self, distributor, ancestor):
        """A cycle attempt; the root of the chain has no upline, so only the cycle rule stops
        it from binding."""
        chains = ancestor_chains(self.merchant_id)
        in_teams = sorted(chains)
        if in_teams:
            distributor_id = in_teams[distributor % len(in_teams)]
            chain = chains[distributor_id]
            self._visit(chain[0] if ancestor % 2 else chain[ancestor % len(chain)],
                        distributor_id)

    @precondition(lambda self: self.count < MAX_MEMBERS)
    @rule(distributor=picks)
    def new_user_visits_a_share(self, distributor):
        self._visit(None, self._pick(distributor))

    def _visit(self, visitor_id: int | None, distributor_id: int) -> None:
        """``visitor_id`` None: a user who is not a member yet."""
        if visitor_id is None:
            user_id = make_user().id
        else:
            user_id = member_rows(self.merchant_id)[visitor_id]["user_id"]
        token = self._token(distributor_id)
        before = {r["user_id"]: r for r in member_rows(self.merchant_id).values()}
        expected = attribution_rules.decide_binding(
            self._rules(), self._facts(before.get(user_id), user_id, distributor_id, "visit"))
        logs, visits = self._log_count(), db.session.scalar(select(func.count(Visit.id)))
        db.session.rollback()

        outcome = attribution.record_visit(token=token, user_id=user_id, context=CONTEXT)

        event(f"visit: {outcome.reason}")
        assert outcome.reason == expected.reason
        assert outcome.bound is expected.binds
        assert outcome.distributor_id == distributor_id
        after = {r["user_id"]: r for r in member_rows(self.merchant_id).values()}[user_id]
        if expected.binds:
            assert after["upline_id"] == distributor_id
            assert after["bound_at"] is not None
            assert after["pending_upline_id"] is None
        else:
            previous = before.get(user_id)
            assert after["upline_id"] == (previous["upline_id"] if previous else None)
        if expected.remembers:
            assert after["pending_upline_id"] == distributor_id
        assert self._log_count() == logs + 1
        assert db.session.scalar(select(func.count(Visit.id))) == visits + 1
        last = db.session.scalars(select(BindingLog).where(
            BindingLog.merchant_id == self.merchant_id)
            .order_by(BindingLog.id.desc()).limit(1)).one()
        assert (last.member_id, last.distributor_id, last.reason) == \
            (after["id"], distributor_id, outcome.reason)
        db.session.rollback()

    @rule(member=picks, days=st.sampled_from([2, 40]), account=st.booleans())
    def age(self, member, days, account):
        """Move a binding (or the member's account) into the past: bindings lapse, protection
        ends, register windows close."""
        member_id = self._pick(member)
        with transaction(db.session):
            row = db.session.get(Member, (self.merchant_id, member_id))
            if account:
                user = db.session.get(User, row.user_id)
                user.created_at = user.created_at - timedelta(days=days)
            elif row.bound_at is not None:
                row.bound_at = row.bound_at - timedelta(days=days)

    @precondition(lambda self: bool(self.pending))
    @rule(member=picks)
    def pay_first_order(self, member):
        member_id = self.pending[member % len(self.pending)]
        row = member_rows(self.merchant_id)[member_id]
        distributor_id = row["pending_upline_id"]
        expected = attribution_rules.decide_binding(
            self._rules(), self._facts(row, row["user_id"], distributor_id, "first_order"))
        db.session.rollback()
        with transaction(db.session):
            tree.lock_tree(self.merchant_id)
            reason = attribution.redeem_first_order(
                member=db.session.get(Member, (self.merchant_id, member_id)),
                rules=self._rules())
        event(f"first order: {reason}")
        assert reason == expected.reason
        after = member_rows(self.merchant_id)[member_id]
        assert after["pending_upline_id"] is None
        assert after["upline_id"] == (distributor_id if expected.binds else row["upline_id"])
        db.session.rollback()

    @rule(member=picks, upline=picks, itself=st.integers(0, 9))
    def move(self, member, upline, itself):
        member_id = self._pick(member)
        upline_id = member_id if itself == 0 else self._pick_other(upline, than=member_id)
        rows = member_rows(self.merchant_id)
        chains = ancestor_chains(self.merchant_id, limit=len(rows) + 1)
        if member_id == upline_id:
            expected = "self"
        elif member_id in chains.get(upline_id, []):
            expected = "cycle"
        elif rows[upline_id]["distributor_status"] != "active":
            expected = "inactive_distributor"
        elif rows[member_id]["upline_id"] == upline_id:
            expected = "already_bound"
        else:
            expected = None
        event(f"move: {expected or 'moved'}")
        db.session.rollback()
        if expected is None:
            members.move(merchant_id=self.merchant_id, member_id=member_id, upline_id=upline_id,
                         reason="customer service request", staff_id=1)
            assert member_rows(self.merchant_id)[member_id]["upline_id"] == upline_id
        else:
            with pytest.raises(Conflict) as caught:
                members.move(merchant_id=self.merchant_id, member_id=member_id,
                             upline_id=upline_id, reason="customer service request",
                             staff_id=1)
            assert caught.value.code == expected
            assert expected in MOVE_REFUSALS
            now = member_rows(self.merchant_id)
            assert {i: (r["upline_id"], r["path"]) for i, r in now.items()} == \
                {i: (r["upline_id"], r["path"]) for i, r in rows.items()}
        db.session.rollback()

    @rule(member=picks, action=st.sampled_from(sorted(REVIEWS)))
    def review(self, member, action):
        member_id = self._pick(member)
        status = member_rows(self.merchant_id)[member_id]["distributor_status"]
        db.session.rollback()
        legal_from, to = REVIEWS[action]
        if status == legal_from:
            members.review(merchant_id=self.merchant_id, member_id=member_id, action=action,
                           reason="risk review", staff_id=1)
            assert member_rows(self.merchant_id)[member_id]["distributor_status"] == to
        else:
            with pytest.raises(Conflict) as caught:
                members.review(merchant_id=self.merchant_id, member_id=member_id,
                               action=action, reason="risk review", staff_id=1)
            assert caught.value.code == "invalid_status_transition"
            assert member_rows(self.merchant_id)[member_id]["distributor_status"] == status
        db.session.rollback()

    @rule(member=picks, sales_fen=st.integers(-3_000, 50_000))
    def sale(self, member, sales_fen):
        member_id = self._pick(member)
        with transaction(db.session):
            tree.queue_sales(db.session.get(Member, (self.merchant_id, member_id)),
                             sales_fen=sales_fen)
        self.personal[member_id] += sales_fen

    @precondition(lambda self: self.queued > 0)
    @rule(batch=st.sampled_from([1, 3, tree.DELTA_BATCH]))
    def apply_queue(self, batch):
        queued = queued_deltas(self.merchant_id)
        event(f"drain: {'empty' if queued == 0 else 'some'}")
        db.session.rollback()
        assert drain(self.merchant_id, batch=batch) == queued
        assert queued_deltas(self.merchant_id) == 0
        db.session.rollback()

    # invariants

    @invariant()
    def tree_is_consistent(self):
        rows = check_structure(self.merchant_id)
        self.count = len(rows)
        self.pending = sorted(i for i, r in rows.items() if r["pending_upline_id"] is not None)
        self_bound = db.session.scalar(select(func.count()).select_from(BindingLog).where(
            BindingLog.merchant_id == self.merchant_id,
            BindingLog.outcome.in_(("bound", "rebound", "moved")),
            BindingLog.member_id == BindingLog.distributor_id))
        assert self_bound == 0
        self.queued = queued_deltas(self.merchant_id)
        check_counters(self.merchant_id, self.personal, drained=self.queued == 0)
        db.session.rollback()

    def teardown(self):
        try:
            drain(self.merchant_id)
            check_structure(self.merchant_id)
            check_counters(self.merchant_id, self.personal, drained=True)
        finally:
            db.session.remove()


# A green run takes ~20 s. A failing one shrinks for up to 5 minutes (hypothesis's cap) before
# it prints the minimal step sequence; the timeout leaves room for that.
@pytest.mark.timeout(600)
def test_the_tree_and_its_counters_stay_right_under_random_operations(app_context):
    run_state_machine_as_test(TreeMachine, settings=settings(
        max_examples=25, stateful_step_count=30, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                               HealthCheck.data_too_large]))


# --- deterministic cases the machine may or may not reach -------------------------------------

def _merchant_with_chain(length: int):
    merchant = make_merchant()
    chain = [make_member(merchant)]
    for _ in range(length - 1):
        chain.append(make_member(merchant, upline=chain[-1]))
    return merchant, chain


def test_a_deep_chain_counts_every_descendant(app_context):
    merchant, chain = _merchant_with_chain(60)
    with transaction(db.session):
        tree.queue_sales(db.session.get(Member, (merchant.id, chain[-1].id)), sales_fen=700)
    drain(merchant.id)
    check_structure(merchant.id)
    check_counters(merchant.id, drained=True)
    root = stored_counters(merchant.id)[chain[0].id]
    assert root == (1, 59, 700, 0)


def test_moving_a_subtree_under_its_former_cousin_rewrites_paths_and_counters(app_context):
    merchant = make_merchant()
    root = make_member(merchant)
    left, right = make_member(merchant, upline=root), make_member(merchant, upline=root)
    child = make_member(merchant, upline=left)
    grandchild = make_member(merchant, upline=child)
    with transaction(db.session):
        tree.queue_sales(db.session.get(Member, (merchant.id, grandchild.id)), sales_fen=1_000)
    members.move(merchant_id=merchant.id, member_id=child.id, upline_id=right.id,
                 reason="wrong upline", staff_id=1)
    drain(merchant.id)
    rows = check_structure(merchant.id)
    check_counters(merchant.id, drained=True)
    assert rows[grandchild.id]["path"] == f"/{root.id}/{right.id}/{child.id}/"
    counters = stored_counters(merchant.id)
    assert counters[left.id] == (0, 0, 0, 0)
    assert counters[right.id] == (1, 2, 1_000, 0)
    assert counters[root.id] == (2, 4, 1_000, 0)


def test_a_root_with_an_undrained_team_joins_an_upline_without_double_counting(app_context):
    merchant = make_merchant()
    upline = make_member(merchant)
    leader = make_member(merchant)
    follower = make_member(merchant, upline=leader)  # its transfer is still queued
    with transaction(db.session):
        tree.queue_sales(db.session.get(Member, (merchant.id, follower.id)), sales_fen=300)
    token = make_share_link(upline).token
    user_id = db.session.get(Member, (merchant.id, leader.id)).user_id
    assert attribution.record_visit(token=token, user_id=user_id, context=CONTEXT).bound
    drain(merchant.id)
    check_structure(merchant.id)
    check_counters(merchant.id, drained=True)
    assert stored_counters(merchant.id)[upline.id] == (1, 2, 300, 0)


def test_moving_into_ones_own_team_is_refused_and_changes_nothing(app_context):
    merchant, chain = _merchant_with_chain(4)
    before = member_rows(merchant.id)
    db.session.rollback()
    with pytest.raises(Conflict) as caught:
        members.move(merchant_id=merchant.id, member_id=chain[1].id, upline_id=chain[3].id,
                     reason="oops", staff_id=1)
    assert caught.value.code == "cycle"
    assert member_rows(merchant.id) == before
