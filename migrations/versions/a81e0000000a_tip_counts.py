"""Tips counted per unit, category and status, kept exact by every change

Revision ID: a81e0000000A
Revises: a81e00000009
Create Date: 2026-12-20 00:00:00

Issue 13. tip_counts (models/tip_count.py): the officers' queue shows open tips per category from
it instead of counting the rows each time. Filled here from the tips as they are.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e0000000A'
down_revision = 'a81e00000009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'tip_counts',
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('category_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('unit_id', 'category_id', 'status', name=op.f('pk_tip_counts')),
    )
    op.execute(
        "INSERT INTO tip_counts (unit_id, category_id, status, n) "
        "SELECT unit_id, COALESCE(category_id, 0), status, COUNT(*) FROM tips "
        "GROUP BY unit_id, COALESCE(category_id, 0), status")


def downgrade():
    op.drop_table('tip_counts')
