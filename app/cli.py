"""Commands: ``flask --app wsgi <command>`` (API.md, Command line)."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from app.errors import AppError

merchants = AppGroup("merchants", help="Merchants (tenants).")
admins = AppGroup("admins", help="Platform administrators.")
demo = AppGroup("demo", help="Demo and benchmark data.")
jobs = AppGroup("jobs", help="Scheduled jobs; each is safe to run twice.")
stats = AppGroup("stats", help="Statistics' Redis counters.")
ledger = AppGroup("ledger", help="The double-entry ledger.")
wallets = AppGroup("wallets", help="Wallets and their Redis mirror.")


def _fail_on_app_error(action):
    try:
        return action()
    except AppError as error:
        detail = f" {json.dumps(error.errors, ensure_ascii=False)}" if error.errors else ""
        raise click.ClickException(f"{error.code}: {error.message}{detail}") from None


@merchants.command("create")
@click.option("--name", required=True)
@click.option("--owner-username", required=True)
@click.option("--owner-password", required=True)
def create_merchant_command(name, owner_username, owner_password):
    """Create an approved merchant and its owner; prints {"merchant_id": N} last."""
    from app.services.merchants import create_merchant

    merchant = _fail_on_app_error(lambda: create_merchant(
        name=name, owner_username=owner_username, owner_password=owner_password))
    click.echo(json.dumps({"merchant_id": merchant.id}))


@admins.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
def create_admin_command(username, password):
    """Create a platform administrator (approves supplier applications)."""
    from app.services.staff import create_admin

    admin = _fail_on_app_error(lambda: create_admin(username=username, password=password))
    click.echo(json.dumps({"admin_id": admin.id}))


@demo.command("seed")
@click.option("--size", type=click.Choice(["full", "small"]), default="full",
              help="full: 2,400 buyers and 90 days of orders; small: a quick sample")
def seed_command(size):
    """Fill an empty database with a demo merchant and program; a database with data is left
    alone."""
    from app.demo.seed import seed

    click.echo(seed(size=size))


@demo.command("tree")
@click.option("--merchant", "merchant_id", type=int, required=True)
@click.option("--members", type=click.IntRange(min=1), required=True)
@click.option("--shape", type=click.Choice(["balanced", "deep", "star"]), default="balanced")
def tree_command(merchant_id, members, shape):
    """Add a large tree of members to a merchant, fast (bulk inserts), for tests and
    benchmarks."""
    from app.demo.tree_builder import build_tree

    with click.progressbar(length=members, label=f"building a {shape} tree") as bar:
        report = _fail_on_app_error(lambda: build_tree(
            merchant_id=merchant_id, members=members, shape=shape, progress=bar.update))
    click.echo(json.dumps(report))


@jobs.command("apply-team-deltas")
def apply_team_deltas_command():
    """Apply queued team-counter changes for every merchant."""
    from app.jobs import apply_team_deltas

    click.echo(json.dumps(apply_team_deltas()))


@jobs.command("run-scheduler")
@click.option("--only", multiple=True, help="run only these jobs (repeatable)")
@click.option("--skip", multiple=True, help="run every job but these (repeatable)")
@click.option("--long/--quick", "long_jobs", default=None,
              help="only the long jobs (exports), or every job but them")
def run_scheduler_command(only, skip, long_jobs):
    """Run scheduled jobs when they are due, until stopped (any number of hosts may). Run
    one scheduler with --quick and one with --long so an export never delays payments."""
    from app.jobs import LONG_JOBS, run_scheduler

    chosen = frozenset(only) or (LONG_JOBS if long_jobs else None)
    skipped = frozenset(skip) | (LONG_JOBS if long_jobs is False else frozenset())
    run_scheduler(only=chosen, skip=skipped)


@jobs.command("run")
@click.argument("name")
def run_job_command(name):
    """Run one scheduled job once by its name (see ``app/jobs.py`` SCHEDULE)."""
    from app.jobs import JOBS

    if name not in JOBS:
        raise click.UsageError(f"unknown job {name!r}; one of: {', '.join(JOBS)}")
    click.echo(json.dumps(JOBS[name].run()))


@jobs.command("settle-commissions")
def settle_commissions_command():
    """Make commission past its freeze available."""
    from app.jobs import settle_commissions

    click.echo(json.dumps(settle_commissions()))


@jobs.command("sweep-wallet-outbox")
def sweep_wallet_outbox_command():
    """Mirror to Redis the wallets whose mirror is behind."""
    from app.jobs import sweep_wallet_outbox

    click.echo(json.dumps(sweep_wallet_outbox()))


@ledger.command("verify")
@click.option("--merchant", "merchant_id", type=int, default=None)
def verify_command(merchant_id):
    """Prove every balance equals its entries and every journal sums to zero; exit 1 if not."""
    from app.services.ledger import verify

    report = verify(merchant_id)
    sound = not (report["balance_drift"] or report["unbalanced_journals"]
                 or report["merchants_not_zero"])
    click.echo(json.dumps({"sound": sound, **report}, ensure_ascii=False))
    if not sound:
        raise SystemExit(1)


@wallets.command("rebuild-cache")
@click.option("--merchant", "merchant_id", type=int, default=None)
def rebuild_cache_command(merchant_id):
    """Rebuild the Redis mirror of wallets and rankings from SQL."""
    from app.extensions import redis
    from app.services.wallets import rebuild_cache

    click.echo(json.dumps(rebuild_cache(redis.client, merchant_id=merchant_id)))


@stats.command("rebuild-counters")
@click.option("--merchant", "merchant_id", type=int, required=True)
@click.option("--days", type=click.IntRange(1, 366), default=366)
def rebuild_counters_command(merchant_id, days):
    """Count paying buyers and active distributors again into Redis from SQL (after a Redis
    loss); until then the dashboard counts them in SQL."""
    from datetime import timedelta

    from app.database import utcnow
    from app.extensions import redis
    from app.services import stats as stats_service

    today = stats_service.date_range(merchant_id=merchant_id, start=None, end=None,
                                     now=utcnow()).end
    span = stats_service.DateRange(today - timedelta(days=days - 1), today)
    written = stats_service.rebuild_member_counters(redis.client, merchant_id=merchant_id,
                                                    span=span)
    click.echo(json.dumps({"days": written}))


def register_cli(app: Flask) -> None:
    for group in (merchants, admins, demo, jobs, ledger, wallets, stats):
        app.cli.add_command(group)
