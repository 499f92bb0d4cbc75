"""Migration a81e00000008 (issue 9): memberships that existed before it count as confirmed (the
roles keep working), who asked is unknown; accounts start at device epoch 0; a downgrade drops
roles still waiting (the older code would read them as given) and keeps the rest. On SQLite, and
on PostgreSQL when TEST_DATABASE_URL is set (the fixture of tests/test_migrations.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import flask_migrate
from sqlalchemy import text

from portal.web.extensions import db
from tests.test_migrations import database_at, empty_database  # noqa: F401  (the fixture)


def test_existing_memberships_stay_confirmed(tmp_path: Path,
                                             empty_database: str) -> None:  # noqa: F811
    with database_at(tmp_path, empty_database, "a81e00000007") as metadata:
        users, units = metadata.tables["users"], metadata.tables["units"]
        memberships = metadata.tables["memberships"]
        with db.engine.begin() as conn:
            conn.execute(units.insert().values(
                id=1, code="yanji", kind="county", name_zh="延吉市", name_ko="연길시",
                name_en="Yanji", active=True))
            conn.execute(users.insert().values(
                id=1, username="officer", display_name="Officer Kim", password_hash="$argon2id$x",
                public_key="age1x", wrapped_identity=b"wrapped", active=True,
                created_at=datetime(2026, 1, 5, tzinfo=UTC)))
            conn.execute(memberships.insert().values(id=1, user_id=1, unit_id=1, role="head"))
        flask_migrate.upgrade(revision="a81e00000008")
        with db.engine.connect() as conn:
            row = conn.execute(text(
                "select role, added_by_id, confirmed_at, confirmed_by_id from memberships")).one()
            epoch = conn.execute(text("select device_epoch from users")).scalar()
        assert row[0] == "head" and row[1] is None and row[3] is None
        assert row[2] is not None  # confirmed: the head keeps the role
        assert epoch == 0
        # A role still waiting, and the foreign keys hold.
        with db.engine.begin() as conn:
            conn.execute(text("insert into memberships (id, user_id, unit_id, role, added_by_id) "
                              "values (2, 1, 1, 'case_officer', 1)"))
            conn.execute(text("update users set device_epoch = 3"))
        flask_migrate.downgrade(revision="a81e00000007")
        with db.engine.connect() as conn:
            kept = conn.execute(text("select id, role from memberships")).all()
        assert [tuple(r) for r in kept] == [(1, "head")]
        db.session.remove()
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()
