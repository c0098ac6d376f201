"""Materialized paths and team-delta folding (app/domain/tree.py)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.tree import (
    ROOT_PATH,
    TeamDelta,
    ancestors,
    child_path,
    depth,
    fold_deltas,
    is_ancestor,
)

member_ids = st.integers(1, 10**12)
chains = st.lists(member_ids, max_size=40, unique=True)


def path_of(chain: list[int]) -> str:
    """The path of a member whose ancestors, root first, are ``chain``: built link by link."""
    path = ROOT_PATH
    for parent_id in chain:
        path = child_path(parent_path=path, parent_id=parent_id)
    return path


def test_a_member_without_upline_has_the_root_path():
    assert path_of([]) == ROOT_PATH == "/"
    assert ancestors(ROOT_PATH) == []
    assert depth(ROOT_PATH) == 0


def test_child_path_appends_the_parent():
    assert child_path(parent_path="/", parent_id=7) == "/7/"
    assert child_path(parent_path="/1/5/", parent_id=9) == "/1/5/9/"
    assert ancestors("/1/5/9/") == [1, 5, 9]
    assert depth("/1/5/9/") == 3


@given(chains)
def test_ancestors_and_depth_round_trip_through_child_path(chain):
    path = path_of(chain)
    assert ancestors(path) == chain
    assert depth(path) == len(chain)
    assert path.startswith("/") and path.endswith("/")


@given(chains, member_ids)
def test_is_ancestor_is_membership_in_the_chain(chain, other):
    path = path_of(chain)
    for member_id in chain:
        assert is_ancestor(member_id, of_path=path)
    assert is_ancestor(other, of_path=path) is (other in chain)


@pytest.mark.parametrize(("member_id", "path", "expected"), [
    (1, "/11/", False), (1, "/21/", False), (1, "/111/", False), (1, "/10/", False),
    (1, "/11/21/", False), (11, "/1/", False), (11, "/111/", False), (21, "/1/", False),
    (21, "/211/", False), (1, "/5/11/21/", False), (11, "/5/1/21/", False),
    (1, "/1/", True), (1, "/11/1/", True), (11, "/1/11/21/", True), (21, "/1/11/21/", True),
    (1, "/", False),
])
def test_is_ancestor_never_confuses_ids_sharing_digits(member_id, path, expected):
    assert is_ancestor(member_id, of_path=path) is expected


@given(st.lists(st.integers(1, 40), max_size=8, unique=True), st.integers(1, 40))
def test_is_ancestor_with_small_ids_sharing_digits(chain, other):
    assert is_ancestor(other, of_path=path_of(chain)) is (other in chain)


def naive_fold(deltas: list[TeamDelta]) -> dict[int, tuple[int, int]]:
    sizes: dict[int, int] = defaultdict(int)
    sales: dict[int, int] = defaultdict(int)
    for delta in deltas:
        for ancestor_id in ancestors(delta.path):
            sizes[ancestor_id] += delta.size
            sales[ancestor_id] += delta.sales_fen
    return {i: (sizes[i], sales[i]) for i in set(sizes) | set(sales)
            if sizes[i] != 0 or sales[i] != 0}


small_chains = st.lists(st.integers(1, 12), max_size=6, unique=True)
deltas = st.builds(lambda chain, size, sales: TeamDelta(path=path_of(chain), size=size,
                                                        sales_fen=sales),
                   small_chains, st.integers(-3, 3), st.integers(-10_000, 10_000))


@given(st.lists(deltas, max_size=40))
def test_fold_deltas_equals_a_naive_per_delta_sum(queue):
    assert fold_deltas(queue) == naive_fold(queue)


@given(st.lists(deltas, max_size=40))
def test_fold_deltas_is_the_sum_of_folding_each_delta_alone(queue):
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for delta in queue:
        for member_id, (size, sales) in fold_deltas([delta]).items():
            totals[member_id][0] += size
            totals[member_id][1] += sales
    expected = {i: (s, v) for i, (s, v) in totals.items() if s or v}
    assert fold_deltas(queue) == expected


def test_fold_deltas_credits_every_ancestor_and_not_the_origin():
    folded = fold_deltas([TeamDelta(path="/1/11/", size=1, sales_fen=500),
                          TeamDelta(path="/1/", size=2, sales_fen=-100)])
    assert folded == {1: (3, 400), 11: (1, 500)}


def test_fold_deltas_drops_ancestors_whose_deltas_cancel():
    folded = fold_deltas([TeamDelta(path="/1/2/", size=1, sales_fen=10),
                          TeamDelta(path="/1/", size=-1, sales_fen=-10)])
    assert folded == {2: (1, 10)}
