"""The attribution decision: may this visit (or first order) bind the member to this distributor?

Pure: the service gathers the facts under the merchant's tree lock and applies the decision.
The reasons are API.md's, plus ``register_window_closed`` for the ``register`` trigger when the
member's account is older than the window (documented in the README glossary).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.program_rules import ProgramRules

BOUND = "bound"
REBOUND = "rebound"
ALREADY_BOUND = "already_bound"
SELF = "self"
CYCLE = "cycle"
INACTIVE_DISTRIBUTOR = "inactive_distributor"
PROTECTED = "protected"
PENDING_FIRST_ORDER = "pending_first_order"
REGISTER_WINDOW_CLOSED = "register_window_closed"

REFUSALS = (ALREADY_BOUND, SELF, CYCLE, INACTIVE_DISTRIBUTOR, PROTECTED, REGISTER_WINDOW_CLOSED)


@dataclass(frozen=True)
class BindingFacts:
    """Everything the decision needs, read under the tree lock."""

    now: datetime
    member_id: int
    member_upline_id: int | None
    member_bound_at: datetime | None
    user_created_at: datetime
    distributor_id: int
    distributor_active: bool
    # True when the member is an ancestor of the distributor: binding would close a cycle.
    distributor_in_member_team: bool
    # The event: a share visit, or the member's first paid order redeeming a remembered visit.
    event: str = "visit"


@dataclass(frozen=True)
class Decision:
    reason: str

    @property
    def binds(self) -> bool:
        return self.reason in (BOUND, REBOUND)

    @property
    def remembers(self) -> bool:
        return self.reason == PENDING_FIRST_ORDER


def binding_expired(rules: ProgramRules, *, bound_at: datetime | None, now: datetime) -> bool:
    """A time-limited binding lapses ``bind_days`` after it was made."""
    return (rules.bind_mode == "time_limited" and bound_at is not None
            and now >= bound_at + timedelta(days=rules.bind_days))


def has_effective_upline(rules: ProgramRules, *, upline_id: int | None,
                         bound_at: datetime | None, now: datetime) -> bool:
    """Whether orders placed now earn the upline commission (no upline, or a lapsed one: no)."""
    return upline_id is not None and not binding_expired(rules, bound_at=bound_at, now=now)


def decide_binding(rules: ProgramRules, facts: BindingFacts) -> Decision:
    """Refusals first (always: self, cycle, inactive), then the trigger, then the mode."""
    if facts.distributor_id == facts.member_id:
        return Decision(SELF)
    if facts.distributor_in_member_team:
        return Decision(CYCLE)
    if not facts.distributor_active:
        return Decision(INACTIVE_DISTRIBUTOR)
    if facts.member_upline_id == facts.distributor_id and not binding_expired(
            rules, bound_at=facts.member_bound_at, now=facts.now):
        return Decision(ALREADY_BOUND)
    mode_refusal = _mode_refusal(rules, facts)
    if mode_refusal:
        return Decision(mode_refusal)
    if facts.event == "visit":
        if rules.bind_trigger == "first_order":
            return Decision(PENDING_FIRST_ORDER)
        if rules.bind_trigger == "register" and facts.now >= facts.user_created_at + timedelta(
                minutes=rules.register_window_minutes):
            return Decision(REGISTER_WINDOW_CLOSED)
    return Decision(BOUND if facts.member_upline_id is None else REBOUND)


def _mode_refusal(rules: ProgramRules, facts: BindingFacts) -> str | None:
    if facts.member_upline_id is None:
        return None
    if rules.bind_mode == "permanent":
        return ALREADY_BOUND
    if rules.bind_mode == "time_limited":
        expired = binding_expired(rules, bound_at=facts.member_bound_at, now=facts.now)
        return None if expired else ALREADY_BOUND
    # last_touch: every valid visit rebinds, except inside the protection window.
    if facts.member_bound_at is not None and facts.now < facts.member_bound_at + timedelta(
            days=rules.protection_days):
        return PROTECTED
    return None
