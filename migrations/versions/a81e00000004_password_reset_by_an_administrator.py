"""password reset by an administrator: who asked, where it stands, the notice to show

Revision ID: a81e00000004
Revises: a81e00000003
Create Date: 2026-12-01 00:00:00

An administrator's reset no longer chooses a password (issue 9): the account waits for its
holder, who proves it with the second factor (or a second administrator confirms when that is
lost too), and is told at the next sign-in who reset it. Existing accounts have no reset pending
and no notice to show.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000004'
down_revision = 'a81e00000003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reset_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reset_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reset_state', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('reset_factor_lost', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('reset_failures', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('reset_notice', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_foreign_key(batch_op.f('fk_users_reset_by_id_users'), 'users',
                                    ['reset_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_reset_by_id_users'), type_='foreignkey')
        batch_op.drop_column('reset_notice')
        batch_op.drop_column('reset_failures')
        batch_op.drop_column('reset_factor_lost')
        batch_op.drop_column('reset_state')
        batch_op.drop_column('reset_at')
        batch_op.drop_column('reset_by_id')
