"""Deadlines met and missed, counted per month, unit and step; referrals carry their unit

Revision ID: a81e0000000c
Revises: a81e0000000b
Create Date: 2026-12-21 00:00:00

Issue 13. tips.decided_on_time and tips.closed_on_time note whether each tip's decision and
closing came by their deadlines; step_outcomes (models/step_outcome.py) counts them, and the
referral steps, per month: the auditor's on-time rates read it instead of every row. Filled here
from the rows as they are, as the auditor's page computed them until now: the decision against
15 days from receipt, the closing against 60 days from acceptance (an extension granted before
this migration is not known here, as it was not on that page).

referrals.unit_id: the case's unit, copied from cases (a case never changes unit), so the
referral lists filter on it instead of on a subquery over every case.
"""
from collections import Counter

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime, month_of
from referral.calendar import CalendarDay, HolidayCalendar
from referral.deadlines import deadline_for

revision = 'a81e0000000c'
down_revision = 'a81e0000000b'
branch_labels = None
depends_on = None

BATCH = 5_000


def upgrade():
    with op.batch_alter_table('referrals') as batch:
        batch.add_column(sa.Column('unit_id', sa.Integer(), nullable=True))
    op.execute("UPDATE referrals SET unit_id = "
               "(SELECT cases.unit_id FROM cases WHERE cases.id = referrals.case_id)")
    with op.batch_alter_table('referrals') as batch:
        batch.alter_column('unit_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(batch.f('fk_referrals_unit_id_units'), 'units', ['unit_id'],
                                 ['id'])
    op.create_index('ix_referrals_state', 'referrals', ['state', 'state_since'])
    op.create_index('ix_referrals_unit', 'referrals', ['unit_id', 'id'])
    op.add_column('tips', sa.Column('decided_on_time', sa.Boolean(), nullable=True))
    op.add_column('tips', sa.Column('closed_on_time', sa.Boolean(), nullable=True))
    op.create_table(
        'step_outcomes',
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('step', sa.String(length=40), nullable=False),
        sa.Column('met', sa.Integer(), nullable=False),
        sa.Column('missed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('month', 'unit_id', 'step', name=op.f('pk_step_outcomes')),
    )
    _fill(op.get_bind())


def _fill(connection):
    calendar = HolidayCalendar(
        [CalendarDay(day, kind, name) for day, kind, name in connection.execute(
            sa.text("SELECT day, kind, name FROM holidays"))],
        [year for (year,) in connection.execute(sa.text("SELECT year FROM calendar_years"))])
    tips = sa.table('tips', sa.column('id', sa.Integer()), sa.column('unit_id', sa.Integer()),
                    sa.column('received_at', UTCDateTime()),
                    sa.column('accepted_at', UTCDateTime()),
                    sa.column('decided_at', UTCDateTime()),
                    sa.column('closed_at', UTCDateTime()),
                    sa.column('decided_on_time', sa.Boolean()),
                    sa.column('closed_on_time', sa.Boolean()))
    counts = Counter()
    statement = (tips.update().where(tips.c.id == sa.bindparam("tip_id"))
                 .values(decided_on_time=sa.bindparam("decided"),
                         closed_on_time=sa.bindparam("closed")))
    last = 0
    while True:  # in batches by id: a million tips need not be held at once
        rows = list(connection.execute(
            sa.select(tips.c.id, tips.c.unit_id, tips.c.received_at, tips.c.accepted_at,
                      tips.c.decided_at, tips.c.closed_at)
            .where(tips.c.decided_at.is_not(None), tips.c.id > last)
            .order_by(tips.c.id).limit(BATCH)))
        if not rows:
            break
        updates = []
        for tip_id, unit_id, received, accepted, decided, closed in rows:
            decided_ok = decided <= deadline_for("tip.accept", received, calendar).due_at
            counts[(month_of(decided), unit_id, "tip.accept"), decided_ok] += 1
            closed_ok = None
            if accepted is not None and closed is not None:
                closed_ok = closed <= deadline_for("tip.close", accepted, calendar).due_at
                counts[(month_of(closed), unit_id, "tip.close"), closed_ok] += 1
            updates.append({"tip_id": tip_id, "decided": decided_ok, "closed": closed_ok})
        connection.execute(statement, updates)
        last = rows[-1][0]
    events = sa.table('referral_events', sa.column('referral_id', sa.Integer()),
                      sa.column('at', UTCDateTime()), sa.column('due_step', sa.String()),
                      sa.column('on_time', sa.Boolean()))
    referrals = sa.table('referrals', sa.column('id', sa.Integer()),
                         sa.column('case_id', sa.Integer()))
    cases = sa.table('cases', sa.column('id', sa.Integer()), sa.column('unit_id', sa.Integer()))
    for at, unit_id, step, met in connection.execute(
            sa.select(events.c.at, cases.c.unit_id, events.c.due_step, events.c.on_time)
            .select_from(events.join(referrals, referrals.c.id == events.c.referral_id)
                         .join(cases, cases.c.id == referrals.c.case_id))
            .where(events.c.on_time.is_not(None))):
        counts[(month_of(at), unit_id, step or "?"), bool(met)] += 1
    totals = {}
    for (key, met), n in counts.items():
        totals.setdefault(key, [0, 0])[0 if met else 1] += n
    if totals:
        op.bulk_insert(sa.table('step_outcomes', sa.column('month', sa.Integer()),
                                sa.column('unit_id', sa.Integer()),
                                sa.column('step', sa.String()),
                                sa.column('met', sa.Integer()),
                                sa.column('missed', sa.Integer())),
                       [{"month": m, "unit_id": u, "step": s, "met": met, "missed": missed}
                        for (m, u, s), (met, missed) in sorted(totals.items())])


def downgrade():
    op.drop_table('step_outcomes')
    op.drop_index('ix_referrals_state', table_name='referrals')
    op.drop_index('ix_referrals_unit', table_name='referrals')
    with op.batch_alter_table('referrals') as batch:
        batch.drop_constraint(batch.f('fk_referrals_unit_id_units'), type_='foreignkey')
        batch.drop_column('unit_id')
    with op.batch_alter_table('tips') as batch:
        batch.drop_column('closed_on_time')
        batch.drop_column('decided_on_time')
