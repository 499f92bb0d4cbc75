"""Every migration, run for real: upgrade an empty database to head, put data in it, check the
schema equals the models, and downgrade again. On SQLite, and on PostgreSQL in a schema of its
own when TEST_DATABASE_URL is set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, select, text

from models import Tip, TipUpdate
from portal import create_app
from portal.intake import filing
from portal.operations.seed import seed
from portal.operations.setup import complete_setup
from portal.web.extensions import db
from tests.conftest import COSTS, FAST_ARGON2, TEST_DATABASE_URL, test_settings


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    base = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = "mig_" + uuid.uuid4().hex[:12]
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@contextmanager
def database_at(tmp_path: Path, url: str, revision: str) -> Iterator[MetaData]:
    """Inside an app context: the database at `url` migrated up to `revision`, its tables as they
    are there (reflected), for a migration test to put data in before upgrading further."""
    settings = test_settings(tmp_path)
    settings["SQLALCHEMY_DATABASE_URI"] = url
    with create_app(settings).app_context():
        flask_migrate.upgrade(revision=revision)
        metadata = MetaData()
        metadata.reflect(db.engine)
        yield metadata


def _revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    from portal import ROOT

    script = ScriptDirectory(str(ROOT / "migrations"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_each_revision_upgrades_a_database_holding_a_tip(tmp_path: Path,
                                                         empty_database: str) -> None:
    """Stop at every revision, make sure a tip written at the first one survives each step."""
    settings = test_settings(tmp_path)
    settings["SQLALCHEMY_DATABASE_URI"] = empty_database
    app = create_app(settings)
    revisions = _revisions()
    with app.app_context():
        flask_migrate.upgrade(revision=revisions[0])
        metadata = MetaData()
        metadata.reflect(db.engine)
        units, tips = metadata.tables["units"], metadata.tables["tips"]
        audit = metadata.tables["audit_events"]
        with db.engine.begin() as conn:
            unit_id = conn.execute(units.insert().values(
                code="zhou", kind="bureau", name_zh="州本级", name_ko="주", name_en="Prefecture",
                active=True)).inserted_primary_key[0]
            conn.execute(tips.insert().values(
                receipt_lookup=b"\x01" * 32, receipt_recipient="age1x", unit_id=unit_id,
                channel="online", status="received", priority=0, real_name=False,
                attachment_count=0, received_at=datetime(2026, 1, 5, tzinfo=UTC),
                content=b"ciphertext"))
            for n in range(3):  # entries logged before the log was chained
                conn.execute(audit.insert().values(
                    at=datetime(2026, 1, 5, 8, n, tzinfo=UTC), actor_type="system",
                    action="legacy.event", details=f'{{"n":{n}}}'))
        for revision in revisions[1:]:
            flask_migrate.upgrade(revision=revision)
            with db.engine.connect() as conn:
                kept = conn.execute(text("select content from tips")).scalars().all()
            assert kept == [b"ciphertext"], revision
        with db.engine.connect() as conn:
            row = conn.execute(text("select due_certain, extended from tips")).one()
        assert (bool(row[0]), bool(row[1])) == (True, False)
        # The old entries became the first leaves of the chained log, which verifies, and the
        # next entry continues it.
        from auditlog.database import load_keys, make_checkpoint, verify_database
        from auditlog.events import SYSTEM, record

        keys = load_keys(tmp_path / "log.key", "test/audit")
        record(db.session, SYSTEM, "after.migration")
        db.session.commit()
        make_checkpoint(db.session, keys, "test/audit")
        result = verify_database(db.session, keys)
        assert result.ok and result.entries == 4, result
        db.session.remove()
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()


def test_upgrade_to_head_with_data_then_downgrade(tmp_path: Path, empty_database: str) -> None:
    settings = test_settings(tmp_path)
    settings["SQLALCHEMY_DATABASE_URI"] = empty_database
    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade()
        seed(db.session)
        keys = complete_setup(db.session, "admin", "correct horse battery", **COSTS)
        limits = filing.Limits(max_files=10, max_file_bytes=10**6, max_clean_bytes=10**6)
        filed = filing.file_tip(db.session, filing.TipDraft(narrative="after migration",
                                                            county="antu"), [],
                                limits=limits, receipt_cost=FAST_ARGON2)
        assert db.session.scalar(select(Tip.unit_id).where(Tip.id == filed.tip_id))
        # The longest progress word fits (PostgreSQL refused it at String(16): a81e00000007).
        db.session.add(TipUpdate(tip_id=filed.tip_id, status="referred_procuratorate"))
        db.session.commit()
        assert db.session.scalar(select(TipUpdate.status).where(
            TipUpdate.status == "referred_procuratorate")) == "referred_procuratorate"
        assert keys.recovery
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert differences == [], "the migrations and the models disagree; run flask db migrate"
        db.session.remove()
        flask_migrate.downgrade(revision="base")
        remaining = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        db.engine.dispose()


def test_the_blind_index_key_is_sealed_and_its_plain_copy_deleted(tmp_path: Path,
                                                                   empty_database: str) -> None:
    """a81e00000006 seals the plain blind-index key to the handling units' keys (not a
    receiving body's) and deletes it; indexes made with it stay valid, NULL ones become
    "computed, naming nothing" (b""); downgrade turns those back into NULL."""
    import os

    from portal.security import crypto

    with database_at(tmp_path, empty_database, "a81e00000005") as metadata:
        units, tips = metadata.tables["units"], metadata.tables["tips"]
        secrets = metadata.tables["install_secrets"]
        pairs = {code: crypto.generate_keypair() for code in ("zhou", "yanji", "psb_zhou")}
        kinds = {"zhou": "bureau", "yanji": "county", "psb_zhou": "public_security"}
        key = os.urandom(32)
        index = filing.blind_index(key, "Acme Yanji Co")
        with db.engine.begin() as conn:
            ids = {code: conn.execute(units.insert().values(
                code=code, kind=kinds[code], name_zh=code, name_ko=code, name_en=code,
                active=True, public_key=pairs[code].recipient)).inserted_primary_key[0]
                for code in pairs}
            conn.execute(secrets.insert().values(name="blind_index_key", value=key))
            conn.execute(secrets.insert().values(name="receipt_salt", value=b"s" * 32))
            conn.execute(tips.insert().values(
                receipt_lookup=b"\x01" * 32, receipt_recipient="age1x", unit_id=ids["yanji"],
                channel="online", status="received", priority=0, real_name=False,
                attachment_count=0, received_at=datetime(2026, 1, 5, tzinfo=UTC),
                content=b"ciphertext", responsible_index=index, place_index=None))
        flask_migrate.upgrade(revision="a81e00000006")
        with db.engine.connect() as conn:
            kept = dict(conn.execute(select(secrets.c.name, secrets.c.value)).all())
            row = conn.execute(select(tips.c.responsible_index, tips.c.place_index)).one()
        assert set(kept) == {"blind_index_key.sealed", "receipt_salt"}
        sealed = kept["blind_index_key.sealed"]
        for holder in ("zhou", "yanji"):
            assert crypto.open_sealed(sealed, [pairs[holder].identity]) == key
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(sealed, [pairs["psb_zhou"].identity])
        assert (bytes(row[0]), bytes(row[1])) == (index, filing.NO_INDEX)
        if not TEST_DATABASE_URL:  # the deleted row is overwritten in the file itself
            assert key not in (tmp_path / "migrate.sqlite3").read_bytes()
        flask_migrate.downgrade(revision="a81e00000005")
        with db.engine.connect() as conn:
            row = conn.execute(select(tips.c.responsible_index, tips.c.place_index)).one()
        assert (bytes(row[0]), row[1]) == (index, None)
        db.session.remove()
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()


def test_the_step_outcomes_are_counted_from_the_tips_already_decided(
        tmp_path: Path, empty_database: str) -> None:
    """a81e0000000c notes, for each tip decided before it, whether the decision (15 days from
    receipt) and the closing (60 days from acceptance) were on time, and counts them per month."""
    settings = test_settings(tmp_path)
    settings["SQLALCHEMY_DATABASE_URI"] = empty_database
    app = create_app(settings)
    received = datetime(2026, 3, 2, 1, tzinfo=UTC)  # a Monday; the calendar is empty

    def day(days: int | None) -> datetime | None:
        return None if days is None else received + timedelta(days=days)

    with app.app_context():
        flask_migrate.upgrade(revision="a81e0000000A")
        metadata = MetaData()
        metadata.reflect(db.engine)
        units, tips = metadata.tables["units"], metadata.tables["tips"]
        with db.engine.begin() as conn:
            unit_id = conn.execute(units.insert().values(
                code="yanji", kind="county", name_zh="延吉市", name_ko="연길시",
                name_en="Yanji", active=True)).inserted_primary_key[0]
            for n, (decided, accepted, closed) in enumerate([
                    (1, 1, None),  # accepted the next day
                    (40, None, 40),  # declined after 40 days
                    (2, 2, 200),  # accepted, closed 198 days later
                    (None, None, None)]):  # waiting
                conn.execute(tips.insert().values(
                    receipt_lookup=bytes([n]) * 32, receipt_recipient="age1x", unit_id=unit_id,
                    channel="online", status="received", priority=0, real_name=False,
                    attachment_count=0, received_at=received, decided_at=day(decided),
                    accepted_at=day(accepted), closed_at=day(closed), content=b"c"))
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            noted = conn.execute(text(
                "select decided_on_time, closed_on_time from tips order by id")).all()
            counted = conn.execute(text(
                "select month, step, met, missed from step_outcomes order by month, step")).all()
        assert [(None if d is None else bool(d), None if c is None else bool(c))
                for d, c in noted] == [(True, None), (False, None), (True, False), (None, None)]
        assert [tuple(row) for row in counted] == [
            (202603, "tip.accept", 2, 0), (202604, "tip.accept", 0, 1),
            (202609, "tip.close", 0, 1)]
        db.session.remove()
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()
