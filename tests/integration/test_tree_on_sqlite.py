"""The tree on SQLite, the embedded demo database: ids from the counter table, moves,
and counters applied without PostgreSQL's array update."""

from __future__ import annotations

import dataclasses

from flask_migrate import upgrade

from app import create_app
from app.database import transaction
from app.extensions import db
from app.models import Member
from app.services import tree
from tests.factories import make_member, make_merchant


def test_bindings_moves_and_counters_work_on_sqlite(app_settings, tmp_path):
    app = create_app(dataclasses.replace(app_settings,
                                         database_url=f"sqlite:///{tmp_path}/demo.db"))
    with app.app_context():
        upgrade()
        shop = make_merchant()
        root, other = make_member(shop), make_member(shop)
        child = make_member(shop, upline=root)
        grandchild = make_member(shop, upline=child)
        with transaction(db.session):
            tree.lock_tree(shop.id)
            tree.apply_team_deltas(shop.id)
            tree.attach(db.session.get(Member, (shop.id, child.id)),
                        db.session.get(Member, (shop.id, other.id)))
            tree.apply_team_deltas(shop.id)
        db.session.expire_all()
        assert db.session.get(Member, (shop.id, root.id)).team_size == 0
        assert db.session.get(Member, (shop.id, other.id)).team_size == 2
        assert db.session.get(Member, (shop.id, grandchild.id)).path == \
            f"/{other.id}/{child.id}/"
        assert sorted({root.id, other.id, child.id, grandchild.id}) == [1, 2, 3, 4]
