"""referral_tip_files: the tips' own evidence files chosen for a referral's package

Revision ID: a81e00000003
Revises: a81e00000002
Create Date: 2026-11-29 00:00:00

A referral's package holds the case's documents, the files uploaded at the referral's steps, and
the files of the case's tips the officers choose (issue 8). Existing referrals chose none.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000003'
down_revision = 'a81e00000002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'referral_tip_files',
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('attachment_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'],
                                name=op.f('fk_referral_tip_files_attachment_id_attachments')),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_referral_tip_files_referral_id_referrals')),
        sa.PrimaryKeyConstraint('referral_id', 'attachment_id',
                                name=op.f('pk_referral_tip_files')),
    )


def downgrade():
    op.drop_table('referral_tip_files')
