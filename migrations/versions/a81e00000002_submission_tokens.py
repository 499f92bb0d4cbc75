"""one-time submission tokens: a keyed hash of the report form's and the reply form's token

Revision ID: a81e00000002
Revises: a81e00000001
Create Date: 2026-11-28 23:30:00

A refresh of the receipt page or of a sent message repeats the POST; the hash of the form's
one-time token lets the portal recognise the repeat and file nothing (portal/intake/receipts.py).
Existing rows have no token: NULL, which a unique constraint allows many times.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000002'
down_revision = 'a81e00000001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_hash', sa.LargeBinary(length=32),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_tips_submission_hash'),
                                          ['submission_hash'])
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_hash', sa.LargeBinary(length=32),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_messages_submission_hash'),
                                          ['submission_hash'])


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_messages_submission_hash'), type_='unique')
        batch_op.drop_column('submission_hash')
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_tips_submission_hash'), type_='unique')
        batch_op.drop_column('submission_hash')
