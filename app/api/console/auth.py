"""Console sign-in for merchant staff (and sign-out)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app import clients
from app.extensions import limiter, redis
from app.security import console_login_required, issue_token
from app.services import auth as auth_service
from app.services import staff as staff_service

blp = Blueprint("console_auth", __name__, url_prefix="/api/console/v1",
                description="Console sign-in")


class StaffLoginIn(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class StaffLoginOut(Schema):
    token = fields.String()
    expires_in = fields.Integer()
    merchant_id = fields.Integer()
    role = fields.String()


@blp.route("/auth/login", methods=["POST"])
@limiter.limit(lambda: clients.settings().login_rate_limit_ip)
@blp.arguments(StaffLoginIn)
@blp.response(200, StaffLoginOut)
def login(body):
    """Repeated failures from one client are rate-limited (429)."""
    settings = clients.settings()
    staff = staff_service.console_sign_in(username=body["username"], password=body["password"])
    token, _ = issue_token(secret_key=settings.secret_key, audience="console", subject=staff.id,
                           ttl_seconds=settings.console_token_ttl_seconds)
    return {"token": token, "expires_in": settings.console_token_ttl_seconds,
            "merchant_id": staff.merchant_id, "role": staff.role}


@blp.route("/auth/logout", methods=["POST"])
@console_login_required()
@blp.response(204)
@blp.doc(security=[{"bearerAuth": []}])
def logout():
    auth_service.sign_out(token_id=g.token_claims.token_id,
                          expires_at=g.token_claims.expires_at, redis_client=redis.client)
