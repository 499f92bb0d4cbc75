"""the language a tip was filed in

Revision ID: a81e00000001
Revises: 5e7a11c0ffee
Create Date: 2026-11-28 23:40:00

Tips filed before this revision keep language NULL (unknown): the language was not recorded and
cannot be read from the metadata. No index: the queue walks its order-first indexes and filters
(each language is a large share of the tips).
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000001'
down_revision = '5e7a11c0ffee'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=5), nullable=True))


def downgrade():
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.drop_column('language')
