"""tamper-evident audit log: positions, leaf and chain hashes, head, checkpoints, triggers;
the referral letter's inputs

Revision ID: 5e7a11c0ffee
Revises: d3172c5facbb
Create Date: 2026-11-27 19:05:00

Existing entries are given their positions and hashes in id order (docs/audit-log.md) before
the columns become required and the append-only triggers are installed.
"""
import json

import sqlalchemy as sa
from alembic import op

import models.base
from auditlog.logformat import ZERO, canonical, chain_hash, format_time, leaf_hash

revision = '5e7a11c0ffee'
down_revision = 'd3172c5facbb'
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
)
POSTGRESQL_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
)


def upgrade():
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('chain_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_checkpoints',
    sa.Column('size', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_audit_checkpoints'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column('chain_hash', sa.LargeBinary(length=32), nullable=True))
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('letter_data', sa.LargeBinary(), nullable=True))
    # Evidence of the rectification of a 三书一函 suggestion is an encrypted file too.
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suggestion_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_attachments_suggestion_id'), ['suggestion_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_attachments_suggestion_id_suggestions'),
                                    'suggestions', ['suggestion_id'], ['id'])
    # The queue of 州本级 (all units) reads in sort order only through these (bench/officer_queue.py).
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.create_index('ix_tips_received', ['received_at', 'id'], unique=False)
        batch_op.create_index('ix_tips_due', ['due_at', 'id'], unique=False)
        batch_op.create_index('ix_tips_priority', ['priority', 'received_at', 'id'], unique=False)

    # Backfill: the entries already logged become the first leaves, in the order written.
    events = sa.table(
        'audit_events', sa.column('id', sa.Integer()),
        sa.column('at', models.base.UTCDateTime(timezone=True)),
        sa.column('actor_type', sa.String()), sa.column('actor_id', sa.Integer()),
        sa.column('role', sa.String()), sa.column('action', sa.String()),
        sa.column('object_type', sa.String()), sa.column('object_id', sa.Integer()),
        sa.column('unit_code', sa.String()), sa.column('details', sa.Text()),
        sa.column('seq', sa.Integer()), sa.column('leaf_hash', sa.LargeBinary()),
        sa.column('chain_hash', sa.LargeBinary()))
    connection = op.get_bind()
    prev, size = ZERO, 0
    for row in connection.execute(sa.select(events).order_by(events.c.id)).all():
        entry = {"v": 1, "seq": size, "at": format_time(row.at), "actor_type": row.actor_type,
                 "actor_id": row.actor_id, "role": row.role, "action": row.action,
                 "object_type": row.object_type, "object_id": row.object_id,
                 "unit": row.unit_code, "details": json.loads(row.details or "{}"),
                 "prev": prev.hex()}
        leaf = leaf_hash(canonical(entry))
        prev = chain_hash(prev, leaf)
        connection.execute(events.update().where(events.c.id == row.id)
                           .values(seq=size, leaf_hash=leaf, chain_hash=prev))
        size += 1
    head = sa.table('audit_head', sa.column('id', sa.Integer()), sa.column('size', sa.Integer()),
                    sa.column('chain_hash', sa.LargeBinary()))
    connection.execute(head.insert().values(id=1, size=size, chain_hash=prev))

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('leaf_hash', existing_type=sa.LargeBinary(length=32),
                              nullable=False)
        batch_op.alter_column('chain_hash', existing_type=sa.LargeBinary(length=32),
                              nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_seq'), ['seq'])
    statements = SQLITE_TRIGGERS if connection.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_attachments_suggestion_id_suggestions'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_attachments_suggestion_id'))
        batch_op.drop_column('suggestion_id')
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.drop_index('ix_tips_priority')
        batch_op.drop_index('ix_tips_due')
        batch_op.drop_index('ix_tips_received')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('letter_data')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_seq'), type_='unique')
        batch_op.drop_column('chain_hash')
        batch_op.drop_column('leaf_hash')
        batch_op.drop_column('seq')
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_head')
