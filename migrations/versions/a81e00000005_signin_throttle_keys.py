"""signin_throttle_keys: the sign-in throttle counts under keys other than an account name

Revision ID: a81e00000005
Revises: a81e00000004
Create Date: 2026-12-06 00:00:00

Wrong second-factor codes are counted per account and a known device's failures per device
(issue 9), in the same table as wrong passwords per account name, each under a hash of its own
key: the column `name_hash` becomes `key_hash`. Existing rows keep their values (a name's hash is
computed as before), so a block in force stays in force.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000005'
down_revision = 'a81e00000004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('login_throttles') as batch:
        batch.alter_column('name_hash', new_column_name='key_hash',
                           existing_type=sa.LargeBinary(length=32), existing_nullable=False)


def downgrade():
    with op.batch_alter_table('login_throttles') as batch:
        batch.alter_column('key_hash', new_column_name='name_hash',
                           existing_type=sa.LargeBinary(length=32), existing_nullable=False)
