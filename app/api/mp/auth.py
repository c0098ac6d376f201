"""Mini-program sign-in (``wx.login`` code → our token) and sign-out."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from app import clients
from app.api.mp.schemas import LoginIn, LoginOut
from app.api.mp.share_visits import visit_context
from app.extensions import limiter, redis
from app.security import issue_token, mp_login_required
from app.services import attribution
from app.services import auth as auth_service

blp = Blueprint("mp_auth", __name__, url_prefix="/api/mp/v1", description="Mini-program sign-in")


@blp.route("/auth/login", methods=["POST"])
@limiter.limit(lambda: clients.settings().login_rate_limit_ip)
@blp.arguments(LoginIn)
@blp.response(200, LoginOut)
def login(body):
    """Exchange a wx.login code for a token. WeChat errors: 40029 → 400 invalid_code,
    45011 → 429, 40226 → 403 blocked_user, unreachable → 502."""
    settings = clients.settings()
    result = auth_service.login_with_code(
        code=body["code"], appid=settings.wechat_appid, wechat=clients.mini_program(),
        box=clients.secret_box(), openid_limit=clients.openid_login_limit(),
    )
    g.user_id = result.user.id
    if body.get("share_token"):
        attribution.record_login_visit(token=body["share_token"], user_id=result.user.id,
                                       context=visit_context("login"), redis_client=redis.client)
    token, _ = issue_token(secret_key=settings.secret_key, audience="mp",
                           subject=result.user.id, ttl_seconds=settings.token_ttl_seconds)
    return {"token": token, "expires_in": settings.token_ttl_seconds,
            "is_new_user": result.is_new_user, "user": result.user}


@blp.route("/auth/logout", methods=["POST"])
@mp_login_required
@blp.response(204)
@blp.doc(security=[{"bearerAuth": []}])
def logout():
    """Revoke this token now (it stays on a Redis deny-list until it would have expired)."""
    auth_service.sign_out(token_id=g.token_claims.token_id,
                          expires_at=g.token_claims.expires_at, redis_client=redis.client)
