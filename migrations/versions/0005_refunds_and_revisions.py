"""refund idempotency and ranking revisions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 05:49:21.392845

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('processed_refunds',
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_key', sa.String(length=96), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_processed_refunds_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'refund_key', name=op.f('pk_processed_refunds'))
    )
    with op.batch_alter_table('period_totals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.BigInteger(), nullable=False,
                                      server_default='1'))



def downgrade():
    with op.batch_alter_table('period_totals', schema=None) as batch_op:
        batch_op.drop_column('revision')

    op.drop_table('processed_refunds')
