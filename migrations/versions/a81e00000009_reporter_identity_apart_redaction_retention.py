"""The reporter's identity sealed apart; identity requests; redaction; retention

Revision ID: a81e00000009
Revises: a81e00000008
Create Date: 2026-12-15 00:00:00

Issue 10. units.identity_key (the custodian key of a handling unit), unit_key_grants.purpose
(content | identity), tip_identities, identity_requests, referral_tip_texts, redactions,
categories.retention_days, tips.legal_hold and tips.archived_at.

Existing real-name tips still carry the identity inside their content until a key holder runs
`flask --app app identities separate` (it needs a unit's recovery key, so it cannot run here).
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000009'
down_revision = 'a81e00000008'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table('units') as batch_op:
        batch_op.add_column(sa.Column('identity_key', sa.Text(), nullable=True))
    with op.batch_alter_table('unit_key_grants') as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=12), nullable=False,
                                      server_default='content'))
    with op.batch_alter_table('categories') as batch_op:
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('tips') as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('archived_at', TS, nullable=True))
    op.create_table(
        'tip_identities',
        sa.Column('tip_id', sa.Integer(), nullable=False),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['tip_id'], ['tips.id'],
                                name=op.f('fk_tip_identities_tip_id_tips')),
        sa.PrimaryKeyConstraint('tip_id', name=op.f('pk_tip_identities')),
    )
    op.create_table(
        'identity_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tip_id', sa.Integer(), nullable=False),
        sa.Column('requester_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', TS, nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('expires_at', TS, nullable=True),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.Column('revoked_at', TS, nullable=True),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
        sa.Column('sealed_copy', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['tip_id'], ['tips.id'],
                                name=op.f('fk_identity_requests_tip_id_tips')),
        sa.ForeignKeyConstraint(['requester_id'], ['users.id'],
                                name=op.f('fk_identity_requests_requester_id_users')),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_identity_requests_referral_id_referrals')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'],
                                name=op.f('fk_identity_requests_decided_by_id_users')),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'],
                                name=op.f('fk_identity_requests_revoked_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_requests')),
    )
    op.create_index('ix_identity_requests_state', 'identity_requests', ['state', 'created_at'])
    op.create_index(op.f('ix_identity_requests_tip_id'), 'identity_requests', ['tip_id'])
    op.create_index(op.f('ix_identity_requests_requester_id'), 'identity_requests',
                    ['requester_id'])
    op.create_index(op.f('ix_identity_requests_referral_id'), 'identity_requests',
                    ['referral_id'])
    op.create_table(
        'referral_tip_texts',
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('tip_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_referral_tip_texts_referral_id_referrals')),
        sa.ForeignKeyConstraint(['tip_id'], ['tips.id'],
                                name=op.f('fk_referral_tip_texts_tip_id_tips')),
        sa.PrimaryKeyConstraint('referral_id', 'tip_id', name=op.f('pk_referral_tip_texts')),
    )
    op.create_table(
        'redactions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('tip_id', sa.Integer(), nullable=False),
        sa.Column('attachment_id', sa.Integer(), nullable=True),
        sa.Column('spec', sa.LargeBinary(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_redactions_referral_id_referrals')),
        sa.ForeignKeyConstraint(['tip_id'], ['tips.id'], name=op.f('fk_redactions_tip_id_tips')),
        sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'],
                                name=op.f('fk_redactions_attachment_id_attachments')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_redactions_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_redactions')),
    )
    op.create_index(op.f('ix_redactions_referral_id'), 'redactions', ['referral_id'])


def downgrade():
    op.drop_index(op.f('ix_redactions_referral_id'), table_name='redactions')
    op.drop_table('redactions')
    op.drop_table('referral_tip_texts')
    op.drop_index(op.f('ix_identity_requests_referral_id'), table_name='identity_requests')
    op.drop_index(op.f('ix_identity_requests_requester_id'), table_name='identity_requests')
    op.drop_index(op.f('ix_identity_requests_tip_id'), table_name='identity_requests')
    op.drop_index('ix_identity_requests_state', table_name='identity_requests')
    op.drop_table('identity_requests')
    op.drop_table('tip_identities')
    with op.batch_alter_table('tips') as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('legal_hold')
    with op.batch_alter_table('categories') as batch_op:
        batch_op.drop_column('retention_days')
    # Identity-key grants would read as content grants under the older code: they go.
    op.execute(sa.text("DELETE FROM unit_key_grants WHERE purpose <> 'content'"))
    with op.batch_alter_table('unit_key_grants') as batch_op:
        batch_op.drop_column('purpose')
    with op.batch_alter_table('units') as batch_op:
        batch_op.drop_column('identity_key')
