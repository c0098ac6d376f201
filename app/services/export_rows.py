"""What each export contains: its header, the one query that streams its rows (merchant-scoped,
in id order) and how a database row becomes a row of cells.

Cells are ``int`` (fen, bps, ids, counts), ``str`` or ``None`` (empty). Money stays in whole
fen, so nothing is rounded on its way to a spreadsheet. Times are shown in the merchant's
timezone as ``YYYY-MM-DD HH:MM:SS``. Phone numbers and real names are masked, except the real
name in the income report, which finance needs to file it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Select, and_, cast, func, select

from app.domain.personal_data import mask_phone
from app.encryption import SecretBox
from app.models import Commission, Level, Member, Order, User, Withdrawal

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class UnreadableRow(Exception):
    """A row that cannot be exported faithfully; its message is shown to the merchant."""


@dataclass(frozen=True)
class Scope:
    """Whose rows, which period (UTC bounds, ``until`` excluded) and how to show them."""

    merchant_id: int
    zone: ZoneInfo
    since: datetime | None
    until: datetime | None
    box: SecretBox
    quarter: str = ""

    def shown(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.zone).strftime(TIME_FORMAT) if moment else None


@dataclass(frozen=True)
class Sheet:
    title: str
    headers: tuple[str, ...]
    statement: Callable[[Scope], Select]
    cells: Callable[[tuple, Scope], tuple]


def mask_name(name: str | None) -> str:
    """张** : the first character only, as the member's own masked name is stored."""
    return name[0] + "*" * (len(name) - 1) if name else ""


def _within(column, scope: Scope) -> list:
    bounds = []
    if scope.since is not None:
        bounds.append(column >= scope.since)
    if scope.until is not None:
        bounds.append(column < scope.until)
    return bounds


# -- orders -------------------------------------------------------------------------------------

def _orders(scope: Scope) -> Select:
    address = Order.address
    return (select(Order.id, Order.out_trade_no, Order.status, Order.buyer_member_id,
                   address["receiver"].as_string(), address["phone"].as_string(),
                   address["province"].as_string(), address["city"].as_string(),
                   Order.goods_fen, Order.discount_fen, Order.shipping_fen, Order.paid_fen,
                   Order.refunded_fen, Order.carrier, Order.tracking_no, Order.created_at,
                   Order.paid_at, Order.shipped_at, Order.received_at)
            .where(Order.merchant_id == scope.merchant_id, *_within(Order.created_at, scope))
            .order_by(Order.id))


def _order_cells(row: tuple, scope: Scope) -> tuple:
    (order_id, out_trade_no, status, buyer_id, receiver, phone, province, city, goods, discount,
     shipping, paid, refunded, carrier, tracking_no, created, paid_at, shipped, received) = row
    return (order_id, out_trade_no, status, buyer_id, mask_name(receiver),
            mask_phone(phone) if phone else "", province or "", city or "", goods, discount,
            shipping, paid, refunded, carrier, tracking_no, scope.shown(created),
            scope.shown(paid_at), scope.shown(shipped), scope.shown(received))


ORDERS = Sheet(
    title="orders",
    headers=("订单ID", "订单号", "状态", "买家会员ID", "收货人", "收货电话", "省份", "城市",
             "商品金额(分)", "优惠(分)", "运费(分)", "实付(分)", "已退款(分)", "物流公司",
             "运单号", "下单时间", "支付时间", "发货时间", "收货时间"),
    statement=_orders, cells=_order_cells)


# -- commissions --------------------------------------------------------------------------------

def _commissions(scope: Scope) -> Select:
    return (select(Commission.id, Commission.order_id, Order.out_trade_no, Commission.line_no,
                   Commission.tier, Commission.member_id, Member.real_name_masked,
                   Commission.base_fen, Commission.rate_bps, Commission.fixed_fen_per_unit,
                   Commission.amount_fen, Commission.reversed_fen, Commission.status,
                   Commission.period, Commission.created_at, Commission.settled_at)
            .join(Order, and_(Order.merchant_id == Commission.merchant_id,
                              Order.id == Commission.order_id))
            .join(Member, and_(Member.merchant_id == Commission.merchant_id,
                               Member.id == Commission.member_id))
            .where(Commission.merchant_id == scope.merchant_id,
                   *_within(Commission.created_at, scope))
            .order_by(Commission.id))


def _commission_cells(row: tuple, scope: Scope) -> tuple:
    *head, created, settled = row
    return (*head, scope.shown(created), scope.shown(settled))


COMMISSIONS = Sheet(
    title="commissions",
    headers=("佣金ID", "订单ID", "订单号", "订单行", "层级", "分销员会员ID", "分销员姓名",
             "计佣基数(分)", "比例(bps)", "每件固定(分)", "佣金(分)", "已冲回(分)", "状态",
             "期间", "产生时间", "结算时间"),
    statement=_commissions, cells=_commission_cells)


# -- distributors -------------------------------------------------------------------------------

