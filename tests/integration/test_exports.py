"""Exports against PostgreSQL: every kind in both formats is opened back (csv reader, openpyxl)
and compared with the database row for row; masking, tenancy, the merchant's day and quarter
edges (midnight in Asia/Shanghai), progress, failure, and runners that never share an export.

The shop's money is made by real postings: orders accrue commission, settle, and withdrawals
are requested, approved and paid offline through the withdrawal service.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from flask_migrate import upgrade
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import create_app
from app.clients import secret_box
from app.database import transaction, utcnow
from app.domain.personal_data import mask_phone
from app.encryption import SecretBox
from app.extensions import db
from app.models import Commission, Export, Member, Order, User, Withdrawal
from app.services import commissions, exports, withdrawals
from app.services.export_files import XlsxFile
from tests.factories import make_member, make_merchant, make_order, make_user, pay_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 23:59:59 on 31 March and midnight on 1 April in Shanghai: the last second of Q1, the first of Q2.
LAST_OF_Q1 = datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC)
FIRST_OF_Q2 = datetime(2026, 3, 31, 16, 0, 0, tzinfo=UTC)
FORMULA = '=HYPERLINK("http://evil.example","点我")'
ADDRESS = {"receiver": "张三丰", "phone": "13800001234", "province": "广东省", "city": "深圳市",
           "district": "南山区", "detail": "科技园 1 号"}
KINDS = ("orders", "commissions", "distributors", "withdrawals", "income")


# -- the shop ----------------------------------------------------------------------------------

def give_identity(member: Member, real_name: str, phone: str) -> None:
    box = secret_box()
    with transaction(db.session):
        row = db.session.get(Member, (member.merchant_id, member.id))
        row.real_name_encrypted = box.encrypt(real_name)
        row.real_name_masked = real_name[0] + "*" * (len(real_name) - 1)
        row.phone_encrypted, row.phone_masked = box.encrypt(phone), mask_phone(phone)
        row.applied_at = utcnow()


def paid_order(buyer: Member, created_at: datetime) -> Order:
    order = make_order(buyer, lines=[(10_000, 2)], discount_fen=500, shipping_fen=800)
    with transaction(db.session):
        db.session.execute(update(Order).where(Order.merchant_id == order.merchant_id,
                                               Order.id == order.id)
                           .values(address=ADDRESS, created_at=created_at))
    pay_order(order)
    return order


def settle_everything() -> None:
    with transaction(db.session):
        for commission in db.session.scalars(select(Commission)):
            commission.settle_at = utcnow() - timedelta(seconds=1)
        commissions.settle_due(now=utcnow())


def withdraw(member: Member, amount_fen: int, *, paid_at: datetime | None,
             real_name: str | None = None) -> Withdrawal:
    withdrawal = withdrawals.request_withdrawal(
        merchant_id=member.merchant_id, user_id=member.user_id, amount_fen=amount_fen,
        real_name=real_name, idempotency_key=None, box=secret_box(), now=utcnow())
    if paid_at is None:
        withdrawals.reject(merchant_id=member.merchant_id, withdrawal_id=withdrawal.id,
                           staff_id=1, reason="信息不全", now=utcnow())
    else:
        withdrawals.approve(merchant_id=member.merchant_id, withdrawal_id=withdrawal.id,
                            staff_id=1, now=utcnow())
        withdrawals.mark_paid_offline(merchant_id=member.merchant_id, withdrawal_id=withdrawal.id,
                                      staff_id=1, reference=f"BANK-{withdrawal.id}", now=paid_at)
    return withdrawal


@pytest.fixture
def shop(app_context):
    """alice (tier 2) ← bob (tier 1, a formula for a nickname) ← carol (buys three orders, the
    last at midnight starting 1 April in Shanghai); dave applied and waits. bob is paid 1,000
    fen in the last second of Q1 and 2,000 in the first of Q2; alice 300 in Q1 (1% fee)."""
    merchant = make_merchant(name="鲜果小铺", rules={"withdraw_fee_bps": 100})
    # Ids restart with every test; files of an earlier test's exports would share their names.
    shutil.rmtree(exports.folder_of(_root(), merchant.id), ignore_errors=True)
    alice = make_member(merchant, user=make_user(nickname="阿丽"))
    bob = make_member(merchant, upline=alice, user=make_user(nickname=FORMULA))
    carol = make_member(merchant, upline=bob, status="none", user=make_user(nickname="小卡"))
    dave = make_member(merchant, status="pending", user=make_user(nickname="大卫"))
    give_identity(alice, "王小明", "13912345678")
    give_identity(dave, "赵六", "13711112222")
    for created_at in (LAST_OF_Q1 - timedelta(days=1), LAST_OF_Q1, FIRST_OF_Q2):
        paid_order(carol, created_at)
    settle_everything()
    withdraw(bob, 1_000, paid_at=LAST_OF_Q1, real_name="李四")
    withdraw(bob, 2_000, paid_at=FIRST_OF_Q2)
    withdraw(bob, 500, paid_at=None)
    withdraw(alice, 300, paid_at=LAST_OF_Q1 - timedelta(days=30))
    other = make_merchant(name="别家店")
    other_buyer = make_member(other, upline=make_member(other), status="none")
    paid_order(other_buyer, LAST_OF_Q1)
    return {"merchant": merchant, "alice": alice, "bob": bob, "dave": dave}


# -- running and reading back ------------------------------------------------------------------

def export(shop, kind: str, fmt: str, progress_every: int = 2, **params) -> Export:
    queued = exports.create_export(merchant_id=shop["merchant"].id, staff_id=None, kind=kind,
                                   fmt=fmt, now=utcnow(), **params)
    exports.run_queued(progress_every=progress_every)
    db.session.expire_all()
    return db.session.get(Export, (queued.merchant_id, queued.id))


def read_back(done: Export) -> list[list[str]]:
    path, _, _ = exports.finished_file(merchant_id=done.merchant_id, export_id=done.id,
                                       root=_root())
    if done.format == "csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM Excel looks for
        with path.open(encoding="utf-8-sig", newline="") as file:
            return list(csv.reader(file))
    book = openpyxl.load_workbook(path, read_only=True)
    return [["" if v is None else str(v) for v in row]
            for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]


def _root():
    from app.clients import settings

    return settings().instance_dir


def shown(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def as_text(cells, fmt: str) -> list[str]:
    texts = ["" if cell is None else str(cell) for cell in cells]
    return ["'" + t if fmt == "csv" and t.startswith("=") else t for t in texts]


# -- what the database says each export must contain --------------------------------------------

def expected(kind: str, merchant_id: int, **params) -> list[list]:
    return EXPECTED[kind](merchant_id, **params)


def _orders(merchant_id: int, since: datetime | None = None) -> list[list]:
    query = select(Order).where(Order.merchant_id == merchant_id).order_by(Order.id)
    return [[o.id, o.out_trade_no, o.status, o.buyer_member_id, "张**", "138****1234", "广东省",
             "深圳市", o.goods_fen, o.discount_fen, o.shipping_fen, o.paid_fen, o.refunded_fen,
             o.carrier, o.tracking_no, shown(o.created_at), shown(o.paid_at),
             shown(o.shipped_at), shown(o.received_at)]
            for o in db.session.scalars(query) if since is None or o.created_at >= since]


def _commissions(merchant_id: int) -> list[list]:
    rows = []
    for c in db.session.scalars(select(Commission).where(Commission.merchant_id == merchant_id)
                                .order_by(Commission.id)):
        order = db.session.get(Order, (merchant_id, c.order_id))
        member = db.session.get(Member, (merchant_id, c.member_id))
        rows.append([c.id, c.order_id, order.out_trade_no, c.line_no, c.tier, c.member_id,
                     member.real_name_masked, c.base_fen, c.rate_bps, c.fixed_fen_per_unit,
                     c.amount_fen, c.reversed_fen, c.status, c.period, shown(c.created_at),
                     shown(c.settled_at)])
    return rows


def _distributors(merchant_id: int) -> list[list]:
    rows = []
    for m in db.session.scalars(select(Member).where(Member.merchant_id == merchant_id,
                                                     Member.distributor_status != "none")
                                .order_by(Member.id)):
        user = db.session.get(User, m.user_id)
        rows.append([m.id, user.nickname, m.real_name_masked, m.phone_masked,
                     m.distributor_status, m.upline_id, "", m.direct_members, m.team_size,
                     m.team_sales_fen, m.personal_sales_fen, shown(m.applied_at),
                     shown(m.activated_at)])
    return rows


def _withdrawals(merchant_id: int) -> list[list]:
    rows = []
    for w in db.session.scalars(select(Withdrawal).where(Withdrawal.merchant_id == merchant_id)
                                .order_by(Withdrawal.id)):
        member = db.session.get(Member, (merchant_id, w.member_id))
        rows.append([w.id, w.member_id, member.real_name_masked, w.amount_fen, w.fee_fen,
                     w.status, "是" if w.auto_approved else "否", w.review_reason,
                     w.fail_reason, w.offline_reference, w.transfer_bill_no,
                     shown(w.requested_at), shown(w.reviewed_at), shown(w.finished_at)])
    return rows


def _income(merchant_id: int, quarter: str = "2026Q1") -> list[list]:
    first = {"2026Q1": date(2026, 1, 1), "2026Q2": date(2026, 4, 1)}[quarter]
    start = datetime(first.year, first.month, 1, tzinfo=SHANGHAI)
    end = datetime(first.year, first.month + 3, 1, tzinfo=SHANGHAI)
    totals: dict[int, list[int]] = {}
    for w in db.session.scalars(select(Withdrawal).where(Withdrawal.merchant_id == merchant_id,
                                                         Withdrawal.status == "paid_out")):
        if start <= w.finished_at < end:
            count, received, fee = totals.get(w.member_id, [0, 0, 0])
            totals[w.member_id] = [count + 1, received + w.amount_fen, fee + w.fee_fen]
    names = {"王小明", "李四"}
    rows = []
    for member_id, (count, received, fee) in sorted(totals.items()):
        member = db.session.get(Member, (merchant_id, member_id))
        name = secret_box().decrypt(member.real_name_encrypted)
        assert name in names
        rows.append([member_id, name, "", member.phone_masked, quarter, count, received, fee,
                     received + fee])
    return rows


EXPECTED = {"orders": _orders, "commissions": _commissions, "distributors": _distributors,
            "withdrawals": _withdrawals, "income": _income}
HEADERS = {
    "orders": ["订单ID", "订单号", "状态", "买家会员ID", "收货人", "收货电话", "省份", "城市",
               "商品金额(分)", "优惠(分)", "运费(分)", "实付(分)", "已退款(分)", "物流公司",
               "运单号", "下单时间", "支付时间", "发货时间", "收货时间"],
    "commissions": ["佣金ID", "订单ID", "订单号", "订单行", "层级", "分销员会员ID",
                    "分销员姓名", "计佣基数(分)", "比例(bps)", "每件固定(分)", "佣金(分)",
                    "已冲回(分)", "状态", "期间", "产生时间", "结算时间"],
    "distributors": ["会员ID", "昵称", "姓名", "手机", "状态", "上级ID", "等级", "直属成员",
                     "团队人数", "团队销售(分)", "个人销售(分)", "申请时间", "成为分销员时间"],
    "withdrawals": ["提现ID", "会员ID", "姓名", "到账金额(分)", "手续费(分)", "状态",
                    "自动审核", "审核意见", "失败原因", "线下付款凭证", "微信转账单号",
                    "申请时间", "审核时间", "完成时间"],
    "income": ["会员ID", "姓名", "身份证号(脱敏)", "手机", "季度", "提现笔数", "到账金额(分)",
               "手续费(分)", "收入(分)"],
}


# -- the tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_export_reads_back_with_its_header_and_exactly_the_merchants_rows(shop, kind, fmt):
    params = {"quarter": "2026Q1"} if kind == "income" else {}
    done = export(shop, kind, fmt, **params)
    assert (done.status, done.error) == ("done", "")
    rows = expected(kind, shop["merchant"].id)
    assert rows, "the shop has rows of every kind"
    assert read_back(done) == [HEADERS[kind], *[as_text(row, fmt) for row in rows]]
    assert done.rows_written == done.rows_total == len(rows)
    assert exports.percent(done) == 100


def test_phones_and_names_are_masked_everywhere_but_the_income_reports_real_name(shop):
    texts = {kind: "\n".join(",".join(row) for row in read_back(export(
        shop, kind, "csv", **({"quarter": "2026Q1"} if kind == "income" else {}))))
        for kind in KINDS}
    for kind, text in texts.items():
        assert "13912345678" not in text and "13800001234" not in text, kind
        assert "张三丰" not in text, kind
    assert "王**" in texts["distributors"] and "139****5678" in texts["distributors"]
    assert "王小明" in texts["income"] and "李四" in texts["income"]
    assert all("王小明" not in texts[kind] for kind in KINDS if kind != "income")


def test_a_date_range_is_the_merchants_days_from_midnight_in_shanghai(shop):
    done = export(shop, "orders", "xlsx", since_on=date(2026, 4, 1), until_on=date(2026, 4, 30))
    rows = read_back(done)[1:]
    assert [row[15] for row in rows] == ["2026-04-01 00:00:00"]
    assert rows == [as_text(row, "xlsx") for row in _orders(shop["merchant"].id, FIRST_OF_Q2)]
    march = read_back(export(shop, "orders", "csv", until_on=date(2026, 3, 31)))[1:]
    assert [row[15] for row in march] == ["2026-03-30 23:59:59", "2026-03-31 23:59:59"]


def test_income_is_what_was_paid_out_in_the_quarter_plus_its_fee(shop):
    q1 = read_back(export(shop, "income", "csv", quarter="2026Q1"))[1:]
    q2 = read_back(export(shop, "income", "csv", quarter="2026Q2"))[1:]
    alice, bob = str(shop["alice"].id), str(shop["bob"].id)
    # alice: 300 fen + 1% fee (3); bob's 1,000 at 23:59:59 on 31 March; the rejected 500 counts
    # nowhere; bob's 2,000 paid at midnight belongs to Q2.
    assert q1 == [[alice, "王小明", "", "139****5678", "2026Q1", "1", "300", "3", "303"],
                  [bob, "李四", "", "", "2026Q1", "1", "1000", "10", "1010"]]
    assert q2 == [[bob, "李四", "", "", "2026Q2", "1", "2000", "20", "2020"]]


def test_formula_like_text_stays_text_in_both_formats(shop):
    bob_row = str(shop["bob"].id)
    in_csv = {row[0]: row for row in read_back(export(shop, "distributors", "csv"))}
    assert in_csv[bob_row][1] == "'" + FORMULA
    done = export(shop, "distributors", "xlsx")
    path, _, _ = exports.finished_file(merchant_id=done.merchant_id, export_id=done.id,
                                       root=_root())
    sheet = openpyxl.load_workbook(path).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert cells[shop["bob"].id].value == FORMULA and cells[shop["bob"].id].data_type == "s"


def test_an_unreadable_real_name_fails_the_export_after_committing_its_progress(shop):
    with transaction(db.session):
        bob = db.session.get(Member, (shop["merchant"].id, shop["bob"].id))
        bob.real_name_encrypted = SecretBox("another deployment's key " * 2).encrypt("李四")
    failed = export(shop, "income", "xlsx", quarter="2026Q1", progress_every=1)
    assert failed.status == "failed"
    assert failed.error == (f"The real name of member {shop['bob'].id} cannot be decrypted "
                            "with this deployment's key.")
    # alice's row was written and its progress committed apart from the read that failed.
    assert (failed.rows_written, failed.rows_total) == (1, 2)
    assert exports.percent(failed) == 50
    folder = exports.folder_of(_root(), shop["merchant"].id)
    assert [path.name for path in folder.glob(f"{failed.id}.*")] == []  # nor a partial file


def test_a_runner_skips_an_export_that_another_runner_holds(shop):
    merchant_id = shop["merchant"].id
    held, free = (exports.create_export(merchant_id=merchant_id, staff_id=None, kind="orders",
                                        fmt="csv", now=utcnow()) for _ in range(2))
    with Session(db.engine) as other_runner, other_runner.begin():
        other_runner.execute(select(Export).where(Export.merchant_id == merchant_id,
                                                  Export.id == held.id).with_for_update())
        assert exports.run_queued(limit=5) == {"exported": 1, "failed": 0}
    statuses = dict(db.session.execute(select(Export.id, Export.status)).all())
    assert statuses == {held.id: "queued", free.id: "done"}
    assert exports.run_queued(limit=5) == {"exported": 1, "failed": 0}
    assert exports.run_queued(limit=5) == {"exported": 0, "failed": 0}


def test_an_export_whose_runner_died_is_failed_after_six_hours(shop):
    stuck = exports.create_export(merchant_id=shop["merchant"].id, staff_id=None, kind="orders",
                                  fmt="csv", now=utcnow())
    with transaction(db.session):
        db.session.execute(update(Export).values(status="running",
                                                 started_at=utcnow() - timedelta(hours=7)))
    assert exports.run_queued() == {"exported": 0, "failed": 1}
    db.session.expire_all()
    row = db.session.get(Export, (stuck.merchant_id, stuck.id))
    assert (row.status, row.error) == ("failed", "The export stopped before it finished; "
                                                 "export again.")


def test_a_sheet_that_is_full_continues_on_the_next_with_the_header(tmp_path):
    out = XlsxFile(tmp_path / "big.xlsx", headers=("a", "b"), title="orders", rows_per_sheet=3)
    for n in range(5):
        out.write((n, f"row {n}"))
    out.close()
    book = openpyxl.load_workbook(tmp_path / "big.xlsx", read_only=True)
    assert book.sheetnames == ["orders", "orders 2", "orders 3"]
    assert [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets] == [
        [("a", "b"), (0, "row 0"), (1, "row 1")], [("a", "b"), (2, "row 2"), (3, "row 3")],
        [("a", "b"), (4, "row 4")]]


def test_exports_run_on_sqlite_the_embedded_demo_database(app_settings, tmp_path):
    demo = create_app(dataclasses.replace(
        app_settings, database_url=f"sqlite:///{tmp_path}/demo.db", instance_dir=tmp_path))
    with demo.app_context():
        upgrade()
        merchant = make_merchant()
        buyer = make_member(merchant, upline=make_member(merchant), status="none")
        paid_order(buyer, FIRST_OF_Q2)
        paid_order(buyer, LAST_OF_Q1)
        shop = {"merchant": merchant}
        for kind, fmt in (("orders", "xlsx"), ("commissions", "csv")):
            done = export(shop, kind, fmt)
            rows = expected(kind, merchant.id)
            assert read_back(done) == [HEADERS[kind], *[as_text(row, fmt) for row in rows]]
        assert [row[15] for row in read_back(export(shop, "orders", "csv",
                                                    since_on=date(2026, 4, 1)))[1:]] == [
            "2026-04-01 00:00:00"]
