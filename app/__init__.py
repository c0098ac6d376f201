"""Fenxiao: the backend of WeChat mini-program distribution (分销) programs.

``create_app()`` builds the app: config → extensions → blueprints → errors → CLI. Importing this
package does no work.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import PROJECT_ROOT, Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    from app import api as api_package
    from app import models  # noqa: F401  (registers every table for Alembic)
    from app.cli import register_cli
    from app.clients import init_clients
    from app.console import init_console
    from app.database import limit_statement_time
    from app.errors import register_error_handlers
    from app.extensions import api, db, limiter, migrate, redis
    from app.logs import configure_logging, init_request_logging

    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_dir))
    app.config.update(_flask_config(settings))
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies)

    if settings.database_url.startswith("sqlite"):
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    with app.app_context():
        limit_statement_time(db.engine, request_ms=settings.db_statement_timeout_ms,
                             job_ms=settings.db_job_statement_timeout_ms,
                             in_request=has_request_context)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    redis_connection = redis.init_app(app, url=settings.redis_url,
                                      instance_dir=settings.instance_dir)
    app.config["RATELIMIT_STORAGE_URI"] = redis_connection.limiter_storage_uri
    app.config["RATELIMIT_STORAGE_OPTIONS"] = redis_connection.limiter_storage_options
    limiter.init_app(app)
    api.init_app(app)
    init_clients(app, settings, redis_connection)

    init_request_logging(app)
    app.before_request(_refuse_oversized_body)
    api_package.register(app, api)
    init_console(app, settings)
    register_error_handlers(app)
    register_cli(app)
    return app


def _refuse_oversized_body() -> None:
    """413 before any view runs when the declared body is over MAX_CONTENT_LENGTH.

    Werkzeug would raise the same error only when a view reads the body, and a view that
    catches broadly (the WeChat Pay webhook answers any failure with a 500 so that WeChat
    retries) would turn it into something else. A chunked body, which declares no length, is
    still cut off by Werkzeug at the limit while it is read.
    """
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def _flask_config(settings: Settings) -> dict:
    return {
        "SECRET_KEY": settings.secret_key,
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        # Bound values stay out of SQL errors and SQL logs: they carry openids, phone hashes,
        # encrypted secrets and idempotency bodies, and tracebacks end up in the logs.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "MAX_CONTENT_LENGTH": settings.max_content_length,
        "JSON_SORT_KEYS": False,
        "API_TITLE": "Fenxiao",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Swagger UI's assets come from the swagger-ui-bundle package, served by us: no CDN.
        "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
        # Rate limits protect capacity; a Redis outage must not turn into refused sign-ins.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_HEADERS_ENABLED": True,
    }
