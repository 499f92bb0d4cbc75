"""Issue 10, "identity apart": a real-name reporter's identity is sealed apart from the tip, to
the custodian (信息保密员) keys of the tip's unit and 州本级 and to the receipt key — never to
the unit keys the officers hold. The county unit's recovery key opens the narrative but not the
name (checked with the `age` tool on what the database holds); the custodian key opens the
name. Officers read only "real name", "may be contacted", "interested in a reward". The
custodian role is confirmed by a second person and opens no tip; its key passes on the Unit keys
page between custodians only. Tips filed the old way are separated by `flask identities
separate`; `flask identities keys` gives an older installation its custodian keys."""

from __future__ import annotations

import html
import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import AuditEvent, KeyPurpose, Membership, Tip, TipIdentity, Unit, UnitKeyGrant, User
from portal.intake import receipts
from portal.intake.identity import ReporterIdentity, open_identity
from portal.operations.setup import complete_setup
from portal.security import crypto, custody
from portal.security.access import principal_for
from portal.security.keys import install_secret, tip_recipients
from portal.triage import tip_actions
from portal.web.extensions import db
from tests.conftest import ADMIN_PASSWORD, COSTS, FAST_ARGON2, Staff
from tests.functional.test_admin_users import admin_client, visible_text
from tests.functional.test_citizen import RECEIPT, SUBMISSION, hidden
from tests.functional.test_staff_api import token_for
from tests.unit.test_crypto import require_age

NAME, PHONE, ID_NUMBER, ADDRESS = "김철수", "13912345678", "11010519491231002X", "延吉市光明街 7号"
STORY = {"narrative": "waste oil poured into the Buerhatong river at night",
         "county": "yanji", "category": "P04", "place": "Buerhatong bridge"}
REAL_NAME = {"real_name": "y", "name": NAME, "phone": PHONE, "id_number": ID_NUMBER,
             "address": ADDRESS, "contact_ok": "y"}


@pytest.fixture
def keys(app):
    """The set-up portal: (unit recovery keys, custodian recovery keys) by unit code."""
    result = complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    return dict(result.recovery), dict(result.custodian_recovery)


@pytest.fixture
def people(app, keys) -> Staff:
    return Staff(app, keys[0])


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)))


def user_named(username: str) -> User:
    return db.session.scalars(select(User).where(User.username == username)).one()


def unit_named(code: str) -> Unit:
    return db.session.scalars(select(Unit).where(Unit.code == code)).one()


