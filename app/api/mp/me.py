"""The signed-in user's own profile and phone number."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from app import clients
from app.api.mp.schemas import PhoneIn, PhoneOut, ProfileIn, ProfileOut
from app.security import mp_login_required
from app.services import auth as auth_service

blp = Blueprint("mp_me", __name__, url_prefix="/api/mp/v1", description="My profile")
BEARER = [{"bearerAuth": []}]


@blp.route("/me", methods=["GET"])
@mp_login_required
@blp.response(200, ProfileOut)
@blp.doc(security=BEARER)
def get_me():
    return auth_service.get_user(g.user_id)


@blp.route("/me", methods=["PATCH"])
@mp_login_required
@blp.arguments(ProfileIn)
@blp.response(200, ProfileOut)
@blp.doc(security=BEARER)
def patch_me(changes):
    return auth_service.update_profile(user_id=g.user_id, changes=changes)


@blp.route("/me/phone", methods=["POST"])
@mp_login_required
@blp.arguments(PhoneIn)
@blp.response(200, PhoneOut)
@blp.doc(security=BEARER)
def bind_phone(body):
    """Store the phone number behind a getPhoneNumber button code (encrypted, shown masked)."""
    user = auth_service.bind_phone(user_id=g.user_id, code=body["code"],
                                   wechat=clients.mini_program(), box=clients.secret_box())
    return {"has_phone": user.has_phone, "phone_masked": user.phone_masked}
