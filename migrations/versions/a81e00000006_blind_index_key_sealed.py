"""blind_index_key_sealed: the blind-index key is kept only sealed to the handling units' keys

Revision ID: a81e00000006
Revises: a81e00000005
Create Date: 2026-12-06 00:00:00

The key of the blind indexes (tips.responsible_index, tips.place_index) was stored in plain in
install_secrets, so a copy of the database alone confirmed a guessed name (issue 9). The same
key is now sealed (age) to every handling unit's public key, which the printed recovery keys
open, and the plain row is deleted (zeroed in the file on SQLite). Existing indexes stay valid,
being made with the same key; they were all computed at filing, so a NULL one (a field naming
nothing) becomes b"", and NULL now means "not computed yet" (portal/intake/filing.py NO_INDEX).

Backups made before this upgrade still hold the old key: `flask --app app blind-index rotate`
replaces it (README, Operating it).

Downgrade turns b"" back into NULL and leaves the sealed key in place; the code before this
revision would make itself a new plain key, with which earlier tips are not found as related.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a81e00000006'
down_revision = 'a81e00000005'
branch_labels = None
depends_on = None

PLAIN = "blind_index_key"
SEALED = "blind_index_key.sealed"
HANDLING_KINDS = ("bureau", "county")


def upgrade():
    from portal.security import crypto  # the one module that seals (age v1)

    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        op.execute("PRAGMA secure_delete = ON")  # the deleted key is overwritten in the file
    secret = sa.table("install_secrets", sa.column("name", sa.String),
                      sa.column("value", sa.LargeBinary))
    tips = sa.table("tips", sa.column("responsible_index", sa.LargeBinary),
                    sa.column("place_index", sa.LargeBinary))
    plain = conn.execute(sa.select(secret.c.value).where(secret.c.name == PLAIN)).scalar()
    sealed = conn.execute(sa.select(secret.c.value).where(secret.c.name == SEALED)).scalar()
    units = sa.table("units", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                     sa.column("public_key", sa.String))
    recipients = [key for key in conn.execute(
        sa.select(units.c.public_key).where(units.c.kind.in_(HANDLING_KINDS),
                                            units.c.public_key.is_not(None))
        .order_by(units.c.id)).scalars() if key]
    if plain is None:
        return  # never made (no tip filed yet), or already sealed
    if sealed is None and recipients:
        op.execute(secret.insert().values(name=SEALED, value=crypto.seal(plain, recipients)))
        for column in (tips.c.responsible_index, tips.c.place_index):
            op.execute(tips.update().where(column.is_(None)).values({column.name: b""}))
    else:
        # A sealed key exists already (a second upgrade after a downgrade) or nothing can be
        # sealed: the plain key's indexes are computed again when officers open the tips.
        op.execute(tips.update().values(responsible_index=None, place_index=None))
    op.execute(secret.delete().where(secret.c.name == PLAIN))


def downgrade():
    tips = sa.table("tips", sa.column("responsible_index", sa.LargeBinary),
                    sa.column("place_index", sa.LargeBinary))
    for column in (tips.c.responsible_index, tips.c.place_index):
        op.execute(tips.update().where(column == b"").values({column.name: None}))
