"""A share link opened inside the mini-program (the scene from onLoad, or a share token).

Visits are limited per client IP and per signed-in user (``SHARE_VISIT_RATE_LIMIT_*``): each
one may bind a member, so a script replaying tokens must not farm bindings. The limits are
checked after sign-in, so the user is known, and before the body is read.
"""

from __future__ import annotations

from urllib.parse import unquote

from flask import g, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app import clients
from app.extensions import limiter, redis
from app.security import mp_login_required
from app.services import attribution

blp = Blueprint("mp_share_visits", __name__, url_prefix="/api/mp/v1", description="Share visits")


class ShareVisitIn(Schema):
    scene = fields.String(validate=validate.Length(min=1, max=128))
    share_token = fields.String(validate=validate.Length(min=1, max=32))

    @validates_schema
    def one_of_them(self, data, **kwargs):
        if not data.get("scene") and not data.get("share_token"):
            raise ValidationError("Send the scene or the share_token.", "share_token")


class ShareVisitOut(Schema):
    merchant_id = fields.Integer()
    distributor_id = fields.Integer()
    bound = fields.Boolean()
    reason = fields.String()


def signed_in_user_key() -> str:
    return f"user:{g.user_id}"


@blp.route("/share-visits", methods=["POST"])
@mp_login_required
@limiter.limit(lambda: clients.settings().share_visit_rate_limit_ip)
@limiter.limit(lambda: clients.settings().share_visit_rate_limit_user,
               key_func=signed_in_user_key)
@blp.arguments(ShareVisitIn)
@blp.response(200, ShareVisitOut)
@blp.doc(security=[{"bearerAuth": []}])
def share_visit(body):
    """Record the visit and bind per the merchant's rules; ``reason`` says what happened."""
    # The mini-program hands over options.scene still URL-encoded unless it decoded it.
    token = body.get("share_token") or unquote(body["scene"])
    return attribution.record_visit(
        token=token, user_id=g.user_id, redis_client=redis.client,
        context=visit_context("miniprogram", scene_value=request.headers.get("X-WX-Scene", "")))


def visit_context(channel: str, *, scene_value: str = "") -> attribution.VisitContext:
    """Where a visit came from, with the client IP hashed (never stored raw)."""
    return attribution.VisitContext(
        channel=channel, scene_value=scene_value[:64],
        ip_hash=clients.secret_box().lookup_hash(request.remote_addr or ""),
        user_agent=request.headers.get("User-Agent", "")[:255])
