"""Tokens, the signed-in principal, and rate-limit keys.

Tokens are JWTs (HS256, PyJWT) signed with a key derived from SECRET_KEY for this purpose only.
Each carries an audience (``mp`` for mini-program users, ``console`` for merchant staff), an id
(``jti``) that logout puts on a Redis deny-list, and an expiry.
"""

from __future__ import annotations

import functools
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, g, request

from app.encryption import derive_key
from app.errors import Forbidden, Unauthorized
from app.extensions import redis
from app.integrations import token_denylist

log = logging.getLogger("fenxiao.security")

ALGORITHM = "HS256"
AUDIENCES = ("mp", "console", "admin")


@dataclass(frozen=True)
class TokenClaims:
    audience: str
    subject: int
    token_id: str
    expires_at: datetime


def issue_token(*, secret_key: str, audience: str, subject: int, ttl_seconds: int,
                now: datetime | None = None) -> tuple[str, TokenClaims]:
    """Sign a token for ``subject``; returns the token and the claims it carries."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown token audience {audience!r}")
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = TokenClaims(audience=audience, subject=subject, token_id=secrets.token_urlsafe(16),
                         expires_at=issued_at + timedelta(seconds=ttl_seconds))
    payload = {"sub": str(subject), "aud": audience, "jti": claims.token_id,
               "iat": issued_at, "exp": claims.expires_at}
    return jwt.encode(payload, _signing_key(secret_key), algorithm=ALGORITHM), claims


def decode_token(token: str, *, secret_key: str, audience: str,
                 now: datetime | None = None) -> TokenClaims:
    """Verify signature, audience and expiry; raise ``Unauthorized`` for anything else."""
    try:
        payload = jwt.decode(
            token, _signing_key(secret_key), algorithms=[ALGORITHM], audience=audience,
            # With an explicit `now` (tests, replays) the time checks are ours, not the clock's.
            options={"require": ["sub", "aud", "jti", "iat", "exp"],
                     "verify_exp": now is None, "verify_iat": now is None},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired; sign in again.", code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("The token is not valid.", code="invalid_token") from None
    expires_at = datetime.fromtimestamp(payload["exp"], UTC)
    if now is not None and now >= expires_at:
        raise Unauthorized("The token has expired; sign in again.", code="token_expired")
    if not str(payload["sub"]).isdigit():
        raise Unauthorized("The token is not valid.", code="invalid_token")
    return TokenClaims(audience=payload["aud"], subject=int(payload["sub"]),
                       token_id=payload["jti"], expires_at=expires_at)


def _signing_key(secret_key: str) -> bytes:
    return derive_key(secret_key, purpose=b"fenxiao/tokens/v1")


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.", code="missing_token")
    return token.strip()


def current_claims(audience: str) -> TokenClaims:
    """The request's verified, unrevoked token of ``audience``; kept on ``g.token_claims``."""
    settings = current_app.extensions["fenxiao.settings"]
    claims = decode_token(bearer_token(), secret_key=settings.secret_key, audience=audience)
    if token_denylist.is_revoked(redis.client, claims.token_id):
        raise Unauthorized("The token was revoked; sign in again.", code="token_revoked")
    g.token_claims = claims
    return claims


def mp_login_required(view):
    """Require a valid, unrevoked mini-program token; the user id lands in ``g.user_id``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.user_id = current_claims("mp").subject
        return view(*args, **kwargs)

    return wrapper


def console_login_required(*roles: str):
    """Require a console token of an active staff member, with one of ``roles`` if given.

    The staff row is read on every request, so a deactivated account or a changed role takes
    effect at once; ``g.merchant_id`` is the tenant every console query is scoped to.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            from app.services.staff import active_staff

            staff = active_staff(current_claims("console").subject)
            if roles and staff.role not in roles:
                raise Forbidden(f"The {staff.role} role may not do this.", code="role_forbidden")
            g.staff, g.merchant_id = staff, staff.merchant_id
            return view(*args, **kwargs)

        return wrapper

    return decorator


def admin_login_required(view):
    """Require a platform administrator's token."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        from app.services.staff import active_admin

        g.admin = active_admin(current_claims("admin").subject)
        return view(*args, **kwargs)

    return wrapper
