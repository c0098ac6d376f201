"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import redis as redis_lib
from flask_smorest import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.errors import ServiceUnavailable
from app.extensions import db, redis

blp = Blueprint("health", __name__, description="Probes")


@blp.get("/healthz")
@blp.response(200)
def healthz():
    """The process is up and serving."""
    return {"status": "ok"}


@blp.get("/readyz")
@blp.response(200)
@blp.alt_response(503, description="The database or Redis is unreachable")
def readyz():
    """The database and Redis answer; 503 (with which one failed) otherwise."""
    problems = {}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        problems["database"] = ["unreachable"]
    finally:
        db.session.rollback()
    try:
        redis.ping()
    except redis_lib.RedisError:
        problems["redis"] = ["unreachable"]
    if problems:
        raise ServiceUnavailable("Not ready.", code="not_ready", errors=problems)
    return {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