def file_real_name(client, **extra):
    data = {**STORY, **REAL_NAME, "submission": hidden(SUBMISSION, client.get("/report")),
            **extra}
    response = client.post("/report?lang=en", data=data, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    return data, RECEIPT.search(response.data).group(1).decode()


def age_open(tmp_path: Path, key: str, ciphertext: bytes, name: str) -> subprocess.CompletedProcess:
    age = require_age()
    key_file = tmp_path / f"{name}.key"
    key_file.write_text(key + "\n")
    sealed = tmp_path / f"{name}.age"
    sealed.write_bytes(ciphertext)
    return subprocess.run([age, "--decrypt", "-i", str(key_file), str(sealed)],
                          capture_output=True, check=False)


def signed_in(app, people: Staff, username: str, unit: str = "yanji", role: str = "intake_officer",
              **kwargs):
    uid = people.create(username, unit, role, **kwargs)
    browser = app.test_client()
    people.login(browser, username, uid)
    return browser, uid


def test_a_real_name_tip_keeps_its_identity_apart(app, client, keys, people, tmp_path) -> None:
    content_keys, custodian_keys = keys
    data, receipt = file_real_name(client)
    tip = db.session.scalars(select(Tip)).one()
    row = db.session.get(TipIdentity, tip.id)
    assert tip.real_name and row is not None
    # What the officers' key opens: the narrative and the flags, never who reported it.
    opened = age_open(tmp_path, content_keys["yanji"], tip.content, "content")
    assert opened.returncode == 0, opened.stderr
    assert STORY["narrative"].encode() in opened.stdout
    content = json.loads(opened.stdout)
    assert content["identity"] is None
    assert content["reporter"] == {"contact_ok": True, "reward": False}
    for secret in (NAME, PHONE, ID_NUMBER, ADDRESS):
        assert secret not in opened.stdout.decode()
    # The identity row: the county unit's key (and 州本级's) fail; its custodian key opens it.
    assert age_open(tmp_path, content_keys["yanji"], row.sealed, "county").returncode != 0
    assert age_open(tmp_path, content_keys["zhou"], row.sealed, "bureau").returncode != 0
    named = age_open(tmp_path, custodian_keys["yanji"], row.sealed, "custodian")
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout) == {"name": NAME, "phone": PHONE, "id_number": ID_NUMBER,
                                        "address": ADDRESS}
    assert age_open(tmp_path, custodian_keys["zhou"], row.sealed, "zhou-c").returncode == 0
    assert age_open(tmp_path, custodian_keys["tumen"], row.sealed, "tumen-c").returncode != 0
    # The reporter's receipt opens it too (the same Argon2id derivation as filing).
    derived = receipts.derive_keys(receipt, install_secret(db.session, "receipt_salt"),
                                   FAST_ARGON2)
    assert open_identity(db.session, tip.id, [derived.keypair.identity]).name == NAME
    # The same form sent again is the same report: the same receipt, nothing new filed.
    again = client.post("/report?lang=en", data=data, content_type="multipart/form-data")
    assert again.status_code == 200 and RECEIPT.search(again.data).group(1).decode() == receipt
    assert db.session.scalar(select(func.count(Tip.id))) == 1
    # The officer's page and the staff API: the flags in words, no name, phone, ID or address.
    browser, _ = signed_in(app, people, "intake")
    page = browser.get(f"/staff/tips/{tip.id}?lang=en").get_data(as_text=True)
    words = visible_text(page)
    assert "Real name · may be contacted" in words and "interested in a reward" not in words
    for secret in (NAME, PHONE, ID_NUMBER, "光明街"):
        assert secret not in page
    api_token = token_for(app, people, "api_reader", people.create("api_reader", "yanji"))
    answer = app.test_client().get(f"/api/v1/staff/tips/{tip.id}",
                                   headers={"Authorization": f"Bearer {api_token}"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["real_name"] is True
    assert body["reporter"] == {"contact_ok": True, "reward": False}
    assert body["content"]["identity"] is None
    for secret in (NAME, PHONE, ID_NUMBER, "光明街"):
        assert secret not in answer.get_data(as_text=True)


def test_hotline_real_name_entry_is_apart_too(app, keys, people) -> None:
    _, custodian_keys = keys
    browser, _ = signed_in(app, people, "hotline_officer", extra=(("zhou", "intake_officer"),))
    form = browser.get("/staff/hotline?lang=en").get_data(as_text=True)
    done = browser.post("/staff/hotline?lang=en", data={
        "channel": "hotline", "language": "zh", "category": "P04", "county": "yanji",
        "narrative": "caller: smoke from the kiln", "name": "王芳", "phone": "13800001111",
        "submission": hidden(SUBMISSION, form)})
    assert done.status_code == 201, done.get_data(as_text=True)[:2000]
    tip = db.session.scalars(select(Tip)).one()
    content = json.loads(crypto.open_sealed(tip.content, [keys[0]["yanji"]]))
    assert content["identity"] is None and "王芳" not in json.dumps(content, ensure_ascii=False)
    assert open_identity(db.session, tip.id, [custodian_keys["yanji"]]) == ReporterIdentity(
        name="王芳", phone="13800001111")
    # Moved to another county by the officer, who cannot open the identity: it stays sealed as
    # it was, and the log says it waits to be sealed for the new unit's custodians.
    sealed = db.session.get(TipIdentity, tip.id).sealed
    officer = user_named("hotline_officer")
    zhou = unit_named("zhou")
    principal = principal_for(db.session, officer, {zhou.id: crypto.AgeIdentity(keys[0]["zhou"])})
    tip_actions.transfer(db.session, principal, tip.id, "tumen", "the kiln is in Tumen")
    db.session.expire_all()
    assert db.session.get(Tip, tip.id).unit.code == "tumen"
    assert db.session.get(TipIdentity, tip.id).sealed == sealed
    pending = events("identity.reseal_pending")
    assert len(pending) == 1 and pending[0].object_id == tip.id
    assert "王芳" not in pending[0].details


def test_custodian_role_and_its_key_on_the_unit_keys_page(app, keys, people) -> None:
    _, custodian_keys = keys
    head = people.create("head_cui", "yanji", "head")
    people.create("case_li", "yanji", "case_officer")
    people.create("intake_pak", "yanji", "intake_officer")
    admin, _ = admin_client(app)
    # The administrator gives the custodian role: it waits for a head of the unit.
    li = user_named("case_li")
    given = admin.post(f"/admin/users/{li.id}/membership?lang=en",
                       data={"unit": "yanji", "role": "custodian"})
    assert given.status_code == 303
    words = html.unescape(visible_text(admin.get("/admin/users?lang=en").get_data(as_text=True)))
    assert "gives no access until a head of the unit" in words
    assert "Custodian of reporters' identities" in words
    waiting = db.session.scalars(select(Membership).where(
        Membership.user_id == li.id, Membership.role == "custodian")).one()
    assert waiting.confirmed_at is None
    with pytest.raises(custody.NotKeyMember):  # a waiting custodian cannot receive the key
        custody.check_key_member(db.session, unit_named("yanji"), li, KeyPurpose.IDENTITY)
    refused = admin.post("/roles-to-confirm?lang=en", data={
        "membership_id": str(waiting.id), "decision": "confirm"})
    assert refused.status_code == 303 and waiting.confirmed_at is None  # not the one who asked
    head_browser = app.test_client()
    people.login(head_browser, "head_cui", head)
    assert head_browser.post("/roles-to-confirm?lang=en", data={
        "membership_id": str(waiting.id), "decision": "confirm"}).status_code == 303
    db.session.expire_all()
    assert waiting.confirmed_at is not None
    warning = "No custodian of Yanji holds its reporter identity key"
    assert warning in html.unescape(admin.get("/admin?lang=en").get_data(as_text=True))
    # The administrator hands the key from the printed custodian recovery key; the unit key's
    # recovery key is not it, and an officer who is no custodian cannot receive it.
    page = admin.get("/staff/keys?lang=en").get_data(as_text=True)
    assert "Reports key" in page and "Reporter identity key (custodians)" in page
    form = {"purpose": "identity", "identity-unit": "yanji", "identity-user_id": str(li.id)}
    wrong = admin.post("/staff/keys?lang=en", data={
        **form, "identity-recovery_key": keys[0]["yanji"]})
    assert wrong.status_code == 303
    pak = user_named("intake_pak")
    outsider = admin.post("/staff/keys?lang=en", data={
        **form, "identity-user_id": str(pak.id),
        "identity-recovery_key": custodian_keys["yanji"]})
    assert outsider.status_code == 303
    words = html.unescape(visible_text(admin.get("/staff/keys?lang=en").get_data(as_text=True)))
    assert "That is not the custodian recovery key of Yanji" in words
    assert "is not a confirmed custodian of Yanji" in words
    assert not custody.active_grants(db.session, pak.id, KeyPurpose.IDENTITY)
    granted = admin.post("/staff/keys?lang=en", data={
        **form, "identity-recovery_key": custodian_keys["yanji"]})
    assert granted.status_code == 303
    assert len(events("identity_key.recovered")) == 1
    assert warning not in html.unescape(admin.get("/admin?lang=en").get_data(as_text=True))
    # The custodian hands it on from the key they hold to another (confirmed) custodian.
    people.create("keeper_jin", "yanji", "custodian", grant=False)
    jin = user_named("keeper_jin")
    li_browser = app.test_client()
    people.login(li_browser, "case_li", li.id)
    handed = li_browser.post("/staff/keys?lang=en", data={
        "purpose": "identity", "identity-unit": "yanji", "identity-user_id": str(jin.id)})
    assert handed.status_code == 303
    assert len(events("identity_key.granted")) == 1
    personal = custody.unlock_personal(jin, Staff.PASSWORD)
    held = custody.held_identity_keys(db.session, jin, personal).get(unit_named("yanji").id)
    assert held is not None and crypto.recipient_of(held) == unit_named("yanji").identity_key
    # The custodian role opens no tip: keeper_jin holds the identity key and nothing else.
    file_real_name(app.test_client())
    tip = db.session.scalars(select(Tip)).one()
    jin_browser = app.test_client()
    people.login(jin_browser, "keeper_jin", jin.id)
    assert jin_browser.get(f"/staff/tips/{tip.id}").status_code == 404
    # An administrator revokes it; the page says who holds which key.
    grant_row = db.session.scalars(select(UnitKeyGrant).where(
        UnitKeyGrant.user_id == jin.id, UnitKeyGrant.revoked_at.is_(None))).one()
    assert grant_row.purpose == KeyPurpose.IDENTITY
    revoked = admin.post("/staff/keys?lang=en", data={
        "purpose": "identity", "action": "revoke", "grant_id": str(grant_row.id)})
    assert revoked.status_code == 303
    assert len(events("identity_key.revoked")) == 1
    assert not custody.active_grants(db.session, jin.id, KeyPurpose.IDENTITY)
    # Auditors read both kinds of key, each named in words.
    auditor = people.create("auditor_wu", "zhou", "auditor", grant=False)
    audit_browser = app.test_client()
    people.login(audit_browser, "auditor_wu", auditor)
    words = html.unescape(visible_text(audit_browser.get("/audit/decryptions?lang=en")
                                       .get_data(as_text=True)))
    for said in ("Reporter identity key handed to a custodian with the custodian recovery key",
                 "Reporter identity key handed to a custodian", "Reporter identity key revoked",
                 "Reporter identity key (custodians)", "Reports key"):
        assert said in words, said


def _make_old_style(tip: Tip, identity: dict, key: str) -> None:
    """The tip as it was stored before identities were sealed apart."""
    content = json.loads(crypto.open_sealed(tip.content, [key]))
    content.pop("reporter", None)
    content["identity"] = identity
    tip.content = crypto.seal(json.dumps(content, ensure_ascii=False).encode(),
                              tip_recipients(db.session, tip))
    db.session.delete(db.session.get(TipIdentity, tip.id))
    db.session.commit()


def test_separate_moves_old_identities_out_and_is_idempotent(app, runner, keys, people,
                                                             tmp_path) -> None:
    content_keys, custodian_keys = keys
    file_real_name(app.test_client())
    tip = db.session.scalars(select(Tip)).one()
    _make_old_style(tip, {"name": NAME, "phone": PHONE, "id_number": ID_NUMBER,
                          "address": ADDRESS, "contact_ok": True, "reward": True},
                    content_keys["yanji"])
    # Before it runs, the officer's page still shows no identity, only the flags.
    browser, _ = signed_in(app, people, "intake")
    page = browser.get(f"/staff/tips/{tip.id}?lang=en").get_data(as_text=True)
    assert NAME not in page and PHONE not in page and ID_NUMBER not in page
    assert "Real name · may be contacted · interested in a reward" in visible_text(page)
    # A key that does not open the tip leaves it, and says so.
    tumen = tmp_path / "tumen.txt"
    tumen.write_text(content_keys["tumen"] + "\n")
    left = runner.invoke(args=["identities", "separate", "--identity", str(tumen)])
    assert left.exit_code == 0, left.output
    assert "0 identities sealed apart" in left.output and "1 real-name tips" in left.output
    zhou = tmp_path / "zhou.txt"
    zhou.write_text(content_keys["zhou"] + "\n")
    done = runner.invoke(args=["identities", "separate", "--identity", str(zhou)])
    assert done.exit_code == 0, done.output
    assert "1 identities sealed apart" in done.output
    db.session.expire_all()
    tip = db.session.get(Tip, tip.id)
    content = json.loads(crypto.open_sealed(tip.content, [content_keys["yanji"]]))
    assert content["identity"] is None
    assert content["reporter"] == {"contact_ok": True, "reward": True}
    assert NAME not in json.dumps(content, ensure_ascii=False)
    assert open_identity(db.session, tip.id, [custodian_keys["yanji"]]).name == NAME
    again = runner.invoke(args=["identities", "separate", "--identity", str(zhou)])
    assert again.exit_code == 0 and "0 identities sealed apart" in again.output
    counts = [json.loads(e.details)["tips"] for e in events("identity.separated")]
    assert counts == [0, 1, 0]


def test_keys_command_gives_an_older_installation_its_custodian_keys(app, runner, keys,
                                                                   tmp_path) -> None:
    for unit in db.session.scalars(select(Unit)):
        unit.identity_key = None  # as set up before custodians existed
    db.session.commit()
    refused = runner.invoke(args=["identities", "separate", "--identity",
                                  str(_key_file(tmp_path, keys[0]["zhou"]))])
    assert refused.exit_code == 2 and "identities keys" in refused.stderr
    out = tmp_path / "custodians"
    made = runner.invoke(args=["identities", "keys", "--out", str(out)])
    assert made.exit_code == 0, made.output
    files = {p.name: p for p in out.iterdir()}
    handling = {"zhou", "yanji", "tumen", "dunhua", "hunchun", "longjing", "helong",
                "wangqing", "antu"}
    assert set(files) == {f"custodian-{code}.txt" for code in handling}
    for code in handling:
        path = files[f"custodian-{code}.txt"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        identity = re.search(r"^AGE-SECRET-KEY-1\S+$", path.read_text(), re.M).group(0)
        assert crypto.recipient_of(crypto.AgeIdentity(identity)) == unit_named(code).identity_key
    assert len(events("identity_key.created")) == 2 * len(handling)  # setup, then this
    assert "nothing to make" in runner.invoke(args=["identities", "keys"]).output


def _key_file(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(key + "\n")
    return path
