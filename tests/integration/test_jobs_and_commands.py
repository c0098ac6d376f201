"""Jobs and commands through their real entry points (the Flask CLI)."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.extensions import db
from app.models import Member, Merchant, PlatformAdmin, StaffAccount, TeamDeltaRow
from tests.factories import make_member, make_merchant


def test_merchants_create_prints_the_new_id_last(app):
    result = app.test_cli_runner().invoke(args=[
        "merchants", "create", "--name", "鲜果小铺", "--owner-username", "boss",
        "--owner-password", "pw-123456"])
    assert result.exit_code == 0, result.output
    merchant_id = json.loads(result.output.strip().splitlines()[-1])["merchant_id"]
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        assert merchant.status == "approved" and merchant.name == "鲜果小铺"
        owner = db.session.scalars(select(StaffAccount)).one()
        assert (owner.username, owner.role, owner.merchant_id) == ("boss", "owner", merchant_id)


def test_merchants_create_with_a_taken_username_fails_and_creates_nothing(app):
    runner = app.test_cli_runner()
    args = ["merchants", "create", "--name", "A", "--owner-username", "same",
            "--owner-password", "pw-123456"]
    assert runner.invoke(args=args).exit_code == 0
    second = runner.invoke(args=args)
    assert second.exit_code != 0 and "username_taken" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Merchant)) == 1


def test_admins_create_makes_an_account_that_can_sign_in(app, client):
    result = app.test_cli_runner().invoke(args=["admins", "create", "--username", "root",
                                                "--password", "pw-123456"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PlatformAdmin)) == 1
    response = client.post("/api/admin/v1/auth/login",
                           json={"username": "root", "password": "pw-123456"})
    assert response.status_code == 200 and response.get_json()["token"]


def test_the_scheduler_applies_queued_team_deltas(app_context):
    from app.jobs import run_scheduler

    shop = make_merchant()
    root = make_member(shop)
    make_member(shop, upline=make_member(shop, upline=root))
    assert db.session.scalar(select(func.count()).select_from(TeamDeltaRow)) == 2
    run_scheduler(iterations=1, tick_seconds=0)
    db.session.expire_all()
    assert db.session.get(Member, (shop.id, root.id)).team_size == 2
    assert db.session.scalar(select(func.count()).select_from(TeamDeltaRow)) == 0


def test_apply_team_deltas_command_reports_what_it_applied(app, app_context):
    shop = make_merchant()
    make_member(shop, upline=make_member(shop))
    result = app.test_cli_runner().invoke(args=["jobs", "apply-team-deltas"])
    assert json.loads(result.output.strip().splitlines()[-1]) == {"applied": 1, "merchants": 1}
    second = app.test_cli_runner().invoke(args=["jobs", "apply-team-deltas"])
    assert json.loads(second.output.strip().splitlines()[-1]) == {"applied": 0, "merchants": 0}


def test_demo_seed_builds_a_living_program_once(app, client):
    from app.models import User

    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed", "--size", "small"])
    assert first.exit_code == 0 and "demo seeded" in first.output, first.output
    with app.app_context():
        statuses = dict(db.session.execute(select(Member.distributor_status, func.count())
                                           .group_by(Member.distributor_status)).all())
        assert {k: v for k, v in statuses.items() if k != "none"} == {"active": 16,
                                                                      "pending": 2}
        alice = db.session.scalars(select(User).where(User.nickname == "阿丽")).one()
        root = db.session.scalars(select(Member).where(Member.user_id == alice.id)).one()
        assert root.upline_id is None and root.team_size >= 17  # and the buyers under it
        from app.models import DailyStat, Level, Order, RiskFlag, Withdrawal
        from app.services import ledger

        order_states = dict(db.session.execute(select(Order.status, func.count())
                                               .group_by(Order.status)).all())
        assert set(order_states) == {"received", "shipped", "paid", "partially_refunded"}
        assert sum(order_states.values()) == 8 + 24  # the showcase orders and 90 days' worth
        days = db.session.scalars(select(DailyStat.day)).all()
        assert (max(days) - min(days)).days >= 80  # orders on every part of the 90 days
        assert db.session.scalar(select(func.count()).select_from(Level)) == 2
        assert db.session.scalar(select(func.count()).select_from(Member)
                                 .where(Member.level_id.is_not(None))) >= 1
        assert [f.kind for f in db.session.scalars(select(RiskFlag))] == ["ip_burst"]
        assert {w.status for w in db.session.scalars(select(Withdrawal))} == {"requested"}
        everyone = list(db.session.scalars(select(Member)))
        balances = {kind: sum(ledger.wallet_balances(root.merchant_id, m.id)[kind]
                              for m in everyone) for kind in ("pending", "available")}
        assert balances["pending"] > 0 and balances["available"] > 0
        report = ledger.verify()
        assert report["balance_drift"] == report["unbalanced_journals"] == \
            report["merchants_not_zero"] == []
    # The sandbox user "alice" signs in as the demo's root distributor.
    from tests.support.wechat import sandbox_code

    login = client.post("/api/mp/v1/auth/login", json={"code": sandbox_code("alice")})
    assert login.get_json()["user"]["id"] == alice.id
    second = runner.invoke(args=["demo", "seed"])
    assert "nothing seeded" in second.output


def test_a_scheduler_for_long_jobs_runs_only_them(app_context):
    """Exports run on a scheduler of their own, so the quick jobs never wait behind them."""
    from app.jobs import LONG_JOBS, SCHEDULE

    ran: list[str] = []
    quick = [job.name for job in SCHEDULE if job.name not in LONG_JOBS]
    import app.jobs as jobs_module

    original = jobs_module.SCHEDULE
    jobs_module.SCHEDULE = tuple(jobs_module.Job(job.name, lambda n=job.name: ran.append(n)
                                                 or {}, job.every_seconds) for job in original)
    try:
        jobs_module.run_scheduler(iterations=1, tick_seconds=0, only=LONG_JOBS)
        assert ran == sorted(LONG_JOBS)
        ran.clear()
        jobs_module.run_scheduler(iterations=1, tick_seconds=0, skip=LONG_JOBS)
        assert ran == quick
    finally:
        jobs_module.SCHEDULE = original
