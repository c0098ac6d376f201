"""The merchant's member tree as materialized paths, and how team counters change.

Each member stores the ids of its ancestors, root first, as ``/1/5/9/`` (``/`` for a member
without an upline). From a path alone one can tell, without a query, whether binding would close
a cycle (the member is among the distributor's ancestors) and whose team counters an event
changes (every ancestor). The string form keeps SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

ROOT_PATH = "/"


def child_path(*, parent_path: str, parent_id: int) -> str:
    return f"{parent_path}{parent_id}/"


def ancestors(path: str) -> list[int]:
    """Ancestor ids, root first."""
    return [int(part) for part in path.strip("/").split("/") if part]


def depth(path: str) -> int:
    return path.count("/") - 1


def is_ancestor(member_id: int, *, of_path: str) -> bool:
    """True when ``member_id`` is an ancestor of the member whose path is ``of_path``."""
    return f"/{member_id}/" in of_path


@dataclass(frozen=True)
class TeamDelta:
    """A change to the teams of every ancestor of the member at ``path`` (size in members,
    sales in fen)."""

    path: str
    size: int = 0
    sales_fen: int = 0


def fold_deltas(deltas: Iterable[TeamDelta]) -> dict[int, tuple[int, int]]:
    """Sum deltas per ancestor: many events in one subtree become one update per ancestor."""
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for delta in deltas:
        for ancestor_id in ancestors(delta.path):
            totals[ancestor_id][0] += delta.size
            totals[ancestor_id][1] += delta.sales_fen
    return {member_id: (size, sales) for member_id, (size, sales) in totals.items()
            if size or sales}
