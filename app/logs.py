"""Structured (JSON) logs, one line per event, with the request id on every line.

Each request gets an id (a sane incoming ``X-Request-ID`` is kept, so a proxy's id follows the
request through); it is echoed in the response header and stamped, with the merchant, order and
user ids the view has set on ``g``, onto every log record written while the request runs.
Query strings are never logged: they may carry codes and tokens.

Secrets and personal data stay out (ARCHITECTURE.md, convention 12): our own code logs ids,
never values, and every line — third-party libraries' included — passes a last redaction
(credentials in URLs, bearer tokens, JWTs, PEM keys, mainland mobile numbers, fields named
like secrets) on its way out. wechatpy, which prints whole XML payloads at DEBUG, is kept at
INFO whatever ``LOG_LEVEL`` says, Flask-Limiter at WARNING; SQLAlchemy keeps its own WARNING (no
SQL, no result rows), and bound values are hidden from its errors (``hide_parameters``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REDACTED = "[redacted]"
# Fields whose whole value is a secret or personal data, wherever they appear in a record.
SECRET_FIELDS = frozenset({
    "password", "token", "access_token", "authorization", "secret", "session_key", "api_key",
    "apiv3_key", "private_key", "real_name", "phone", "id_number", "address",
})
# (pattern, replacement) applied to every string a record carries, tracebacks included.
REDACTIONS = (
    # Credentials in URLs, as urllib3 logs WeChat calls at DEBUG (appsecret, login codes).
    (re.compile(r"(?i)\b(secret|js_code|code|access_token|password|sign|paysign|session_key|"
                r"api_?key|apiv3_key)=[^&\s\"'<>]+"), rf"\1={REDACTED}"),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", re.DOTALL),
     f"[{REDACTED} PEM]"),
    # Mainland mobile numbers, masked as the app shows them (138****0000).
    (re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),
)
# Their DEBUG output is whole payloads (request and response XML with openids).
PAYLOAD_LOGGERS = ("wechatpy",)
# Flask-Limiter's INFO line on each breach names the key, a raw client IP (the app keeps only
# keyed hashes of IPs); the 429 is in our access log already. Its warnings and errors remain.
QUIET_LOGGERS = ("flask-limiter",)

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


def redact(value):
    """``value`` with secrets and personal data replaced (strings, and inside lists and dicts;
    a dict's value under a secret-looking key goes whole)."""
    if isinstance(value, str):
        for pattern, replacement in REDACTIONS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {key: REDACTED if str(key).lower() in SECRET_FIELDS else redact(item)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines whose every field, message and traceback has been through ``redact``."""

    def process_log_record(self, log_data):
        return redact(super().process_log_record(log_data))


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the whole process (gunicorn workers included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    floor = max(logging.getLevelName(level), logging.INFO)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(floor)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(floor, logging.WARNING))


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
