"""The run's bookkeeping inside Locust: the request bound (core Locust only stops on time), GET
retries, and the results the runner's report is built from, written as Locust quits."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import gevent
from locust.stats import StatsEntry
from urllib3.util.retry import Retry

# gunicorn closes a keep-alive connection idle for 2 s; a request sent on it at that moment is
# reset. Browsers send an idempotent request again on a fresh connection, so a GET is retried
# once, and counted (RETRIED); a POST never is.
GET_RETRY = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods={"GET"},
                  raise_on_status=False)
RETRIED: Counter = Counter()


class Run:
    """Counts requests against the bound, and writes what the report needs when Locust quits
    (before Locust prints, and so clears, its own summary)."""

    def __init__(self, environment, *, max_requests: int, result_file: str) -> None:
        self.environment, self.max_requests, self.result_file = (
            environment, max_requests, result_file)
        self.requests = 0
        self.stop_reason = "duration"
        self.started = self.stopping = None
        events = environment.events
        events.request.add_listener(self.on_request)
        events.test_start.add_listener(lambda **_: setattr(self, "started", time.time()))
        events.test_stopping.add_listener(self.on_stopping)
        events.quitting.add_listener(self.on_quitting)

    def on_request(self, **_kwargs) -> None:
        self.requests += 1
        if self.max_requests and self.requests == self.max_requests:
            self.stop_reason = "request bound"
            # Not from here: quitting stops every user, this request's own greenlet included.
            gevent.spawn(self.environment.runner.quit)

    def on_stopping(self, **_kwargs) -> None:
        self.stopping = self.stopping or time.time()

    def on_quitting(self, environment, **_kwargs) -> None:
        if not self.result_file:
            return
        stats, runner = environment.stats, environment.runner
        entries = [_entry(entry) for entry in stats.entries.values()]
        result = {
            "started": self.started, "stopped": self.stopping or time.time(),
            "stop_reason": self.stop_reason,
            "users": dict(runner.final_user_classes_count or runner.user_classes_count),
            "entries": sorted(entries, key=lambda e: e["name"]),
            "classes": [_entry(entry) for entry in _by_class(stats)],
            "total": _entry(stats.total),
            "errors": [{"method": e.method, "name": e.name, "error": str(e.error),
                        "occurrences": e.occurrences} for e in stats.errors.values()],
            "get_retries": dict(RETRIED),
            "exceptions": [{"count": e["count"], "msg": e["msg"], "nodes": sorted(e["nodes"])}
                           for e in runner.exceptions.values()],
        }
        Path(self.result_file).write_text(json.dumps(result, ensure_ascii=False, indent=1))


def _by_class(stats) -> list:
    """One merged row per request-name prefix (buyer, distributor, staff, sandbox), so each
    class gets its own percentiles, not an average of its routes'."""
    merged = {}
    for entry in stats.entries.values():
        label = entry.name.split(":", 1)[0]
        merged.setdefault(label, StatsEntry(stats, label, "")).extend(entry)
    return [merged[label] for label in sorted(merged)]


def _entry(entry) -> dict:
    """One stats row; percentiles as Locust buckets response times (2 significant digits)."""
    if not entry.num_requests:
        return {"name": entry.name, "method": entry.method, "requests": 0,
                "failures": entry.num_failures}
    return {"name": entry.name, "method": entry.method, "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time, 1),
            "avg_ms": round(entry.avg_response_time, 1)}
