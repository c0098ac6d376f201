"""The SQLAlchemy base (with a constraint naming convention) and the transaction helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    String,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable names make migrations reviewable and let `flask db check` compare like with like.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntId = BigInteger().with_variant(Integer, "sqlite")


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on PostgreSQL and on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdCounter(Base):
    """SQLite only: the next id of each merchant-scoped table (PostgreSQL uses identities).

    SQLite auto-increments only a single-column INTEGER PRIMARY KEY; merchant-scoped tables
    have ``(merchant_id, id)`` keys, so their ids come from here on the demo database.
    """

    __tablename__ = "id_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_id: Mapped[int] = mapped_column(BigInteger)


class MerchantScoped:
    """Rows that belong to a merchant: the key is ``(merchant_id, id)`` (ARCHITECTURE.md 8).

    The merchant id leads every primary key, unique constraint and foreign key between such
    tables, so the schema can be distributed by merchant (Citus) without redesign, and no query
    can address a row without naming its tenant.
    """

    @declared_attr
    def merchant_id(cls) -> Mapped[int]:
        return mapped_column(BigIntId, ForeignKey("merchants.id"), primary_key=True)

    @declared_attr
    def id(cls) -> Mapped[int]:
        return mapped_column(BigInteger, Identity(), primary_key=True)


def allocate_ids(session: Session, table_name: str, count: int) -> list[int]:
    """``count`` fresh ids for ``table_name``, for bulk inserts that bypass the ORM."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
            "FROM generate_series(1, :count)"), {"table": table_name, "count": count})
        return [row[0] for row in rows]
    return _sqlite_allocate(session, table_name, count)


def _sqlite_allocate(session: Session, table_name: str, count: int) -> list[int]:
    # The UPDATE takes SQLite's write lock first, so two writers never receive the same ids.
    last = session.execute(text(
        "UPDATE id_counters SET next_id = next_id + :count WHERE name = :name "
        "RETURNING next_id"), {"count": count, "name": table_name}).scalar()
    if last is None:
        session.execute(text("INSERT INTO id_counters (name, next_id) VALUES (:name, :next)"),
                        {"name": table_name, "next": count + 1})
        last = count + 1
    return list(range(last - count, last))


@event.listens_for(Session, "before_flush")
def _assign_sqlite_ids(session: Session, flush_context, instances) -> None:
    pending: dict[str, list] = {}
    for obj in session.new:
        if isinstance(obj, MerchantScoped) and obj.id is None:
            pending.setdefault(obj.__table__.name, []).append(obj)
    if not pending or session.get_bind().dialect.name != "sqlite":
        return
    for table_name, objs in pending.items():
        for obj, new_id in zip(objs, _sqlite_allocate(session, table_name, len(objs)),
                               strict=True):
            obj.id = new_id


# Advisory-lock namespaces (the high bits of a PostgreSQL advisory lock key).
LOCK_TREE = 1


def lock_merchant(session: Session, merchant_id: int, *, namespace: int) -> None:
    """Serialize one kind of change per merchant until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a no-op write to the merchant row,
    which takes the database's write lock at once instead of at the first real write (a
    deferred upgrade could fail with "database is locked" between two writers). Call it first
    in the transaction, before reading what the lock protects.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": (namespace << 48) | merchant_id})
    else:
        session.execute(text("UPDATE merchants SET id = id WHERE id = :id"), {"id": merchant_id})


def utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def transaction(session) -> Iterator[None]:
    """Run one business action as one transaction: commit on success, roll back on any error.

    Services own their transactions through this helper; everything below them only flushes.
    """
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


# SQLSTATE of a statement PostgreSQL cancelled, here because it ran past statement_timeout.
QUERY_CANCELED = "57014"
_TIMEOUT_KEY = "fenxiao.statement_timeout_ms"


def limit_statement_time(engine: Engine, *, request_ms: int, job_ms: int,
                         in_request: Callable[[], bool]) -> None:
    """Give each PostgreSQL connection the statement timeout of the work it is checked out for.

    Requests (``in_request()`` true at checkout) get ``request_ms``: one slow query must not
    hold a worker, its row locks and a pool connection for longer than a client waits.
    Everything else gets ``job_ms``: the export job reads one REPEATABLE READ snapshot for
    minutes and its COUNT over a large merchant may be one long statement; ``flask demo tree``
    bulk-inserts, migrations rebuild indexes. A per-process setting (``options=-c …`` at
    connect) could not tell these apart, since the scheduler and the CLI build the same app,
    and the test process runs jobs and requests on one pool.

    The value is set at checkout only when it differs from what the connection already has
    (kept in the connection's ``info``), so a web worker pays one ``set_config`` per new
    connection. 0 means no timeout. SQLite has no statement timeout: nothing is done there.
    It is a session setting: behind PgBouncer in transaction pooling it would not follow the
    client, and the role's own ``statement_timeout`` is the place for it there.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkout")
    def _set_statement_timeout(dbapi_connection, connection_record, connection_proxy):
        wanted = request_ms if in_request() else job_ms
        if connection_record.info.get(_TIMEOUT_KEY) == wanted:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", (str(wanted),))
        finally:
            cursor.close()
        # Session-level, but a SET inside a transaction that is rolled back is undone: commit.
        dbapi_connection.commit()
        connection_record.info[_TIMEOUT_KEY] = wanted


def is_statement_timeout(error: BaseException) -> bool:
    """True for the error PostgreSQL raises when it cancelled a statement: past its timeout
    (or cancelled by an operator with ``pg_cancel_backend``, which the caller treats alike)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == QUERY_CANCELED


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # SQLite is the embedded demo database: enforce foreign keys and let writers wait for the
    # lock instead of failing at once when two gunicorn workers write together.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
