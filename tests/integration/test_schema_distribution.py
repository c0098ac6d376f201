"""The schema can be distributed by merchant (Citus) without redesign (ARCHITECTURE.md 8):
every merchant-owned table has ``merchant_id`` in its primary key and in each unique
constraint, and every foreign key between merchant-owned tables includes it. Read from the
PostgreSQL schema the migrations built, so a new table or constraint is checked at once."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from app.extensions import db

# Platform-level tables that carry a merchant id as an attribute: staff sign in by a
# username unique across the platform, so this table would be a Citus reference table.
REFERENCE_TABLES = {"staff_accounts"}
PLATFORM_TABLES = {"merchants", "users", "platform_admins", "id_counters", "alembic_version"}


@pytest.fixture
def schema(app_context):
    inspector = inspect(db.engine)
    return {name: inspector for name in inspector.get_table_names()}


def merchant_owned(schema) -> list[str]:
    owned = []
    for name, inspector in schema.items():
        columns = {column["name"] for column in inspector.get_columns(name)}
        if "merchant_id" in columns and name not in REFERENCE_TABLES | PLATFORM_TABLES:
            owned.append(name)
    return sorted(owned)


def test_the_check_sees_the_merchant_owned_tables(schema):
    owned = merchant_owned(schema)
    assert {"orders", "members", "ledger_entries", "withdrawals", "daily_stats"} <= set(owned)
    assert len(owned) >= 30


def test_every_merchant_owned_primary_key_starts_from_the_merchant(schema):
    missing = [name for name in merchant_owned(schema)
               if "merchant_id" not in schema[name].get_pk_constraint(name)["constrained_columns"]]
    assert missing == []


def test_every_unique_constraint_and_unique_index_includes_the_merchant(schema):
    missing = []
    for name in merchant_owned(schema):
        inspector = schema[name]
        for unique in inspector.get_unique_constraints(name):
            if "merchant_id" not in unique["column_names"]:
                missing.append((name, unique["name"]))
        for index in inspector.get_indexes(name):
            if index["unique"] and "merchant_id" not in index["column_names"]:
                missing.append((name, index["name"]))
    assert missing == []


def test_foreign_keys_between_merchant_owned_tables_carry_the_merchant(schema):
    owned = set(merchant_owned(schema))
    missing = [(name, key["name"]) for name in owned
               for key in schema[name].get_foreign_keys(name)
               if key["referred_table"] in owned
               and "merchant_id" not in key["constrained_columns"]]
    assert missing == []
