"""build_tree (``flask demo tree``) against real PostgreSQL: the counters it computes equal the
recursive oracle for every member, paths follow the uplines, and the services keep such a tree
consistent afterwards. Chunks are made small so that every test crosses chunk boundaries."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import Row, func, select, text

from app.database import transaction
from app.demo import tree_builder
from app.demo.tree_builder import build_tree
from app.domain import tree as tree_rules
from app.errors import InvalidInput, NotFound
from app.extensions import db
from app.models import Member, TeamDeltaRow
from app.services import tree
from tests.factories import make_member, make_merchant

SIZES = {"balanced": 3_000, "deep": 2_300, "star": 700}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(tree_builder, "CHUNK", 997)


def _oracle(merchant_id: int) -> dict[int, tuple[int, int]]:
    """Team size and team sales of every member with a team, by a recursive query over the
    uplines alone (no paths, no counters)."""
    rows = db.session.execute(text("""
        WITH RECURSIVE closure(ancestor_id, member_id) AS (
            SELECT upline_id, id FROM members
            WHERE merchant_id = :m AND upline_id IS NOT NULL
            UNION ALL
            SELECT closure.ancestor_id, members.id FROM closure
            JOIN members ON members.merchant_id = :m AND members.upline_id = closure.member_id
        )
        SELECT closure.ancestor_id, count(*), sum(members.personal_sales_fen) FROM closure
        JOIN members ON members.merchant_id = :m AND members.id = closure.member_id
        GROUP BY closure.ancestor_id"""), {"m": merchant_id})
    return {ancestor: (int(size), int(sales)) for ancestor, size, sales in rows}


def _members(merchant_id: int) -> dict[int, Row]:
    """Every member's tree columns, straight from the database (no identity map involved)."""
    return {row.id: row for row in db.session.execute(
        select(Member.id, Member.upline_id, Member.path, Member.depth, Member.direct_members,
               Member.team_size, Member.team_sales_fen)
        .where(Member.merchant_id == merchant_id))}


def _counter_mismatches(merchant_id: int) -> list[str]:
    members, oracle = _members(merchant_id), _oracle(merchant_id)
    direct = Counter(m.upline_id for m in members.values() if m.upline_id is not None)
    wrong = []
    for m in members.values():
        stored = (m.direct_members, m.team_size, m.team_sales_fen)
        expected = (direct[m.id], *oracle.get(m.id, (0, 0)))
        if stored != expected:
            wrong.append(f"member {m.id}: (direct, size, sales) {stored} != {expected}")
    return wrong


def _path_mismatches(merchant_id: int) -> list[str]:
    members = _members(merchant_id)
    wrong = []
    for m in members.values():
        if m.upline_id is None:
            expected = ("/", 0)
        else:
            upline = members[m.upline_id]
            expected = (tree_rules.child_path(parent_path=upline.path, parent_id=upline.id),
                        upline.depth + 1)
        if (m.path, m.depth) != expected:
            wrong.append(f"member {m.id}: {(m.path[-40:], m.depth)} != "
                         f"{(expected[0][-40:], expected[1])}")
    return wrong


def _apply_queue(merchant_id: int) -> None:
    with transaction(db.session):
        tree.lock_tree(merchant_id)
        tree.apply_team_deltas(merchant_id)


@pytest.mark.parametrize("shape", sorted(SIZES))
def test_every_counter_equals_the_recursive_oracle(app_context, shape):
    merchant = make_merchant()
    report = build_tree(merchant_id=merchant.id, members=SIZES[shape], shape=shape)

    assert _counter_mismatches(merchant.id)[:5] == []
    root = db.session.get(Member, (merchant.id, report["root_id"]))
    assert root.team_size == SIZES[shape] - 1
    assert root.team_sales_fen == sum(map(tree_builder.personal_sales_fen, range(1, SIZES[shape])))
    assert db.session.scalar(select(func.count()).select_from(TeamDeltaRow)) == 0


@pytest.mark.parametrize("shape", sorted(SIZES))
def test_paths_and_depths_follow_the_uplines(app_context, shape):
    merchant = make_merchant()
    build_tree(merchant_id=merchant.id, members=SIZES[shape], shape=shape)

    assert _path_mismatches(merchant.id)[:5] == []


@pytest.mark.parametrize(("shape", "max_depth", "root_direct"),
                         [("balanced", 4, 10), ("deep", 1_999, 2), ("star", 1, 699)])
