"""`flask demo tree`: a large tree of active distributors added to a merchant in bulk.

Every counter (``direct_members``, ``team_size``, ``team_sales_fen``) is computed here, in one
pass over the members from the last to the first: each member's parent comes before it, so
when a member is reached its own team is complete and can be added to its parent's. The rows
then go in with their final values, so nothing is queued in ``team_deltas`` and no recursive
query runs afterwards. Rows are written in chunks, each its own transaction, so a million
members never sit in one transaction; the tree is complete and consistent once this returns.

PostgreSQL gets ``COPY``; SQLite (the embedded demo database) gets executemany inserts.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator

from sqlalchemy import func, insert, select

from app.database import allocate_ids, lock_merchant, utcnow
from app.errors import InvalidInput, NotFound
from app.extensions import db
from app.models import Member, Merchant, User

SHAPES = ("balanced", "deep", "star")
CHUNK = 50_000
FANOUT = 10  # children per member in the balanced shape
CHAIN = 2_000  # length of the deep shape's chain
APPID = "wx-demo-tree"  # demo identities never sign in; a fake appid keeps them apart

# Not the tree lock: a new, separate tree changes no existing counter, and a build must not
# hold up live bindings. (On SQLite any write lock is database-wide anyway.)
LOCK_DEMO_BUILD = 2

_MEMBER_COLUMNS = ("merchant_id", "id", "user_id", "upline_id", "path", "depth",
                   "direct_members", "team_size", "team_sales_fen", "personal_sales_fen",
                   "bound_at", "distributor_status", "status_reason", "real_name_masked",
                   "phone_masked", "agreement_version", "activated_at", "created_at",
                   "updated_at")
_USER_COLUMNS = ("id", "appid", "openid", "nickname", "avatar_url", "gender", "region",
                 "created_at", "updated_at", "last_login_at")


def build_tree(*, merchant_id: int, members: int, shape: str,
               progress: Callable[[int], None] | None = None) -> dict:
    """Add ``members`` new active distributors to the merchant as one new tree of ``shape``.

    Shapes: ``balanced`` (breadth-first, up to 10 children each), ``deep`` (a chain of
    min(2,000, members), the rest spread evenly along it as leaves), ``star`` (one root, every
    other member directly under it). Commits every ``CHUNK`` rows and calls ``progress`` with
    the rows just committed. Returns a report of what was built.
    """
    started = time.perf_counter()
    if shape not in SHAPES:
        raise InvalidInput(errors={"shape": [f"One of {', '.join(SHAPES)}."]})
    if members < 1:
        raise InvalidInput(errors={"members": ["At least 1."]})
    if db.session.get(Merchant, merchant_id) is None:
        raise NotFound("This merchant does not exist.", code="merchant_not_found")
    plan = _Plan(_parents(shape, members))
    member_ids = allocate_ids(db.session, "members", members)
    db.session.commit()
    writer = _PostgresWriter() if _is_postgres() else _SqliteWriter()
    for start in range(0, members, CHUNK):
        stop = min(start + CHUNK, members)
        user_ids = _allocate_user_ids(merchant_id, stop - start)
        writer.write(merchant_id, user_ids, plan.rows(start, member_ids[start:stop], user_ids))
        db.session.commit()
        if progress is not None:
            progress(stop - start)
    deepest = plan.deepest()
    return {"merchant_id": merchant_id, "shape": shape, "members": members,
            "root_id": member_ids[0], "deepest_id": member_ids[deepest],
            "max_depth": plan.depth[deepest],
            "seconds": round(time.perf_counter() - started, 3)}


def personal_sales_fen(index: int) -> int:
    """The ``index``-th member's personal sales: deterministic, varied, never zero."""
    return 100 * (1 + (index * 37) % 997)


