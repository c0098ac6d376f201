"""Request and response schemas of the mini-program sign-in and profile routes."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import Schema, fields, validate

from app.api.json_fields import Int

# A wx.login code is 32 characters today; 128 leaves room without accepting a pasted essay.
WECHAT_CODE = validate.Length(min=1, max=128)


class LoginIn(Schema):
    code = fields.String(required=True, validate=WECHAT_CODE)
    # The share link the user arrived through; attribution uses it (DOMAIN.md, binding).
    share_token = fields.String(validate=validate.Length(min=1, max=32))


class UserOut(Schema):
    id = fields.Integer()
    nickname = fields.String()
    avatar_url = fields.String()
    has_phone = fields.Boolean()


class LoginOut(Schema):
    token = fields.String()
    expires_in = fields.Integer()
    is_new_user = fields.Boolean()
    user = fields.Nested(UserOut)


class PhoneIn(Schema):
    code = fields.String(required=True, validate=WECHAT_CODE)


class PhoneOut(Schema):
    has_phone = fields.Boolean()
    phone_masked = fields.String()


class ProfileIn(Schema):
    nickname = fields.String(validate=validate.Length(max=64))
    avatar_url = fields.String(validate=validate.Length(max=512))
    gender = Int(validate=validate.OneOf([0, 1, 2]))
    birth_year = Int(allow_none=True,
                                validate=validate.Range(min=1900, max=datetime.now(UTC).year))
    region = fields.String(validate=validate.Length(max=64))


class ProfileOut(UserOut):
    gender = fields.Integer()
    birth_year = fields.Integer(allow_none=True)
    region = fields.String()
    phone_masked = fields.String(allow_none=True)
