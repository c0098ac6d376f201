"""Distributor status: the legal transitions and who may cause them (DOMAIN.md, Joining).

``none`` is a plain member (a buyer, a visitor); the rest follow the program's join mode and
the merchant's reviews. Anything not listed here is an error, never a silent no-op.
"""

from __future__ import annotations

# action -> {from status: to status}
TRANSITIONS: dict[str, dict[str, str]] = {
    "apply": {"none": "pending", "rejected": "pending", "left": "pending"},
    "join": {"none": "active", "rejected": "active", "left": "active", "pending": "active"},
    "approve": {"pending": "active"},
    "reject": {"pending": "rejected"},
    "freeze": {"active": "frozen"},
    "unfreeze": {"frozen": "active"},
    "leave": {"active": "left", "pending": "left"},
}
# Staff must say why for these; the reason is shown to the member and kept in the log.
REASON_REQUIRED = {"reject", "freeze"}


class IllegalTransition(ValueError):
    def __init__(self, action: str, status: str):
        super().__init__(f"cannot {action} a distributor whose status is {status}")
        self.action = action
        self.status = status


def next_status(action: str, status: str) -> str:
    try:
        return TRANSITIONS[action][status]
    except KeyError:
        raise IllegalTransition(action, status) from None
