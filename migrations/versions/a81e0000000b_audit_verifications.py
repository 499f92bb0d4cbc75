"""Runs of the auditor's verification of the whole log

Revision ID: a81e0000000b
Revises: a81e0000000A
Create Date: 2026-12-22 00:00:00

Issue 13. audit_verifications (models/audit.py AuditVerification): the auditor's "verify" button
starts a run in the background instead of verifying inside the request; each run's row holds
who asked, its heartbeat and progress, and its outcome. `running` is unique: one unfinished run
at a time, whichever server asks. Starts empty.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e0000000b'
down_revision = 'a81e0000000A'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        'audit_verifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('auditor_id', sa.Integer(), nullable=True),
        sa.Column('started_at', TS, nullable=False),
        sa.Column('heartbeat_at', TS, nullable=False),
        sa.Column('finished_at', TS, nullable=True),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=True),
        sa.Column('ok', sa.Boolean(), nullable=True),
        sa.Column('problem', sa.String(length=32), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('first_bad_seq', sa.Integer(), nullable=True),
        sa.Column('checkpoint_size', sa.Integer(), nullable=True),
        sa.Column('running', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['auditor_id'], ['users.id'],
                                name=op.f('fk_audit_verifications_auditor_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_verifications')),
        sa.UniqueConstraint('running', name=op.f('uq_audit_verifications_running')),
    )


def downgrade():
    op.drop_table('audit_verifications')