def test_the_report_names_the_root_and_the_deepest_member(app_context, shape, max_depth,
                                                          root_direct):
    merchant = make_merchant()
    report = build_tree(merchant_id=merchant.id, members=SIZES[shape], shape=shape)

    assert {key: report[key] for key in ("merchant_id", "shape", "members", "max_depth")} == {
        "merchant_id": merchant.id, "shape": shape, "members": SIZES[shape],
        "max_depth": max_depth}
    root = db.session.get(Member, (merchant.id, report["root_id"]))
    deepest = db.session.get(Member, (merchant.id, report["deepest_id"]))
    assert (root.upline_id, root.direct_members) == (None, root_direct)
    assert deepest.depth == max_depth == db.session.scalar(
        select(func.max(Member.depth)).where(Member.merchant_id == merchant.id))


def test_every_member_is_an_active_distributor_with_its_own_user(app_context):
    merchant = make_merchant()
    build_tree(merchant_id=merchant.id, members=1_500, shape="balanced")

    statuses = db.session.execute(
        select(Member.distributor_status, func.count(), func.count(Member.user_id.distinct()))
        .where(Member.merchant_id == merchant.id).group_by(Member.distributor_status)).all()
    assert statuses == [("active", 1_500, 1_500)]


def test_progress_is_called_once_per_committed_chunk(app_context):
    merchant = make_merchant()
    calls = []

    build_tree(merchant_id=merchant.id, members=2_500, shape="star", progress=calls.append)

    assert calls == [997, 997, 506]


@pytest.mark.parametrize("shape", ["balanced", "deep"])
def test_a_built_tree_stays_consistent_through_bindings_sales_and_moves(app_context, shape):
    merchant = make_merchant()
    report = build_tree(merchant_id=merchant.id, members=2_100, shape=shape)
    root = db.session.get(Member, (merchant.id, report["root_id"]))
    deepest = db.session.get(Member, (merchant.id, report["deepest_id"]))
    middle = db.session.scalars(select(Member).where(
        Member.merchant_id == merchant.id, Member.depth == report["max_depth"] // 2,
        Member.direct_members > 0).order_by(Member.id).limit(1)).one()

    newcomers = [make_member(merchant, upline=upline) for upline in (root, deepest, middle)]
    make_member(merchant, upline=newcomers[1])
    with transaction(db.session):
        for member in (deepest, middle, newcomers[1]):
            tree.queue_sales(db.session.get(Member, (merchant.id, member.id)), sales_fen=12_345)
    with transaction(db.session):  # a built subtree moves under a newcomer at the root
        tree.lock_tree(merchant.id)
        tree.attach(db.session.get(Member, (merchant.id, middle.id)),
                    db.session.get(Member, (merchant.id, newcomers[0].id)))
    _apply_queue(merchant.id)

    assert _counter_mismatches(merchant.id)[:5] == []
    assert _path_mismatches(merchant.id)[:5] == []


def test_a_second_tree_in_the_same_merchant_leaves_the_first_alone(app_context):
    merchant = make_merchant()
    first = build_tree(merchant_id=merchant.id, members=1_200, shape="balanced")
    second = build_tree(merchant_id=merchant.id, members=800, shape="deep")

    assert first["root_id"] != second["root_id"]
    assert _counter_mismatches(merchant.id)[:5] == []
    assert db.session.get(Member, (merchant.id, first["root_id"])).team_size == 1_199


def test_an_unknown_merchant_or_shape_is_refused(app_context):
    with pytest.raises(NotFound):
        build_tree(merchant_id=999_999, members=10, shape="balanced")
    with pytest.raises(InvalidInput):
        build_tree(merchant_id=make_merchant().id, members=10, shape="ring")


def test_the_flask_demo_tree_command_builds_a_tree(app_context):
    merchant = make_merchant()

    result = app_context.test_cli_runner().invoke(args=[
        "demo", "tree", "--merchant", str(merchant.id), "--members", "1200", "--shape", "deep"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert (report["members"], report["max_depth"]) == (1_200, 1_199)
    assert _counter_mismatches(merchant.id)[:5] == []


def test_sqlite_gets_the_same_tree(make_app, tmp_path):
    from flask_migrate import upgrade

    sqlite_app = make_app(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    with sqlite_app.app_context():
        upgrade()
        merchant = make_merchant()
        for shape in ("balanced", "deep"):
            build_tree(merchant_id=merchant.id, members=1_300, shape=shape)

        assert _counter_mismatches(merchant.id)[:5] == []
        assert _path_mismatches(merchant.id)[:5] == []
        db.session.remove()


