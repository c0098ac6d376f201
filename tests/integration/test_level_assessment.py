"""The periodic assessment on PostgreSQL (and SQLite): members whose keep conditions fail
move down, once per period, each review recorded (DOMAIN.md, Levels and assessment)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.database import transaction, utcnow
from app.extensions import db
from app.models import LevelChange, Member
from tests.factories import make_member, make_merchant
from tests.integration.test_levels import add_level, assess, buy, changes, level_of, when


@pytest.fixture
def shop(app_context):
    return make_merchant()


@pytest.fixture
def ladder(shop):
    """Silver keeps with 1,000 fen of personal sales in 30 days, Gold with 5,000."""
    silver = add_level(shop, "Silver", 10, keep=when("all", ("personal_sales_fen", 1_000, 30)))
    gold = add_level(shop, "Gold", 20, keep=when("all", ("personal_sales_fen", 5_000, 30)))
    return silver, gold


def at_level(shop, level, *, days_ago: int) -> Member:
    member = make_member(shop)
    with transaction(db.session):
        row = db.session.get(Member, (shop.id, member.id))
        row.level_id, row.level_changed_at = level.id, utcnow() - timedelta(days=days_ago)
    return member


def test_assessment_drops_a_member_to_the_highest_level_it_keeps(shop, ladder):
    silver, gold = ladder
    member = at_level(shop, gold, days_ago=40)
    buy(member, 1_000)
    assert assess() == {"assessed": 1, "downgraded": 1, "upgraded": 0}
    assert level_of(member) == silver.id
    reason = db.session.scalars(select(LevelChange.reason).where(
        LevelChange.member_id == member.id)).one()
    assert reason == ("keep conditions of Gold not met: personal_sales_fen over 30 days "
                      "1000 < 5000")


def test_assessment_drops_to_the_base_level_when_no_level_is_kept(shop, ladder):
    _, gold = ladder
    member = at_level(shop, gold, days_ago=40)
    assess()
    assert level_of(member) is None and changes(member) == [(gold.id, None, "assessment")]


def test_a_kept_level_is_recorded_and_reviewed_again_one_period_later(shop, ladder):
    _, gold = ladder
    member = at_level(shop, gold, days_ago=40)
    buy(member, 5_000)
    assert assess()["assessed"] == 1
    assert changes(member) == [(gold.id, gold.id, "assessment")]
    assert assess()["assessed"] == 0  # a second run finds nobody due
    later = assess(utcnow() + timedelta(days=32))  # the sales are now out of the window
    assert later["downgraded"] == 1 and level_of(member) is None


def test_a_level_held_for_less_than_a_period_is_not_assessed(shop, ladder):
    _, gold = ladder
    member = at_level(shop, gold, days_ago=10)
    assert assess()["assessed"] == 0
    assert level_of(member) == gold.id


def test_levels_work_on_sqlite_the_embedded_demo_database(app_settings, tmp_path):
    import dataclasses

    from flask_migrate import upgrade

    from app import create_app

    app = create_app(dataclasses.replace(app_settings,
                                         database_url=f"sqlite:///{tmp_path}/demo.db"))
    with app.app_context():
        upgrade()
        demo = make_merchant()
        silver = add_level(demo, "Silver", 10, upgrade=when("all", ("personal_sales_fen",
                                                                    5_000, 30)),
                           keep=when("all", ("personal_sales_fen", 50_000, 30)))
        buyer = make_member(demo)
        buy(buyer, 5_000)
        assert level_of(buyer) == silver.id
        assert assess(utcnow() + timedelta(days=32))["downgraded"] == 1
        assert changes(buyer) == [(None, silver.id, "upgrade"),
                                  (silver.id, None, "assessment")]
        db.session.remove()