def _parents(shape: str, n: int) -> array:
    """The parent's index of every member (-1 for the root); always smaller than the child's."""
    if shape == "balanced":
        return array("q", (-1 if i == 0 else (i - 1) // FANOUT for i in range(n)))
    if shape == "star":
        return array("q", (-1 if i == 0 else 0 for i in range(n)))
    chain = min(CHAIN, n)
    rest = n - chain
    # The rest are spread evenly along the whole chain, in runs of siblings.
    return array("q", (i - 1 if i < chain else ((i - chain) * chain) // rest
                       for i in range(n)))


class _Plan:
    """Counters and depths of every member by index, computed in O(n) before any row is
    written; paths are made while writing, from the parent's (parents are written first)."""

    def __init__(self, parents: array) -> None:
        n = len(parents)
        self.parents = parents
        self.direct = array("q", bytes(8 * n))
        self.size = array("q", bytes(8 * n))
        self.sales = array("q", bytes(8 * n))
        self.depth = array("q", bytes(8 * n))
        # Children before parents: a member's team is complete when the loop reaches it.
        for i in range(n - 1, 0, -1):
            p = parents[i]
            self.direct[p] += 1
            self.size[p] += 1 + self.size[i]
            self.sales[p] += personal_sales_fen(i) + self.sales[i]
        for i in range(1, n):
            self.depth[i] = self.depth[parents[i]] + 1
        # The path a member's children get; kept only for members that have children.
        self._child_paths: dict[int, str] = {}
        self._ids: dict[int, int] = {}

    def deepest(self) -> int:
        depth = self.depth
        return max(range(len(depth)), key=depth.__getitem__)

    def rows(self, start: int, member_ids: list[int], user_ids: list[int]) -> Iterator[tuple]:
        """(id, user_id, upline_id, path, depth, direct, size, sales, personal) of members
        ``start`` onwards; every earlier member's rows must have been made already."""
        parents, child_paths, ids = self.parents, self._child_paths, self._ids
        for i, member_id, user_id in zip(range(start, start + len(member_ids)), member_ids,
                                         user_ids, strict=True):
            p = parents[i]
            if p < 0:
                path, upline_id = "/", None
            else:
                path, upline_id = child_paths[p], ids[p]
            if self.direct[i]:
                child_paths[i] = f"{path}{member_id}/"
                ids[i] = member_id
            yield (member_id, user_id, upline_id, path, self.depth[i], self.direct[i],
                   self.size[i], self.sales[i], personal_sales_fen(i))


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _allocate_user_ids(merchant_id: int, count: int) -> list[int]:
    """Ids for ``count`` new users, in the chunk's transaction. ``users`` has a plain
    autoincrement key, not a merchant counter: PostgreSQL hands out its sequence; on SQLite the
    lock below takes the database's write lock until the chunk commits, so max(id) + 1 onwards
    is ours."""
    if _is_postgres():
        return allocate_ids(db.session, "users", count)
    lock_merchant(db.session, merchant_id, namespace=LOCK_DEMO_BUILD)
    last = db.session.scalar(select(func.coalesce(func.max(User.id), 0)))
    return list(range(last + 1, last + 1 + count))


class _PostgresWriter:
    """COPY through the session's own psycopg connection, inside its transaction."""

    def write(self, merchant_id: int, user_ids: list[int], rows: Iterator[tuple]) -> None:
        now = utcnow().isoformat()
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY users ({', '.join(_USER_COLUMNS)}) FROM STDIN") as copy:
                for user_id in user_ids:
                    copy.write_row((user_id, APPID, f"demo-{user_id}", f"Demo {user_id}", "", 0,
                                    "", now, now, now))
            with cursor.copy(f"COPY members ({', '.join(_MEMBER_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    bound_at = None if row[2] is None else now
                    copy.write_row((merchant_id, *row, bound_at, "active", "", "", "", "",
                                    now, now, now))


class _SqliteWriter:
    """Core executemany inserts: SQLAlchemy stores the datetimes as it does everywhere else."""

    def write(self, merchant_id: int, user_ids: list[int], rows: Iterator[tuple]) -> None:
        now = utcnow()
        db.session.execute(insert(User), [
            {"id": user_id, "appid": APPID, "openid": f"demo-{user_id}",
             "nickname": f"Demo {user_id}", "avatar_url": "", "gender": 0, "region": "",
             "created_at": now, "updated_at": now, "last_login_at": now}
            for user_id in user_ids])
        names = _MEMBER_COLUMNS[1:10]
        db.session.execute(insert(Member), [
            {"merchant_id": merchant_id, **dict(zip(names, row, strict=True)),
             "bound_at": None if row[2] is None else now, "distributor_status": "active",
             "status_reason": "", "real_name_masked": "", "phone_masked": "",
             "agreement_version": "", "activated_at": now, "created_at": now,
             "updated_at": now}
            for row in rows])
