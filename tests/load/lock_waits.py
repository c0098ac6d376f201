"""Which statements waited on a lock during the load, sampled from PostgreSQL twice a second: a
request slow for lack of CPU and one slow behind another transaction's row lock look the same
from the client, and only the second gets worse with more hardware."""

from __future__ import annotations

import re
import threading
from collections import Counter

import psycopg

INTERVAL_SECONDS = 0.5
# Waiting sessions (not granted a lock) with what they run; a row lock shows as a wait on the
# holder's transaction id, so the statement text is what says which table.
WAITING = """
    SELECT a.query FROM pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
      AND a.wait_event_type = 'Lock'"""


class LockWaitSampler:
    def __init__(self, port: int, database: str) -> None:
        self.conninfo = f"host=127.0.0.1 port={port} user=postgres dbname={database}"
        self.samples = 0
        self.waiting: Counter = Counter()  # statement shape -> sessions seen waiting
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-waits", daemon=True)

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            while not self._stop.wait(INTERVAL_SECONDS):
                rows = connection.execute(WAITING).fetchall()
                self.samples += 1
                self.waiting.update(_shape(query) for (query,) in rows)

    def as_dict(self) -> dict:
        """Session-samples per statement shape; × the interval ≈ seconds spent waiting."""
        return {"interval_seconds": INTERVAL_SECONDS, "samples": self.samples,
                "waiting": dict(self.waiting.most_common(8))}


def _shape(query: str) -> str:
    """``UPDATE ledger_accounts SET …``: the verb and the table, without values."""
    words = re.sub(r"\s+", " ", query).strip()
    match = re.match(r"(?i)(update|insert into|delete from|select .*? from|select) ([\w.\"]+)",
                     words)
    return f"{match.group(1).split()[0].upper()} {match.group(2)}" if match else words[:60]