def _distributors(scope: Scope) -> Select:
    return (select(Member.id, User.nickname, Member.real_name_masked, Member.phone_masked,
                   Member.distributor_status, Member.upline_id, Level.name,
                   Member.direct_members, Member.team_size, Member.team_sales_fen,
                   Member.personal_sales_fen, Member.applied_at, Member.activated_at)
            .join(User, User.id == Member.user_id)
            .outerjoin(Level, and_(Level.merchant_id == Member.merchant_id,
                                   Level.id == Member.level_id))
            .where(Member.merchant_id == scope.merchant_id,
                   Member.distributor_status != "none", *_within(Member.applied_at, scope))
            .order_by(Member.id))


def _distributor_cells(row: tuple, scope: Scope) -> tuple:
    *head, level_name, direct, team, team_sales, own_sales, applied, activated = row
    # No level of one's own is the base level: the plan's rates.
    return (*head, level_name or "", direct, team, team_sales, own_sales, scope.shown(applied),
            scope.shown(activated))


DISTRIBUTORS = Sheet(
    title="distributors",
    headers=("会员ID", "昵称", "姓名", "手机", "状态", "上级ID", "等级", "直属成员",
             "团队人数", "团队销售(分)", "个人销售(分)", "申请时间", "成为分销员时间"),
    statement=_distributors, cells=_distributor_cells)


# -- withdrawals --------------------------------------------------------------------------------

def _withdrawals(scope: Scope) -> Select:
    return (select(Withdrawal.id, Withdrawal.member_id, Member.real_name_masked,
                   Withdrawal.amount_fen, Withdrawal.fee_fen, Withdrawal.status,
                   Withdrawal.auto_approved, Withdrawal.review_reason, Withdrawal.fail_reason,
                   Withdrawal.offline_reference, Withdrawal.transfer_bill_no,
                   Withdrawal.requested_at, Withdrawal.reviewed_at, Withdrawal.finished_at)
            .join(Member, and_(Member.merchant_id == Withdrawal.merchant_id,
                               Member.id == Withdrawal.member_id))
            .where(Withdrawal.merchant_id == scope.merchant_id,
                   *_within(Withdrawal.requested_at, scope))
            .order_by(Withdrawal.id))


def _withdrawal_cells(row: tuple, scope: Scope) -> tuple:
    (withdrawal_id, member_id, name, amount, fee, status, auto, review_reason, fail_reason,
     reference, bill_no, requested, reviewed, finished) = row
    return (withdrawal_id, member_id, name, amount, fee, status, "是" if auto else "否",
            review_reason, fail_reason, reference, bill_no, scope.shown(requested),
            scope.shown(reviewed), scope.shown(finished))


WITHDRAWALS = Sheet(
    title="withdrawals",
    headers=("提现ID", "会员ID", "姓名", "到账金额(分)", "手续费(分)", "状态", "自动审核",
             "审核意见", "失败原因", "线下付款凭证", "微信转账单号", "申请时间", "审核时间",
             "完成时间"),
    statement=_withdrawals, cells=_withdrawal_cells)


# -- the quarterly income report ----------------------------------------------------------------

def _income(scope: Scope) -> Select:
    """Income of a quarter: the commission paid out to each distributor in it — withdrawals
    that reached ``paid_out`` (by WeChat transfer or offline) with their finish time inside the
    quarter in the merchant's timezone; the amount received plus the fee charged on it."""
    paid = (Withdrawal.merchant_id == scope.merchant_id, Withdrawal.status == "paid_out",
            *_within(Withdrawal.finished_at, scope))
    return (select(Withdrawal.member_id, Member.real_name_encrypted, Member.phone_masked,
                   func.count(), cast(func.sum(Withdrawal.amount_fen), BigInteger),
                   cast(func.sum(Withdrawal.fee_fen), BigInteger))
            .join(Member, and_(Member.merchant_id == Withdrawal.merchant_id,
                               Member.id == Withdrawal.member_id))
            .where(*paid)
            .group_by(Withdrawal.member_id, Member.real_name_encrypted, Member.phone_masked)
            .order_by(Withdrawal.member_id))


def _income_cells(row: tuple, scope: Scope) -> tuple:
    member_id, name_encrypted, phone_masked, count, received, fee = row
    try:
        real_name = scope.box.decrypt(name_encrypted) if name_encrypted else ""
    except ValueError:
        raise UnreadableRow(f"The real name of member {member_id} cannot be decrypted with "
                            "this deployment's key.") from None
    # No ID numbers are collected yet: the column is there for the filing, and stays empty.
    return (member_id, real_name, "", phone_masked, scope.quarter, count, received, fee,
            received + fee)


INCOME = Sheet(
    title="income",
    headers=("会员ID", "姓名", "身份证号(脱敏)", "手机", "季度", "提现笔数", "到账金额(分)",
             "手续费(分)", "收入(分)"),
    statement=_income, cells=_income_cells)


SHEETS = {sheet.title: sheet for sheet in (ORDERS, COMMISSIONS, DISTRIBUTORS, WITHDRAWALS,
                                           INCOME)}


def count_statement(sheet: Sheet, scope: Scope) -> Select:
    return select(func.count()).select_from(sheet.statement(scope).order_by(None).subquery())
