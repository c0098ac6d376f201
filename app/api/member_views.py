"""How a member is shown: to its merchant's staff (console) and inside a team (mini-program)."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.models import Member, User


class TeamMemberOut(Schema):
    id = fields.Integer()
    nickname = fields.String()
    avatar_url = fields.String()
    distributor_status = fields.String()
    direct_members = fields.Integer()
    team_size = fields.Integer()
    team_sales_fen = fields.Integer()
    joined_at = fields.DateTime()
    bound_at = fields.DateTime(allow_none=True)


class MemberOut(TeamMemberOut):
    user_id = fields.Integer()
    status_reason = fields.String()
    real_name_masked = fields.String()
    phone_masked = fields.String()
    upline_id = fields.Integer(allow_none=True)
    depth = fields.Integer()
    personal_sales_fen = fields.Integer()
    activated_at = fields.DateTime(allow_none=True)


def member_dict(member: Member, user: User) -> dict:
    return {
        "id": member.id, "user_id": user.id, "nickname": user.nickname,
        "avatar_url": user.avatar_url, "distributor_status": member.distributor_status,
        "status_reason": member.status_reason, "real_name_masked": member.real_name_masked,
        "phone_masked": member.phone_masked, "upline_id": member.upline_id,
        "depth": member.depth, "direct_members": member.direct_members,
        "team_size": member.team_size, "team_sales_fen": member.team_sales_fen,
        "personal_sales_fen": member.personal_sales_fen, "joined_at": member.created_at,
        "bound_at": member.bound_at, "activated_at": member.activated_at,
    }
