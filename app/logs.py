"""Structured (JSON) logs, one line per event, with the request id on every line.

Each request gets an id (a sane incoming ``X-Request-ID`` is kept, so a proxy's id follows the
request through); it is echoed in the response header and stamped, with the merchant, order and
user ids the view has set on ``g``, onto every log record written while the request runs.
Query strings are never logged: they may carry codes and tokens.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CONTEXT_FIELDS = ("request_id", "merchant_id", "order_id", "user_id")

access_log = logging.getLogger("fenxiao.access")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            for name in CONTEXT_FIELDS:
                value = g.get(name)
                if value is not None and not hasattr(record, name):
                    setattr(record, name, value)
        return True


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the whole process (gunicorn workers included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def init_request_logging(app: Flask) -> None:
    @app.before_request
    def _start_request():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        if started is not None:
            access_log.info("request", extra={
                "method": request.method, "path": request.path, "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            })
        return response
