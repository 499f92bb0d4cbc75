"""tip_updates.status wide enough for every progress word

Revision ID: a81e00000007
Revises: a81e00000006
Create Date: 2026-12-07 00:00:00

"referred_procuratorate" (22 characters) and "referred_discipline" (19) did not fit String(16):
SQLite ignores the length, PostgreSQL refused the hand-over of a referral to a procuratorate or a
discipline commission with an error (issue 9, found by the route-matrix fuzzing).
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000007'
down_revision = 'a81e00000006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tip_updates') as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=16),
                              type_=sa.String(length=32), existing_nullable=False)


def downgrade():
    # The column stays wide: narrowing it would cut rows that hold the longer words, and the
    # code before this revision writes them too (it only failed on PostgreSQL).
    pass
