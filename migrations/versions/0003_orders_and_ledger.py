"""orders, commissions, plan versions, the ledger and its outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 04:24:27.787466

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


# Ledger entries and journals are immutable: corrections are new postings. The function that
# refuses changes was created by 0002.
IMMUTABLE_TABLES = ("ledger_entries", "journals")


def upgrade():
    op.create_table('commission_plans',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tiers', sa.Integer(), nullable=False),
    sa.Column('tier_rates_bps', sa.JSON(), nullable=False),
    sa.Column('max_total_bps', sa.Integer(), nullable=False),
    sa.Column('self_purchase', sa.Boolean(), nullable=False),
    sa.Column('level_rates_bps', sa.JSON(), nullable=False),
    sa.Column('staff_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_commission_plans_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_commission_plans')),
    sa.UniqueConstraint('merchant_id', 'version', name=op.f('uq_commission_plans_merchant_id_version'))
    )
    op.create_table('journals',
    sa.Column('idempotency_key', sa.String(length=96), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('memo', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_journals_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_journals')),
    sa.UniqueConstraint('merchant_id', 'idempotency_key', name=op.f('uq_journals_merchant_id_idempotency_key'))
    )
    with op.batch_alter_table('journals', schema=None) as batch_op:
        batch_op.create_index('ix_journals_merchant_id_order_id', ['merchant_id', 'order_id'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('balance_fen', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_ledger_accounts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('merchant_id', 'owner_id', 'kind', name=op.f('uq_ledger_accounts_merchant_id_owner_id_kind'))
    )
    op.create_table('period_totals',
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('commission_fen', sa.BigInteger(), nullable=False),
    sa.Column('sales_fen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_period_totals_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'period', 'member_id', name=op.f('pk_period_totals'))
    )
    op.create_table('wallet_outbox',
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_wallet_outbox_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_wallet_outbox'))
    )
    op.create_table('ledger_entries',
    sa.Column('journal_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'account_id'], ['ledger_accounts.merchant_id', 'ledger_accounts.id'], name=op.f('fk_ledger_entries_merchant_id_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['merchant_id', 'journal_id'], ['journals.merchant_id', 'journals.id'], name=op.f('fk_ledger_entries_merchant_id_journal_id_journals')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_ledger_entries_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_merchant_id_account_id', ['merchant_id', 'account_id'], unique=False)
        batch_op.create_index('ix_ledger_entries_merchant_id_journal_id', ['merchant_id', 'journal_id'], unique=False)

    op.create_table('orders',
    sa.Column('out_trade_no', sa.String(length=32), nullable=False),
    sa.Column('buyer_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('buyer_member_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('goods_fen', sa.BigInteger(), nullable=False),
    sa.Column('discount_fen', sa.BigInteger(), nullable=False),
    sa.Column('shipping_fen', sa.BigInteger(), nullable=False),
    sa.Column('paid_fen', sa.BigInteger(), nullable=False),
    sa.Column('refunded_fen', sa.BigInteger(), nullable=False),
    sa.Column('share_link_id', sa.BigInteger(), nullable=True),
    sa.Column('address', sa.JSON(), nullable=False),
    sa.Column('commission_snapshot', sa.JSON(), nullable=False),
    sa.Column('transaction_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['buyer_user_id'], ['users.id'], name=op.f('fk_orders_buyer_user_id_users')),
    sa.ForeignKeyConstraint(['merchant_id', 'buyer_member_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_orders_merchant_id_buyer_member_id_members')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_orders_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_orders')),
    sa.UniqueConstraint('merchant_id', 'out_trade_no', name=op.f('uq_orders_merchant_id_out_trade_no')),
    sa.UniqueConstraint('merchant_id', 'transaction_id', name=op.f('uq_orders_merchant_id_transaction_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_merchant_id_buyer_member_id', ['merchant_id', 'buyer_member_id'], unique=False)
        batch_op.create_index('ix_orders_merchant_id_status', ['merchant_id', 'status'], unique=False)

    op.create_table('commissions',
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('base_fen', sa.BigInteger(), nullable=False),
    sa.Column('rate_bps', sa.Integer(), nullable=False),
    sa.Column('fixed_fen_per_unit', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('reversed_fen', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('settle_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'member_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_commissions_merchant_id_member_id_members')),
    sa.ForeignKeyConstraint(['merchant_id', 'order_id'], ['orders.merchant_id', 'orders.id'], name=op.f('fk_commissions_merchant_id_order_id_orders')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_commissions_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_commissions')),
    sa.UniqueConstraint('merchant_id', 'order_id', 'line_no', 'tier', name=op.f('uq_commissions_merchant_id_order_id_line_no_tier'))
    )
    with op.batch_alter_table('commissions', schema=None) as batch_op:
        batch_op.create_index('ix_commissions_merchant_id_member_id', ['merchant_id', 'member_id'], unique=False)
        batch_op.create_index('ix_commissions_status_settle_at', ['status', 'settle_at'], unique=False)

    op.create_table('order_lines',
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=True),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('unit_price_fen', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('commission_override', sa.JSON(), nullable=True),
    sa.Column('distributable', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'order_id'], ['orders.merchant_id', 'orders.id'], name=op.f('fk_order_lines_merchant_id_order_id_orders')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_order_lines_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'order_id', 'line_no', name=op.f('pk_order_lines'))
    )

    if op.get_bind().dialect.name == "postgresql":
        for table in IMMUTABLE_TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION fenxiao_refuse_change()")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in IMMUTABLE_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.drop_table('order_lines')
    with op.batch_alter_table('commissions', schema=None) as batch_op:
        batch_op.drop_index('ix_commissions_status_settle_at')
        batch_op.drop_index('ix_commissions_merchant_id_member_id')

    op.drop_table('commissions')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_merchant_id_status')
        batch_op.drop_index('ix_orders_merchant_id_buyer_member_id')

    op.drop_table('orders')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_merchant_id_journal_id')
        batch_op.drop_index('ix_ledger_entries_merchant_id_account_id')

    op.drop_table('ledger_entries')
    op.drop_table('wallet_outbox')
    op.drop_table('period_totals')
    op.drop_table('ledger_accounts')
    with op.batch_alter_table('journals', schema=None) as batch_op:
        batch_op.drop_index('ix_journals_merchant_id_order_id')

    op.drop_table('journals')
    op.drop_table('commission_plans')
