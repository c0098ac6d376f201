"""Commands: ``flask --app wsgi <command>``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.extensions import db
from app.models import User

demo = AppGroup("demo", help="Demo data for local runs.")


@demo.command("seed")
def seed_command():
    """Fill an empty database with demo data; a database that has data is left alone."""
    if db.session.scalar(select(func.count()).select_from(User)):
        click.echo("the database already has data; nothing seeded")
        return
    click.echo("demo seed: the database is ready (merchants and programs are seeded once "
               "they exist)")


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo)
