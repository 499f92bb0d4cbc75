"""The blind indexes: a copy of the database, the files and the configuration confirms no guess
about a tip, and related tips are still found once a key holder has opened the queue or a tip
(issue 9, finding 3)."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import func, inspect, select, table, text

from models import InstallSecret, Tip, Unit, User
from models.install import SEALED_BLIND_KEY
from portal.intake import filing
from portal.security import crypto
from portal.security.access import Principal, principal_for
from portal.triage import queue as tip_queue
from portal.triage import tip_actions
from portal.web.extensions import db
from tests.conftest import FAST_ARGON2

GUESS = "Acme Yanji Co"
# The purposes the portal derives keys for from SECRET_KEY, and a few an attacker would try.
PURPOSES = ("known device", "totp secret", "submission token", "receipt from submission token",
            "submission token hash", "followup token", "blind index", "blind_index_key", "")


def file_tip(client, county: str = "yanji", **fields: str) -> int:
    response = client.post("/api/v1/tips", json={"narrative": "oil in the river",
                                                  "county": county, **fields})
    assert response.status_code == 201, response.get_json()
    return db.session.scalar(select(func.max(Tip.id)))


def indexes(tip_id: int) -> tuple[bytes | None, bytes | None]:
    db.session.expire_all()
    tip = db.session.get(Tip, tip_id)
    return tip.responsible_index, tip.place_index


def yanji_holder(staff, portal_keys, name: str) -> Principal:
    """An intake officer of Yanji holding its key, as a request would build them."""
    user = db.session.get(User, staff.create(name, "yanji"))
    yanji = db.session.scalar(select(Unit.id).where(Unit.code == "yanji"))
    return principal_for(db.session, user, identities={yanji: portal_keys["yanji"]})


def every_stored_value() -> list[bytes]:
    """Every cell of every table, read raw (not through the models), as bytes."""
    values: list[bytes] = []
    for name in inspect(db.engine).get_table_names():
        for row in db.session.execute(select(text("*")).select_from(table(name))):
            for cell in row:
                if isinstance(cell, bytes | bytearray | memoryview):
                    values.append(bytes(cell))
                elif cell is not None:
                    values.append(str(cell).encode())
    return values


def every_file(root: Path) -> list[bytes]:
    return [path.read_bytes() for path in root.rglob("*") if path.is_file()]


def spellings(key: bytes) -> list[bytes]:
    return [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
            base64.urlsafe_b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")]


def test_a_copy_of_the_database_files_and_configuration_confirms_no_guess(
        app, client, staff, portal_keys, tmp_path) -> None:
    first = file_tip(client, responsible=GUESS, place="Burhatong bridge")
    second = file_tip(client, responsible="ACME  yanji co.", place="")
    # An officer opens one: the indexes of both are computed then, by the officer's request.
    uid = staff.create("reader", "yanji")
    officer = app.test_client()
    staff.login(officer, "reader", uid)
    page = officer.get(f"/staff/tips/{second}").get_data(as_text=True)
    assert f'href="/staff/tips/{first}"' in page
    stored = {i for tip_id in (first, second) for i in indexes(tip_id)} - {None, b""}
    assert len(stored) == 2  # one shared responsible party, one place
    # Everything the server keeps: the database read raw, every file under the test's folder
    # (the SQLite file, the instance folder), the configuration. Nothing kept, nor derived from
    # the configuration, turns the guess into a stored index.
    cells = every_stored_value()
    files = every_file(tmp_path)
    config = [repr(value).encode() for value in app.config.values()]
    secret_key = app.config["SECRET_KEY"]
    candidates = [*cells, *config, secret_key.encode(),
                  *(crypto.server_key(secret_key, purpose) for purpose in PURPOSES)]
    for candidate in candidates:
        if candidate:
            assert filing.blind_index(candidate, GUESS) not in stored
    # With a recovery key, the key opens and confirms the guess: the indexes are real. Its
    # bytes are nowhere in what the server keeps, in any usual spelling.
    key = filing.open_blind_key(db.session, [portal_keys["zhou"]])
    assert key is not None and filing.blind_index(key, GUESS) in stored
    for where in (cells, files, config):
        for blob in where:
            for spelling in spellings(key):
                assert spelling not in blob
    # What is kept is the key sealed to the handling units' keys only.
    sealed = db.session.get(InstallSecret, SEALED_BLIND_KEY).value
    assert crypto.open_sealed(sealed, [portal_keys["yanji"]]) == key
    assert not db.session.scalar(select(func.count()).select_from(InstallSecret)
                                 .where(InstallSecret.name == "blind_index_key"))


def test_tips_are_filed_unindexed_and_indexed_when_a_key_holder_looks(app, client, staff,
                                                                       portal_keys) -> None:
    older = file_tip(client, responsible="Tianyuan Chemical Co.", place="Yanji east gate")
    newer = file_tip(client, responsible="tianyuan chemical co", place="elsewhere")
    elsewhere = file_tip(client, "dunhua", responsible="Tianyuan Chemical Co.")
    # Nobody holding a key was there: nothing that could confirm a guess is stored.
    assert [indexes(t) for t in (older, newer, elsewhere)] == [(None, None)] * 3
    # An officer of another county, and one of this county without its key, change nothing.
    dunhua = principal_for(db.session, db.session.get(User, staff.create("dunhua", "dunhua")),
                           identities={})
    assert tip_actions.index_pending(db.session, dunhua) == 0
    keyless_id = staff.create("keyless", "yanji", grant=False)
    keyless = principal_for(db.session, db.session.get(User, keyless_id))
    tip_queue.queue(db.session, keyless, tip_queue.QueueFilter())
    assert indexes(older) == (None, None)
    # The county's key holder opens the queue: the county's tips are indexed, not Dunhua's.
    uid = staff.create("holder", "yanji")
    browser = app.test_client()
    staff.login(browser, "holder", uid)
    assert browser.get("/staff/").status_code == 200
    assert indexes(older)[0] == indexes(newer)[0] is not None
    assert indexes(older)[1] != indexes(newer)[1]
    assert indexes(elsewhere) == (None, None)
    # Each opened tip lists the other as related, without anyone reading every tip.
    page = browser.get(f"/staff/tips/{older}").get_data(as_text=True)
    assert f'href="/staff/tips/{newer}"' in page
    # 州本级's officer reaches Dunhua's tip as well: it joins the others.
    bureau_id = staff.create("bureau", "zhou")
    bureau = app.test_client()
    staff.login(bureau, "bureau", bureau_id)
    page = bureau.get(f"/staff/tips/{older}").get_data(as_text=True)
    assert f'href="/staff/tips/{elsewhere}"' in page and f'href="/staff/tips/{newer}"' in page
    # An empty field is computed too (b""), so it is not opened again on every page.
    blank = file_tip(client, responsible=" ,. ")
    bureau.get("/staff/")
    assert indexes(blank)[0] == filing.NO_INDEX


def test_a_batch_is_bounded_and_the_opened_tip_comes_first(app, client, staff,
                                                           portal_keys) -> None:
    tips = [file_tip(client, responsible=f"Plant {n}") for n in range(4)]
    principal = yanji_holder(staff, portal_keys, "batch")
    assert tip_actions.index_pending(db.session, principal, first=tips[0], limit=2) == 2
    done = [indexes(t)[0] is not None for t in tips]
    assert done == [True, False, False, True]  # the one asked for, then the newest
    assert tip_actions.index_pending(db.session, principal) == 2
    assert tip_actions.index_pending(db.session, principal) == 0


def test_a_hotline_entry_by_a_key_holder_is_indexed_at_once(app, staff, portal_keys) -> None:
    principal = yanji_holder(staff, portal_keys, "hotline")
    draft = filing.TipDraft(narrative="called in", county="yanji", responsible=GUESS,
                            channel="hotline")
    filed = tip_actions.hotline_tip(db.session, principal, draft,
                               limits=filing.Limits(10, 10**6, 10**6), receipt_cost=FAST_ARGON2)
    key = filing.open_blind_key(db.session, [portal_keys["yanji"]])
    assert indexes(filed.tip_id) == (filing.blind_index(key, GUESS), filing.NO_INDEX)


def test_rotate_replaces_the_key_and_computes_the_indexes_again(app, client, staff, portal_keys,
                                                                tmp_path) -> None:
    first = file_tip(client, responsible=GUESS)
    second = file_tip(client, "antu", responsible=GUESS.upper())
    before = db.session.get(InstallSecret, SEALED_BLIND_KEY).value
    old_key = filing.open_blind_key(db.session, [portal_keys["zhou"]])
    recovery = tmp_path / "zhou.txt"
    recovery.write_text(crypto.identity_file_text(portal_keys["zhou"], "recovery key, zhou"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["blind-index", "rotate", "--identity", str(recovery)])
    assert result.exit_code == 0, result.output
    assert "2 tips indexed again" in result.output
    db.session.expire_all()
    assert db.session.get(InstallSecret, SEALED_BLIND_KEY).value != before
    new_key = filing.open_blind_key(db.session, [portal_keys["antu"]])
    assert new_key not in (None, old_key)
    assert indexes(first)[0] == indexes(second)[0] == filing.blind_index(new_key, GUESS)
    assert filing.blind_index(old_key, GUESS) not in (indexes(first)[0], None)
    # A county's key opens only its own tips: the others wait for an officer.
    county = tmp_path / "antu.txt"
    county.write_text(crypto.identity_file_text(portal_keys["antu"], "recovery key, antu"))
    result = runner.invoke(args=["blind-index", "rotate", "--identity", str(county)])
    assert result.exit_code == 0, result.output
    assert "1 tips indexed again" in result.output and "1 tips are not opened" in result.output
    assert indexes(first) == (None, None)
    # A receiving body's key, or no key at all, is refused in one line.
    body = tmp_path / "psb.txt"
    body.write_text(crypto.identity_file_text(portal_keys["psb_zhou"], "recovery key, psb"))
    for path in (body, tmp_path / "empty.txt"):
        path.touch()
        result = runner.invoke(args=["blind-index", "rotate", "--identity", str(path)])
        assert result.exit_code == 2
        assert "recovery key file of a handling unit" in result.output
