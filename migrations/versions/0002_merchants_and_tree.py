"""merchants, staff, members and the tree, share links, visits, products

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:55:09.735151

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


# Logs that record what happened are append-only: on PostgreSQL the database itself refuses
# to change or delete their rows, whatever the application does.
APPEND_ONLY_TABLES = ("binding_logs", "status_logs", "visits")
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION fenxiao_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows are never updated or deleted', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def _append_only_triggers():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(APPEND_ONLY_FUNCTION)
    for table in APPEND_ONLY_TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION fenxiao_refuse_change()")


def upgrade():
    op.create_table('id_counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('next_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_id_counters'))
    )
    op.create_table('platform_admins',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_admins')),
    sa.UniqueConstraint('username', name=op.f('uq_platform_admins_username'))
    )
    op.create_table('merchants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('logo_url', sa.String(length=512), nullable=False),
    sa.Column('contact_name', sa.String(length=64), nullable=False),
    sa.Column('contact_phone_masked', sa.String(length=32), nullable=False),
    sa.Column('contact_phone_encrypted', sa.String(length=255), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('platform_agreement_version', sa.String(length=32), nullable=False),
    sa.Column('platform_agreement_accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.Text(), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_admin_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('program_rules', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reviewed_by_admin_id'], ['platform_admins.id'], name=op.f('fk_merchants_reviewed_by_admin_id_platform_admins')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants'))
    )
    op.create_table('members',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('upline_id', sa.BigInteger(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pending_upline_id', sa.BigInteger(), nullable=True),
    sa.Column('pending_share_link_id', sa.BigInteger(), nullable=True),
    sa.Column('distributor_status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=False),
    sa.Column('real_name_encrypted', sa.String(length=255), nullable=True),
    sa.Column('real_name_masked', sa.String(length=64), nullable=False),
    sa.Column('phone_encrypted', sa.String(length=255), nullable=True),
    sa.Column('phone_masked', sa.String(length=32), nullable=False),
    sa.Column('agreement_version', sa.String(length=32), nullable=False),
    sa.Column('agreement_accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('direct_members', sa.Integer(), nullable=False),
    sa.Column('team_size', sa.Integer(), nullable=False),
    sa.Column('team_sales_fen', sa.BigInteger(), nullable=False),
    sa.Column('personal_sales_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'upline_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_members_merchant_id_upline_id_members')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_members_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_members_user_id_users')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_members')),
    sa.UniqueConstraint('merchant_id', 'user_id', name=op.f('uq_members_merchant_id_user_id'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index('ix_members_merchant_id_distributor_status', ['merchant_id', 'distributor_status'], unique=False)
        batch_op.create_index('ix_members_merchant_id_upline_id', ['merchant_id', 'upline_id'], unique=False)

    op.create_table('products',
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('image_urls', sa.JSON(), nullable=False),
    sa.Column('price_fen', sa.BigInteger(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('is_distributable', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_products_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_products'))
    )
    op.create_table('staff_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_staff_accounts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_accounts')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_accounts_username'))
    )
    with op.batch_alter_table('staff_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_accounts_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('binding_logs',
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('distributor_id', sa.BigInteger(), nullable=True),
    sa.Column('previous_upline_id', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('share_link_id', sa.BigInteger(), nullable=True),
    sa.Column('staff_id', sa.BigInteger(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'member_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_binding_logs_merchant_id_member_id_members')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_binding_logs_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_binding_logs'))
    )
    with op.batch_alter_table('binding_logs', schema=None) as batch_op:
        batch_op.create_index('ix_binding_logs_merchant_id_member_id', ['merchant_id', 'member_id'], unique=False)

    op.create_table('share_links',
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('distributor_id', sa.BigInteger(), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=True),
    sa.Column('page', sa.String(length=128), nullable=False),
    sa.Column('url_link', sa.String(length=255), nullable=False),
    sa.Column('url_link_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'distributor_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_share_links_merchant_id_distributor_id_members')),
    sa.ForeignKeyConstraint(['merchant_id', 'product_id'], ['products.merchant_id', 'products.id'], name=op.f('fk_share_links_merchant_id_product_id_products')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_share_links_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_share_links')),
    sa.UniqueConstraint('merchant_id', 'token', name=op.f('uq_share_links_merchant_id_token'))
    )
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.create_index('ix_share_links_merchant_id_distributor_id', ['merchant_id', 'distributor_id'], unique=False)

    op.create_table('status_logs',
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('staff_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'member_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_status_logs_merchant_id_member_id_members')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_status_logs_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_status_logs'))
    )
    with op.batch_alter_table('status_logs', schema=None) as batch_op:
        batch_op.create_index('ix_status_logs_merchant_id_member_id', ['merchant_id', 'member_id'], unique=False)

    op.create_table('team_deltas',
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sales_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'member_id'], ['members.merchant_id', 'members.id'], name=op.f('fk_team_deltas_merchant_id_member_id_members')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_team_deltas_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_team_deltas'))
    )
    op.create_table('share_link_images',
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('share_link_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'share_link_id'], ['share_links.merchant_id', 'share_links.id'], name=op.f('fk_share_link_images_merchant_id_share_link_id_share_links')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_share_link_images_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'share_link_id', 'kind', name=op.f('pk_share_link_images'))
    )
    op.create_table('visits',
    sa.Column('share_link_id', sa.BigInteger(), nullable=False),
    sa.Column('distributor_id', sa.BigInteger(), nullable=False),
    sa.Column('visitor_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('scene_value', sa.String(length=64), nullable=False),
    sa.Column('ip_hash', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=255), nullable=False),
    sa.Column('binding_reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'share_link_id'], ['share_links.merchant_id', 'share_links.id'], name=op.f('fk_visits_merchant_id_share_link_id_share_links')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_visits_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_visits'))
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_merchant_id_created_at', ['merchant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_visits_merchant_id_share_link_id', ['merchant_id', 'share_link_id'], unique=False)

    _append_only_triggers()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS fenxiao_refuse_change()")
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_merchant_id_share_link_id')
        batch_op.drop_index('ix_visits_merchant_id_created_at')

    op.drop_table('visits')
    op.drop_table('share_link_images')
    op.drop_table('team_deltas')
    with op.batch_alter_table('status_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_status_logs_merchant_id_member_id')

    op.drop_table('status_logs')
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_index('ix_share_links_merchant_id_distributor_id')

    op.drop_table('share_links')
    with op.batch_alter_table('binding_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_binding_logs_merchant_id_member_id')

    op.drop_table('binding_logs')
    with op.batch_alter_table('staff_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_accounts_merchant_id'))

    op.drop_table('staff_accounts')
    op.drop_table('products')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_merchant_id_upline_id')
        batch_op.drop_index('ix_members_merchant_id_distributor_status')

    op.drop_table('members')
    op.drop_table('merchants')
    op.drop_table('platform_admins')
    op.drop_table('id_counters')
