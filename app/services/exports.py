"""Exports of orders, commissions, distributors, withdrawals and the quarterly income report,
as CSV or XLSX, streamed in bounded memory and run in the background with progress.

The console asks (``create_export``: status ``queued``); the run-exports job claims queued
exports with ``SELECT ... FOR UPDATE SKIP LOCKED`` so two runners never take the same one, and
writes each file while its rows arrive from a server-side cursor, in id order. The rows are
read in one REPEATABLE READ transaction (PostgreSQL), so the count and the rows come from the
same snapshot; progress is committed every ``progress_every`` rows in short transactions of
its own, so the console sees it while the read goes on. A file is written under a temporary
name and renamed when complete: a half-written file is never served.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.database import transaction, utcnow
from app.domain.business_time import merchant_zone
from app.encryption import SecretBox
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.models import Export, Merchant
from app.services.export_files import CONTENT_TYPES, WRITERS
from app.services.export_rows import SHEETS, Scope, UnreadableRow, count_statement
from app.services.scoping import get_scoped

log = logging.getLogger("fenxiao.exports")

PROGRESS_EVERY = 5_000
FETCH_ROWS = 2_000
MAX_OPEN_PER_MERCHANT = 5
# A runner that died leaves its export "running"; after this long it is marked failed.
ABANDONED_AFTER = timedelta(hours=6)
QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def create_export(*, merchant_id: int, staff_id: int | None, kind: str, fmt: str,
                  since_on: date | None = None, until_on: date | None = None,
                  quarter: str | None = None, now: datetime) -> Export:
    """Queue an export. The income report takes a quarter (``2026Q1``) and nothing else; the
    others take an optional date range (the merchant's dates, both included)."""
    params = _params(kind, since_on, until_on, quarter)
    with transaction(db.session):
        open_count = db.session.scalar(select(func.count()).select_from(Export).where(
            Export.merchant_id == merchant_id, Export.status.in_(("queued", "running"))))
        if open_count >= MAX_OPEN_PER_MERCHANT:
            raise Conflict(f"At most {MAX_OPEN_PER_MERCHANT} exports may wait or run at once.",
                           code="too_many_exports")
        export = Export(merchant_id=merchant_id, kind=kind, format=fmt, params=params,
                        status="queued", staff_id=staff_id, created_at=now)
        db.session.add(export)
        db.session.flush()
        export.file_name = _download_name(export)
    return export


def _params(kind: str, since_on: date | None, until_on: date | None,
            quarter: str | None) -> dict:
    if kind == "income":
        if since_on or until_on:
            raise InvalidInput(errors={"from": ["The income report covers a quarter."]})
        if not quarter or not QUARTER.match(quarter):
            raise InvalidInput(errors={"quarter": ["Give a quarter such as 2026Q1."]})
        return {"quarter": quarter}
    if quarter:
        raise InvalidInput(errors={"quarter": ["Only the income report covers a quarter."]})
    if since_on and until_on and until_on < since_on:
        raise InvalidInput(errors={"to": ["The range ends before it starts."]})
    return {"from": since_on.isoformat() if since_on else None,
            "to": until_on.isoformat() if until_on else None}


def _download_name(export: Export) -> str:
    params = export.params
    if params.get("quarter"):
        period = params["quarter"]
    else:
        period = "-".join((params.get(edge) or "all").replace("-", "") for edge in ("from", "to"))
    return f"{export.kind}-{period}-{export.id}.{export.format}"


def list_exports(*, merchant_id: int, page: int, per_page: int,
                 status: str | None = None) -> tuple[list[Export], int]:
    where = [Export.merchant_id == merchant_id]
    if status:
        where.append(Export.status == status)
    total = db.session.scalar(select(func.count()).select_from(Export).where(*where))
    items = db.session.scalars(select(Export).where(*where).order_by(Export.id.desc())
                               .offset((page - 1) * per_page).limit(per_page)).all()
    return list(items), total


def get_export(*, merchant_id: int, export_id: int) -> Export:
    return get_scoped(Export, merchant_id=merchant_id, id=export_id, what="export")


def percent(export: Export) -> int:
    if export.status == "done":
        return 100
    if not export.rows_total:
        return 0
    return min(99, export.rows_written * 100 // export.rows_total)


def folder_of(root: Path, merchant_id: int) -> Path:
    """Each merchant's files in a folder of its own under the instance folder."""
    return root / "exports" / str(merchant_id)


def stored_path(root: Path, export: Export) -> Path:
    return folder_of(root, export.merchant_id) / f"{export.id}.{export.format}"


def finished_file(*, merchant_id: int, export_id: int, root: Path) -> tuple[Path, str, str]:
    """The file of a finished export: its path, download name and content type."""
    export = get_export(merchant_id=merchant_id, export_id=export_id)
    if export.status != "done":
        raise Conflict(f"The export is {export.status}.", code="export_not_ready")
    path = stored_path(root, export)
    if not path.is_file():
        raise NotFound("The export's file is gone; export again.", code="export_file_missing")
    return path, export.file_name, CONTENT_TYPES[export.format]


# -- the run-exports job ------------------------------------------------------------------------

def run_queued(*, limit: int = 1, box: SecretBox | None = None, root: Path | None = None,
               progress_every: int = PROGRESS_EVERY) -> dict:
    """Claim and run up to ``limit`` queued exports, oldest first; returns how many finished
    and how many failed. Safe on any number of hosts at once."""
    if box is None or root is None:
        from app import clients  # the job is called without arguments, inside the app

        box = box or clients.secret_box()
        root = root or clients.settings().instance_dir
    outcome = {"exported": 0, "failed": _fail_abandoned(utcnow())}
    for _ in range(limit):
        key = _claim(utcnow())
        if key is None:
            break
        done = run_export(*key, box=box, root=root, progress_every=progress_every)
        outcome["exported" if done else "failed"] += 1
    return outcome


def _claim(now: datetime) -> tuple[int, int] | None:
    with transaction(db.session):
        export = db.session.scalars(
            select(Export).where(Export.status == "queued")
            .order_by(Export.created_at, Export.id).limit(1)
            .with_for_update(skip_locked=True)).first()
        if export is None:
            return None
        # SQLite has no row locks: the conditional update keeps a second runner out there.
        claimed = db.session.execute(
            update(Export).where(Export.merchant_id == export.merchant_id,
                                 Export.id == export.id, Export.status == "queued")
            .values(status="running", started_at=now)).rowcount
        key = (export.merchant_id, export.id)
    return key if claimed else None


def _fail_abandoned(now: datetime) -> int:
    with transaction(db.session):
        return db.session.execute(
            update(Export).where(Export.status == "running",
                                 Export.started_at < now - ABANDONED_AFTER)
            .values(status="failed", finished_at=now,
                    error="The export stopped before it finished; export again.")).rowcount


def run_export(merchant_id: int, export_id: int, *, box: SecretBox, root: Path,
               progress_every: int = PROGRESS_EVERY) -> bool:
    """Write the file of a claimed (running) export; True when it is done. Any failure leaves
    the export failed with a message for the merchant and no file behind."""
    export = db.session.get(Export, (merchant_id, export_id))
    sheet, scope = SHEETS[export.kind], _scope(export, box)
    path = stored_path(root, export)
    partial = path.with_name(f"{export.id}.partial.{export.format}")
    fmt = export.format
    db.session.rollback()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _snapshot() as connection:
            total = connection.scalar(count_statement(sheet, scope))
            _save(merchant_id, export_id, rows_total=total)
            rows = connection.execute(sheet.statement(scope).execution_options(
                yield_per=FETCH_ROWS))
            written = _write(sheet, scope, rows, partial, fmt, (merchant_id, export_id),
                             progress_every)
        partial.replace(path)
    except Exception as error:
        partial.unlink(missing_ok=True)
        log.exception("export failed", extra={"merchant_id": merchant_id,
                                              "export_id": export_id})
        _save(merchant_id, export_id, status="failed", finished_at=utcnow(),
              error=_message(error))
        return False
    _save(merchant_id, export_id, status="done", finished_at=utcnow(), rows_written=written,
          rows_total=written)
    return True


def _write(sheet, scope: Scope, rows, partial: Path, fmt: str, key: tuple[int, int],
           progress_every: int) -> int:
    out = WRITERS[fmt](partial, headers=sheet.headers, title=sheet.title)
    written = 0
    try:
        for row in rows:
            out.write(sheet.cells(row, scope))
            written += 1
            if written % progress_every == 0:
                _save(*key, rows_written=written)
    finally:
        out.close()
    return written


def _message(error: Exception) -> str:
    # Other errors may quote SQL or personal data: the log has them, the merchant a summary.
    if isinstance(error, UnreadableRow):
        return str(error)
    return f"The export failed ({type(error).__name__}); export again or ask for help."


def _scope(export: Export, box: SecretBox) -> Scope:
    merchant = db.session.get(Merchant, export.merchant_id)
    zone = merchant_zone(merchant.timezone)
    params = export.params

    def start_of(day: date | None) -> datetime | None:
        return datetime.combine(day, time(), tzinfo=zone) if day else None

    if params.get("quarter"):
        year, number = (int(part) for part in QUARTER.match(params["quarter"]).groups())
        first = date(year, 3 * number - 2, 1)
        after = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
        return Scope(export.merchant_id, zone, start_of(first), start_of(after), box,
                     quarter=params["quarter"])
    since = date.fromisoformat(params["from"]) if params.get("from") else None
    until = date.fromisoformat(params["to"]) + timedelta(days=1) if params.get("to") else None
    return Scope(export.merchant_id, zone, start_of(since), start_of(until), box)


@contextmanager
def _snapshot() -> Iterator:
    """A read-only connection whose statements all see one snapshot (PostgreSQL)."""
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def _save(merchant_id: int, export_id: int, **values) -> None:
    """Commit a change of the export at once, apart from the long read."""
    with Session(db.engine) as session, session.begin():
        session.execute(update(Export).where(Export.merchant_id == merchant_id,
                                             Export.id == export_id).values(**values))
