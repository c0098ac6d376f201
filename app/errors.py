"""One error family, raised deep, translated once into the one JSON error shape.

``{"code": "invalid_code", "message": "human readable", "errors": {"field": ["..."]}}``

Business code raises an ``AppError`` subclass with a stable ``code``; Flask and webargs errors
(404 routes, 405, 413, 422 validation, 429 rate limits) are mapped to the same shape, a
statement PostgreSQL cancelled at the request's statement timeout becomes a 503
``query_timeout`` (its transaction rolled back: retrying is safe), and anything unexpected
becomes a 500 with no stack trace in the response.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.database import is_statement_timeout

log = logging.getLogger("fenxiao.errors")


class AppError(Exception):
    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 errors: dict[str, list[str]] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.errors = errors or {}


class BadRequest(AppError):
    """The request is well-formed but cannot be honoured as sent (a used WeChat code)."""

    status = 400
    code = "bad_request"


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"
    message = "Some fields are invalid."


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    message = "Sign in first."


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    message = "You may not do this."


class NotFound(AppError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; try again later."


class UpstreamError(AppError):
    status = 502
    code = "upstream_error"
    message = "WeChat did not answer correctly; try again."


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    message = "A backing service is unavailable."


# Stable codes for the HTTP errors that Flask, webargs and Flask-Limiter raise themselves.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def error_body(code: str, message: str, errors: dict | None = None) -> dict:
    return {"code": code, "message": message, "errors": errors or {}}


def error_response_for_app(error: AppError):
    return jsonify(error_body(error.code, error.message, error.errors)), error.status


def error_response_for_http(error: HTTPException):
    status = error.code or 500
    if status >= 500:
        return _internal_error(error)
    errors = _webargs_field_errors(error)
    message = "Some fields are invalid." if errors else (error.description or error.name)
    response = jsonify(error_body(HTTP_CODES.get(status, "http_error"), message, errors))
    for name, value in _passthrough_headers(error):
        response.headers[name] = value
    return response, status


def _internal_error(error: BaseException):
    log.exception("unhandled error", exc_info=error)
    return jsonify(error_body("internal_error", "Something went wrong on our side.")), 500


# How long a client should wait before retrying a request that ran past the statement timeout.
QUERY_TIMEOUT_RETRY_AFTER_SECONDS = 5


def _database_error(error: OperationalError):
    """A statement cancelled at the statement timeout: 503, so clients (and WeChat) retry.

    The transaction it ran in is rolled back (services run in ``transaction()``; a view's
    session is removed with the request). Only the path is logged: the error's text quotes the
    SQL. Any other operational error is unexpected here and stays a 500.
    """
    if not is_statement_timeout(error):
        return _internal_error(error)
    log.warning("statement timeout", extra={"path": request.path, "method": request.method})
    response = jsonify(error_body("query_timeout",
                                  "The request took too long; try again in a moment."))
    response.headers["Retry-After"] = str(QUERY_TIMEOUT_RETRY_AFTER_SECONDS)
    return response, 503


def _webargs_field_errors(error: HTTPException) -> dict:
    """Flatten webargs' ``{"json": {"field": [...]}}`` to ``{"field": [...]}``.

    marshmallow reports a body of the wrong type (a JSON array, a string) under ``_schema``;
    naming it ``body`` tells the client which part of the request was wrong.
    """
    messages = (getattr(error, "data", None) or {}).get("messages") or {}
    flat: dict = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            flat.update(location_errors)
        elif location_errors:  # e.g. ["Invalid JSON body."]: the body as a whole is wrong
            flat.setdefault("_schema", []).extend(location_errors)
    if "_schema" in flat:
        flat["body"] = flat.pop("_schema")
    return flat


def _passthrough_headers(error: HTTPException):
    # Keep Retry-After and rate-limit headers that the raising library prepared.
    response = error.get_response()
    for name in ("Retry-After", "Allow"):
        if name in response.headers:
            yield name, response.headers[name]


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, error_response_for_app)
    app.register_error_handler(HTTPException, error_response_for_http)
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(Exception, _internal_error)
