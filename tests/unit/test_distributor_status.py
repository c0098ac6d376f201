"""Distributor status transitions (app/domain/distributor_status.py, DOMAIN.md "Joining")."""

from __future__ import annotations

import itertools

import pytest

from app.domain.distributor_status import (
    REASON_REQUIRED,
    TRANSITIONS,
    IllegalTransition,
    next_status,
)
from app.models.member import DISTRIBUTOR_STATUSES

# Written out independently of TRANSITIONS: (action, from status) -> to status.
LEGAL = {
    ("apply", "none"): "pending",
    ("apply", "rejected"): "pending",
    ("apply", "left"): "pending",
    ("join", "none"): "active",
    ("join", "rejected"): "active",
    ("join", "left"): "active",
    ("join", "pending"): "active",
    ("approve", "pending"): "active",
    ("reject", "pending"): "rejected",
    ("freeze", "active"): "frozen",
    ("unfreeze", "frozen"): "active",
    ("leave", "active"): "left",
    ("leave", "pending"): "left",
}
ACTIONS = ("apply", "join", "approve", "reject", "freeze", "unfreeze", "leave")
ILLEGAL = [pair for pair in itertools.product(ACTIONS, DISTRIBUTOR_STATUSES)
           if pair not in LEGAL]


def test_statuses_are_the_domain_ones():
    assert set(DISTRIBUTOR_STATUSES) == {"none", "pending", "active", "rejected", "frozen",
                                         "left"}


@pytest.mark.parametrize(("action", "status", "expected"),
                         [(a, s, to) for (a, s), to in LEGAL.items()],
                         ids=[f"{a}-{s}" for a, s in LEGAL])
def test_every_legal_transition(action, status, expected):
    assert next_status(action, status) == expected


@pytest.mark.parametrize(("action", "status"), ILLEGAL,
                         ids=[f"{a}-{s}" for a, s in ILLEGAL])
def test_every_illegal_transition_raises(action, status):
    with pytest.raises(IllegalTransition) as caught:
        next_status(action, status)
    assert (caught.value.action, caught.value.status) == (action, status)
    assert action in str(caught.value) and status in str(caught.value)


def test_the_transition_table_has_no_action_or_pair_beyond_the_legal_ones():
    assert set(TRANSITIONS) == set(ACTIONS)
    table = {(action, status): to for action, moves in TRANSITIONS.items()
             for status, to in moves.items()}
    assert table == LEGAL


@pytest.mark.parametrize("status", DISTRIBUTOR_STATUSES)
def test_unknown_actions_raise(status):
    with pytest.raises(IllegalTransition):
        next_status("promote", status)


def test_unknown_statuses_raise():
    with pytest.raises(IllegalTransition):
        next_status("approve", "banned")


def test_only_active_distributors_can_be_frozen_and_only_frozen_ones_unfrozen():
    assert [s for s in DISTRIBUTOR_STATUSES if ("freeze", s) in LEGAL] == ["active"]
    assert [s for s in DISTRIBUTOR_STATUSES if ("unfreeze", s) in LEGAL] == ["frozen"]
    with pytest.raises(IllegalTransition):
        next_status("freeze", "frozen")
    with pytest.raises(IllegalTransition):
        next_status("unfreeze", "active")


def test_reject_and_freeze_need_a_reason():
    assert set(REASON_REQUIRED) == {"reject", "freeze"}
