"""Console staff and platform admins: password sign-in and accounts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.database import transaction, utcnow
from app.encryption import dummy_password_hash, hash_password, verify_password
from app.errors import Conflict, Forbidden, Unauthorized
from app.extensions import db
from app.models import Merchant, PlatformAdmin, StaffAccount

BAD_CREDENTIALS = "The username or password is wrong."


def console_sign_in(*, username: str, password: str) -> StaffAccount:
    """A wrong username and a wrong password look the same, and take as long."""
    staff = db.session.scalars(select(StaffAccount).where(
        StaffAccount.username == username)).one_or_none()
    if not verify_password(staff.password_hash if staff else dummy_password_hash(), password) \
            or staff is None or not staff.is_active:
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    merchant = db.session.get(Merchant, staff.merchant_id)
    if merchant.status != "approved":
        raise Forbidden(f"The merchant account is {merchant.status}.",
                        code=f"merchant_{merchant.status}")
    with transaction(db.session):
        staff.last_login_at = utcnow()
    return staff


def admin_sign_in(*, username: str, password: str) -> PlatformAdmin:
    admin = db.session.scalars(select(PlatformAdmin).where(
        PlatformAdmin.username == username)).one_or_none()
    if not verify_password(admin.password_hash if admin else dummy_password_hash(), password) \
            or admin is None or not admin.is_active:
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    with transaction(db.session):
        admin.last_login_at = utcnow()
    return admin


def active_staff(staff_id: int) -> StaffAccount:
    """The staff account behind a console token, re-read on every request so that a
    deactivated account or a changed role takes effect at once."""
    staff = db.session.get(StaffAccount, staff_id)
    if staff is None or not staff.is_active:
        raise Unauthorized("This account is no longer active.", code="invalid_token")
    return staff


def active_admin(admin_id: int) -> PlatformAdmin:
    admin = db.session.get(PlatformAdmin, admin_id)
    if admin is None or not admin.is_active:
        raise Unauthorized("This account is no longer active.", code="invalid_token")
    return admin


def add_staff(*, merchant_id: int, username: str, password: str, role: str,
              display_name: str = "") -> StaffAccount:
    with transaction(db.session):
        staff = new_staff_account(merchant_id, username=username, password=password, role=role)
        staff.display_name = display_name
    return staff


def list_staff(*, merchant_id: int, page: int, per_page: int) -> tuple[list[StaffAccount], int]:
    query = select(StaffAccount).where(StaffAccount.merchant_id == merchant_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(StaffAccount.id).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    return list(items), total


def create_admin(*, username: str, password: str) -> PlatformAdmin:
    if db.session.scalars(select(PlatformAdmin).where(PlatformAdmin.username == username)).first():
        raise Conflict("That username is taken.", code="username_taken")
    with transaction(db.session):
        admin = PlatformAdmin(username=username, password_hash=hash_password(password))
        db.session.add(admin)
    return admin


def new_staff_account(merchant_id: int, *, username: str, password: str, role: str,
                      field: str = "username") -> StaffAccount:
    """Add a staff account in the caller's transaction; a taken username is a 409."""
    staff = StaffAccount(merchant_id=merchant_id, username=username, role=role,
                         password_hash=hash_password(password))
    try:
        with db.session.begin_nested():
            db.session.add(staff)
    except IntegrityError:
        raise Conflict("That username is taken.", code="username_taken",
                       errors={field: ["That username is taken."]}) from None
    return staff
