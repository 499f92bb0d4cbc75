"""Migration a81e00000004 (issue 9): an account that existed before it keeps everything, has
no reset pending and no notice to show; downgrading keeps the account. On SQLite, and on
PostgreSQL when TEST_DATABASE_URL is set (the fixture of tests/test_migrations.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import flask_migrate
from sqlalchemy import text

from portal.web.extensions import db
from tests.test_migrations import database_at, empty_database  # noqa: F401  (the fixture)


def test_password_reset_columns_arrive_empty_on_existing_accounts(
        tmp_path: Path, empty_database: str) -> None:  # noqa: F811
    with database_at(tmp_path, empty_database, "a81e00000003") as metadata:
        users = metadata.tables["users"]
        with db.engine.begin() as conn:
            conn.execute(users.insert().values(
                username="officer", display_name="Officer Kim", password_hash="$argon2id$x",
                public_key="age1x", wrapped_identity=b"wrapped", active=True,
                totp_confirmed_at=datetime(2026, 1, 5, tzinfo=UTC),
                created_at=datetime(2026, 1, 5, tzinfo=UTC)))
        flask_migrate.upgrade(revision="a81e00000004")
        with db.engine.connect() as conn:
            row = conn.execute(text(
                "select username, password_hash, reset_by_id, reset_at, reset_state, "
                "reset_factor_lost, reset_failures, reset_notice from users")).one()
        assert (row[0], row[1], row[2], row[3], row[4]) == ("officer", "$argon2id$x", None,
                                                           None, None)
        assert (bool(row[5]), row[6], bool(row[7])) == (False, 0, False)
        # The new foreign key holds: a reset names an existing account.
        with db.engine.begin() as conn:
            conn.execute(text("update users set reset_by_id = id, reset_state = 'open'"))
        flask_migrate.downgrade(revision="a81e00000003")
        with db.engine.connect() as conn:
            kept = conn.execute(text("select username, wrapped_identity from users")).one()
        assert (kept[0], bytes(kept[1])) == ("officer", b"wrapped")
        db.session.remove()
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()
