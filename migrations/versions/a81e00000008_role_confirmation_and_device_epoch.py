"""Officer, liaison and administrator roles confirmed by a second person; known devices forgotten

Revision ID: a81e00000008
Revises: a81e00000007
Create Date: 2026-12-08 00:00:00

Issue 9, finding 1: a role given on the administration pages waits for a second person's
confirmation (memberships.added_by_id, added_at, confirmed_at, confirmed_by_id). Every membership
that exists already counts as confirmed (at the migration). users.device_epoch is raised by
"sign out everywhere" so the known-device cookies of the account stop counting.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000008'
down_revision = 'a81e00000007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('memberships') as batch_op:
        batch_op.add_column(sa.Column('added_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('added_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('confirmed_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_memberships_added_by_id_users', 'users',
                                    ['added_by_id'], ['id'])
        batch_op.create_foreign_key('fk_memberships_confirmed_by_id_users', 'users',
                                    ['confirmed_by_id'], ['id'])
    op.execute(sa.text("UPDATE memberships SET confirmed_at = CURRENT_TIMESTAMP"))
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('device_epoch', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade():
    # A role still waiting would give access under the older code: it goes.
    op.execute(sa.text("DELETE FROM memberships WHERE confirmed_at IS NULL"))
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('device_epoch')
    with op.batch_alter_table('memberships') as batch_op:
        batch_op.drop_constraint('fk_memberships_confirmed_by_id_users', type_='foreignkey')
        batch_op.drop_constraint('fk_memberships_added_by_id_users', type_='foreignkey')
        batch_op.drop_column('confirmed_by_id')
        batch_op.drop_column('confirmed_at')
        batch_op.drop_column('added_at')
        batch_op.drop_column('added_by_id')
