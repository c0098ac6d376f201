"""Mini-program sign-in, phone binding, profile and sign-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.database import transaction, utcnow
from app.domain.personal_data import mask_phone
from app.encryption import SecretBox
from app.errors import BadRequest, Forbidden, NotFound, RateLimited, UpstreamError
from app.extensions import db
from app.integrations import token_denylist
from app.integrations.rate_limits import KeyedLimit
from app.integrations.wechat_miniprogram import MiniProgram, WeChatError, WeChatUnavailable
from app.models import User

log = logging.getLogger("fenxiao.auth")

# WeChat's login errors and what the client is told (API.md). 40163 is WeChat's own answer to a
# code used twice; the sandbox answers 40029 as the issue asks — both mean "get a new code".
_WECHAT_LOGIN_ERRORS = {
    40029: partial(BadRequest, "The login code is invalid or expired; call wx.login again.",
                   code="invalid_code", errors={"code": ["invalid or expired"]}),
    40163: partial(BadRequest, "The login code was already used; call wx.login again.",
                   code="invalid_code", errors={"code": ["already used"]}),
    45011: partial(RateLimited, "WeChat is rate-limiting this user; try again in a minute.",
                   code="wechat_rate_limited"),
    40226: partial(Forbidden, "WeChat has blocked this user.", code="blocked_user"),
}
_WECHAT_PHONE_ERRORS = {
    40029: partial(BadRequest, "The phone code is invalid or expired.", code="invalid_code",
                   errors={"code": ["invalid or expired"]}),
}

PROFILE_FIELDS = ("nickname", "avatar_url", "gender", "birth_year", "region")


@dataclass(frozen=True)
class LoginResult:
    user: User
    is_new_user: bool


def login_with_code(*, code: str, appid: str, wechat: MiniProgram, box: SecretBox,
                    openid_limit: KeyedLimit) -> LoginResult:
    """Exchange a ``wx.login`` code and create or update the user, in one transaction.

    The session_key is stored encrypted and never returned. Two concurrent first logins of the
    same openid end with one user: the loser of the insert race reads the winner's row.
    """
    session = _call_wechat(wechat.code_to_session, code, errors=_WECHAT_LOGIN_ERRORS)
    if not openid_limit.hit(session.openid):
        raise RateLimited("Too many sign-ins for this user; try again later.")
    with transaction(db.session):
        user, is_new = _get_or_create_user(appid=appid, openid=session.openid)
        if session.unionid:
            user.unionid = session.unionid
        user.session_key_encrypted = box.encrypt(session.session_key)
        user.last_login_at = utcnow()
    log.info("user signed in", extra={"user_id": user.id, "is_new_user": is_new})
    return LoginResult(user=user, is_new_user=is_new)


def bind_phone(*, user_id: int, code: str, wechat: MiniProgram, box: SecretBox) -> User:
    """Fetch the phone behind a ``getPhoneNumber`` code and store it encrypted and masked."""
    phone = _call_wechat(wechat.phone_number, code, errors=_WECHAT_PHONE_ERRORS)
    with transaction(db.session):
        user = get_user(user_id)
        user.phone_encrypted = box.encrypt(phone)
        user.phone_masked = mask_phone(phone)
        user.phone_hash = box.lookup_hash(phone)
    return user


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("This user no longer exists.", code="user_not_found")
    return user


def update_profile(*, user_id: int, changes: dict) -> User:
    """Apply the profile fields in ``changes``; anything else in it is ignored."""
    with transaction(db.session):
        user = get_user(user_id)
        for name in PROFILE_FIELDS:
            if name in changes:
                setattr(user, name, changes[name])
    return user


def sign_out(*, token_id: str, expires_at: datetime, redis_client) -> None:
    """Put the token on the deny-list until it would have expired anyway."""
    token_denylist.revoke(redis_client, token_id, expires_at=expires_at)


def _get_or_create_user(*, appid: str, openid: str) -> tuple[User, bool]:
    query = select(User).where(User.appid == appid, User.openid == openid)
    user = db.session.scalars(query).one_or_none()
    if user is not None:
        return user, False
    try:
        with db.session.begin_nested():
            user = User(appid=appid, openid=openid)
            db.session.add(user)
    except IntegrityError:
        return db.session.scalars(query).one(), False
    return user, True


def _call_wechat(method, code: str, *, errors: dict):
    try:
        return method(code)
    except WeChatUnavailable as error:
        log.warning("WeChat unavailable", extra={"errcode": error.errcode})
        raise UpstreamError() from None
    except WeChatError as error:
        if error.errcode in errors:
            raise errors[error.errcode]() from None
        log.error("unexpected WeChat error", extra={"errcode": error.errcode,
                                                    "errmsg": error.errmsg})
        raise UpstreamError(f"WeChat answered error {error.errcode}.") from None
