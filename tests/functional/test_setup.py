"""First start: the one-time link, the setup page, and the non-interactive `flask setup`."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from sqlalchemy import func, select

from models import Membership, Unit, UnitKeyGrant, User
from portal.security import crypto
from portal.web.extensions import db
from tests.conftest import ADMIN_PASSWORD

HANDLING = {"zhou", "yanji", "tumen", "dunhua", "hunchun", "longjing", "helong", "wangqing",
            "antu"}
# Receiving bodies get keys too: referral packages are sealed to them.
KEYED = HANDLING | {"psb_zhou", "psb_yanji", "psb_hunchun", "proc_zhou", "court_zhou", "cdi_zhou",
                    "natres_zhou", "forestry_zhou", "water_zhou"}


def test_setup_link_works_once_and_shows_recovery_keys(app, client, runner) -> None:
    printed = runner.invoke(args=["setup-link", "--base-url", "http://portal.test"]).output
    link = re.search(r"http://portal\.test(/setup/\S+)", printed).group(1)
    assert client.get(link).status_code == 200
    mismatch = client.post(link, data={"username": "chief", "password": ADMIN_PASSWORD,
                                       "confirm": "something else"})
    assert mismatch.status_code == 400 and db.session.scalar(select(func.count(User.id))) == 0
    short = client.post(link, data={"username": "chief", "password": "short", "confirm": "short"})
    assert short.status_code == 400 and db.session.scalar(select(func.count(User.id))) == 0
    done = client.post(f"{link}?lang=en", data={"username": "chief", "password": ADMIN_PASSWORD,
                                                "confirm": ADMIN_PASSWORD})
    assert done.status_code == 200
    # The units by name, never by code, and the way on to sign in.
    page = done.get_data(as_text=True)
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert "Yanji" in headings and "yanji" not in headings and "psb_zhou" not in headings
    assert len(headings) == len(KEYED)
    assert 'href="/staff/login"' in page
    unit_part, custodian_part = page.split('id="custodian-keys"')
    identities = re.findall(r"AGE-SECRET-KEY-1[0-9A-Z]+", unit_part)
    assert len(identities) == len(KEYED)
    units = {u.code: u for u in db.session.scalars(select(Unit))}
    recipients = {crypto.recipient_of(crypto.AgeIdentity(i)) for i in identities}
    assert recipients == {units[code].public_key for code in KEYED}
    # Each handling unit's custodian key, set apart and labelled as such.
    custodian = re.findall(r"AGE-SECRET-KEY-1[0-9A-Z]+", custodian_part)
    assert {crypto.recipient_of(crypto.AgeIdentity(i)) for i in custodian} == {
        units[code].identity_key for code in HANDLING}
    assert "Qingliu custodian recovery key yanji" in custodian_part
    assert "Custodian key of Yanji" in custodian_part
    # The link is spent, and the administrator holds no unit key.
    assert client.get(link).status_code == 404
    assert db.session.scalar(select(func.count(UnitKeyGrant.id))) == 0
    admin = db.session.scalars(select(User)).one()
    assert [m.role for m in db.session.scalars(select(Membership))] == ["administrator"]
    assert admin.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD.encode() not in admin.wrapped_identity
    assert runner.invoke(args=["setup-link"]).output.strip() == "The portal is set up."


def test_recovery_keys_page_has_no_link_back_to_the_spent_setup_link(client, runner) -> None:
    """The keys exist only in this answer: a language link to the setup link (spent, 404) would
    lose them for good. The page offers only the way on to sign in."""
    printed = runner.invoke(args=["setup-link", "--base-url", "http://portal.test"]).output
    link = re.search(r"http://portal\.test(/setup/\S+)", printed).group(1)
    done = client.post(f"{link}?lang=ko", data={"username": "chief", "password": ADMIN_PASSWORD,
                                                "confirm": ADMIN_PASSWORD})
    page = done.get_data(as_text=True)
    assert "AGE-SECRET-KEY-1" in page
    assert link not in page
    assert 'href="/staff/login"' in page
    assert client.get(f"{link}?lang=zh").status_code == 404


def test_unknown_setup_token_is_404(client) -> None:
    assert client.get("/setup/not-a-token").status_code == 404


def test_noninteractive_setup_writes_one_identity_file_per_unit(app, runner, tmp_path: Path,
                                                                monkeypatch) -> None:
    out = tmp_path / "recovery"
    missing = runner.invoke(args=["setup", "--admin", "ops", "--recovery-out", str(out)])
    assert missing.exit_code == 2 and "PORTAL_ADMIN_PASSWORD" in missing.stderr
    # A weak password: one line and exit status 2, not a traceback; nothing is set up.
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "short")
    weak = runner.invoke(args=["setup", "--admin", "ops", "--recovery-out", str(out)])
    assert weak.exit_code == 2 and weak.stdout == ""
    assert weak.stderr.count("\n") == 1 and "too weak" in weak.stderr
    assert "Traceback" not in weak.output
    assert weak.exception is None or isinstance(weak.exception, SystemExit)
    assert db.session.scalar(select(func.count(User.id))) == 0 and not out.exists()
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
    result = runner.invoke(args=["setup", "--admin", "ops", "--recovery-out", str(out)])
    assert result.exit_code == 0, result.output
    files = {p.stem: p for p in out.iterdir() if not p.name.startswith("custodian-")}
    assert set(files) == KEYED
    units = {u.code: u for u in db.session.scalars(select(Unit))}
    custodian_files = {p.stem.removeprefix("custodian-"): p for p in out.iterdir()
                       if p.name.startswith("custodian-")}
    assert set(custodian_files) == HANDLING
    for code, path in custodian_files.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert f"Qingliu custodian recovery key {code}" in text
        identity = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
        assert crypto.recipient_of(crypto.AgeIdentity(identity)) == units[code].identity_key
    for code, path in files.items():
        assert path.name == f"{code}.txt"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        identity = next(line for line in path.read_text().splitlines()
                        if line.startswith("AGE-SECRET-KEY-1"))
        assert crypto.recipient_of(crypto.AgeIdentity(identity)) == units[code].public_key
    again = runner.invoke(args=["setup", "--admin", "ops2", "--recovery-out",
                                str(tmp_path / "again")])
    assert again.exit_code == 2 and "already set up" in again.stderr
