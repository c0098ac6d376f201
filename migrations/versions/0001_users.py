"""users: platform-wide WeChat identities

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 03:44:16.726342

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('session_key_encrypted', sa.String(length=255), nullable=True),
    sa.Column('nickname', sa.String(length=64), nullable=False),
    sa.Column('avatar_url', sa.String(length=512), nullable=False),
    sa.Column('gender', sa.SmallInteger(), nullable=False),
    sa.Column('birth_year', sa.SmallInteger(), nullable=True),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('phone_encrypted', sa.String(length=255), nullable=True),
    sa.Column('phone_masked', sa.String(length=32), nullable=True),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('appid', 'openid', name=op.f('uq_users_appid_openid'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ix_users_phone_hash', ['phone_hash'], unique=False)
        batch_op.create_index('ix_users_unionid', ['unionid'], unique=False)



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_unionid')
        batch_op.drop_index('ix_users_phone_hash')

    op.drop_table('users')
