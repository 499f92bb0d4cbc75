"""Triage through the staff pages: who sees what, every action and what the reporter sees."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import AuditEvent, Category, Message, Tip, UnitKeyGrant, User
from portal.security import crypto
from portal.web.extensions import db
from tests.conftest import ADMIN_PASSWORD, COSTS, FAST_ARGON2
from tests.helpers import attachment_ciphertext, jpeg_with_metadata

RECEIPT = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")


def file_tip(client, county: str | None = "yanji", narrative: str = "oil in the river",
             **extra) -> tuple[int, str]:
    body = {"narrative": narrative, **extra}
    if county:
        body["county"] = county
    response = client.post("/api/v1/tips", json=body)
    assert response.status_code == 201
    tip_id = db.session.scalar(select(func.max(Tip.id)))
    return tip_id, response.get_json()["receipt"]


def opened_events() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "tip.opened"))


def test_another_countys_officer_cannot_list_open_or_guess(app, client, staff) -> None:
    yanji_tip, _ = file_tip(client, "yanji", "SECRET-YANJI-CONTENT")
    dunhua_tip, _ = file_tip(client, "dunhua", "dunhua content")
    uid = staff.create("dunhua_officer", "dunhua")
    officer = app.test_client()
    staff.login(officer, "dunhua_officer", uid)
    queue = officer.get("/staff/").get_data(as_text=True)
    assert f"#{dunhua_tip}<" in queue and f"#{yanji_tip}<" not in queue
    for path in (f"/staff/tips/{yanji_tip}", f"/staff/tips/{yanji_tip}/accept",
                 "/staff/tips/999999"):
        response = officer.get(path) if not path.endswith("accept") else officer.post(path)
        assert response.status_code == 404
        assert b"SECRET-YANJI-CONTENT" not in response.data
    assert opened_events() == 0  # nothing was decrypted
    # The same through the API, and attachments by id too.
    token = officer_token(app, staff, "dunhua_officer", uid)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get(f"/api/v1/staff/tips/{yanji_tip}", headers=headers).status_code == 404
    listed = api.get("/api/v1/staff/tips", headers=headers).get_json()["tips"]
    assert [t["id"] for t in listed] == [dunhua_tip]
    assert opened_events() == 0


def officer_token(app, staff, username: str, uid: int, offset_steps: int = 1) -> str:
    response = app.test_client().post("/api/v1/staff/token", json={
        "username": username, "password": staff.PASSWORD,
        "otp": staff.code(uid, offset_steps=offset_steps)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def test_bureau_officers_see_every_unit(app, client, staff) -> None:
    a, _ = file_tip(client, "yanji")
    b, _ = file_tip(client, "antu")
    c, _ = file_tip(client, None)
    uid = staff.create("zhou_officer", "zhou")
    officer = app.test_client()
    staff.login(officer, "zhou_officer", uid)
    queue = officer.get("/staff/").get_data(as_text=True)
    for tip_id in (a, b, c):
        assert f"#{tip_id}<" in queue
        assert officer.get(f"/staff/tips/{tip_id}").status_code == 200


def test_administrator_without_a_grant_reads_no_tip(app, client, staff) -> None:
    tip_id, _ = file_tip(client, "yanji", "ADMIN-MUST-NOT-READ")
    admin = db.session.scalars(select(User).where(User.username == "admin")).one()
    import pyotp

    from portal.security.auth import begin_enrollment

    secret = begin_enrollment(admin, app.config["SECRET_KEY"]).secret
    admin.totp_confirmed_at = admin.created_at
    db.session.commit()
    browser = app.test_client()
    browser.post("/staff/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert browser.post("/staff/login/code",
                        data={"code": pyotp.TOTP(secret).now()}).status_code == 302
    assert browser.get("/admin/users").status_code == 200
    assert f"#{tip_id}<" not in browser.get("/staff/").get_data(as_text=True)
    page = browser.get(f"/staff/tips/{tip_id}")
    assert page.status_code == 404 and b"ADMIN-MUST-NOT-READ" not in page.data
    # Even made a member of the unit, without a granted key nothing opens.
    from auditlog.events import SYSTEM
    from portal.security.accounts import add_membership

    add_membership(db.session, admin, "yanji", "intake_officer", actor=SYSTEM)
    db.session.commit()
    page = browser.get(f"/staff/tips/{tip_id}")
    assert page.status_code == 403 and b"ADMIN-MUST-NOT-READ" not in page.data
    assert opened_events() == 0
    # And an administrator cannot grant a key they do not hold.
    officer = staff.create("officer_y", "yanji")
    grant = browser.post("/staff/keys", data={"unit": "yanji", "user_id": str(officer)})
    assert grant.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(UnitKeyGrant).where(
        UnitKeyGrant.granted_by_id == admin.id)) == 0


def test_key_grants_by_holder_and_by_recovery_key(app, client, staff, portal_keys) -> None:
    tip_id, _ = file_tip(client, "tumen", "tumen content")
    holder = staff.create("holder", "tumen")
    newcomer = staff.create("newcomer", "tumen", grant=False)
    new_browser = app.test_client()
    staff.login(new_browser, "newcomer", newcomer)
    assert new_browser.get(f"/staff/tips/{tip_id}").status_code == 403
    holder_browser = app.test_client()
    staff.login(holder_browser, "holder", holder)
    granted = holder_browser.post("/staff/keys", data={"unit": "tumen",
                                                       "user_id": str(newcomer)})
    assert granted.status_code == 303
    assert b"tumen content" in new_browser.get(f"/staff/tips/{tip_id}").data
    # The recovery key can grant too; a wrong one is refused.
    third = staff.create("third", "tumen", grant=False)
    wrong = holder_browser.post("/staff/keys", data={
        "unit": "tumen", "user_id": str(third), "recovery_key": portal_keys["yanji"]})
    assert wrong.status_code == 303
    holder_browser.post("/staff/keys", data={"unit": "tumen", "user_id": str(third),
                                             "recovery_key": portal_keys["tumen"]})
    actions = list(db.session.scalars(select(AuditEvent.action)
                                      .where(AuditEvent.action.like("unit_key.%"))))
    # The holder's own key came from the recovery key at creation, the third officer's too;
    # the wrong recovery key granted nothing.
    assert actions.count("unit_key.granted") == 1 and actions.count("unit_key.recovered") == 2
    assert db.session.scalar(select(func.count()).select_from(UnitKeyGrant).where(
        UnitKeyGrant.user_id == third, UnitKeyGrant.revoked_at.is_(None))) == 1


def test_admin_password_reset_loses_the_key_not_the_access(app, client, staff) -> None:
    tip_id, _ = file_tip(client, "hunchun", "hunchun content")
    officer = staff.create("reset_me", "hunchun")
    holder = staff.create("colleague", "hunchun")
    from auditlog.events import SYSTEM
    from portal.security.accounts import complete_reset
    from portal.security.custody import reset_password

    user = db.session.get(User, officer)
    assert reset_password(db.session, user, actor=SYSTEM) == 1
    complete_reset(db.session, user, "the new password 1", staff.code(officer, -1),
                   secret_key=app.config["SECRET_KEY"], **COSTS)
    from portal.security.auth import begin_enrollment

    staff.secrets[officer] = begin_enrollment(user, app.config["SECRET_KEY"]).secret
    user.totp_confirmed_at = user.created_at
    db.session.commit()
    browser = app.test_client()
    staff_password = staff.PASSWORD
    staff.PASSWORD = "the new password 1"
    try:
        staff.login(browser, "reset_me", officer)
    finally:
        staff.PASSWORD = staff_password
    assert browser.get(f"/staff/tips/{tip_id}").status_code == 403
    colleague = app.test_client()
    staff.login(colleague, "colleague", holder)
    colleague.post("/staff/keys", data={"unit": "hunchun", "user_id": str(officer)})
    assert b"hunchun content" in browser.get(f"/staff/tips/{tip_id}").data


def act(browser, tip_id: int, action: str, **data) -> str:
    """Post an action; the page that follows. Done: Post/Redirect/Get. Refused: nothing changed,
    and the tip page comes back at once (400) with the reason beside the form and the input."""
    response = browser.post(f"/staff/tips/{tip_id}/{action}?lang=en", data=data)
    if response.status_code == 400:
        return response.get_data(as_text=True)
    assert response.status_code == 303
    return browser.get(f"/staff/tips/{tip_id}?lang=en").get_data(as_text=True)


def followup(client, receipt: str) -> dict:
    return client.post("/api/v1/followup", json={"receipt": receipt},
                       headers={"Accept-Language": "en"}).get_json()


def test_triage_walkthrough_with_what_the_reporter_sees(app, client, staff) -> None:
    tip_id, receipt = file_tip(client, "longjing", "quarry at night", place="North hill")
    uid = staff.create("intake", "longjing", extra=(("longjing", "case_officer"),))
    browser = app.test_client()
    staff.login(browser, "intake", uid)
    page = act(browser, tip_id, "accept")
    assert "Classify the tip into one of the 17 categories before accepting it." in page
    page = act(browser, tip_id, "classify", category="P05")
    assert "P05" in page
    tip = db.session.get(Tip, tip_id)
    db.session.refresh(tip)
    received_due = tip.due_at
    assert tip.due_step == "tip.accept"
    act(browser, tip_id, "accept")
    db.session.refresh(tip)
    assert tip.status == "accepted" and tip.due_step == "tip.close" and tip.due_at > received_due
    assert followup(client, receipt)["status"] == "accepted"
    act(browser, tip_id, "message", body="Which road do the trucks use?")
    seen = followup(client, receipt)
    assert seen["messages"][-1] == {**seen["messages"][-1], "from": "staff",
                                    "body": "Which road do the trucks use?"}
    page = act(browser, tip_id, "extend", days="31", reason="too long")
    assert "at most 30 days" in page
    act(browser, tip_id, "extend", days="20", reason="Waiting for the lab results")
    page = act(browser, tip_id, "extend", days="5", reason="again")
    assert "already been extended once" in page
    notes = [u for u in followup(client, receipt)["updates"] if u["status"] == "extended"]
    assert notes and notes[0]["note"] == "Waiting for the lab results"
    act(browser, tip_id, "verify")
    act(browser, tip_id, "priority", priority="3")
    act(browser, tip_id, "close", reason="The quarry was closed and fined.")
    db.session.refresh(tip)
    assert (tip.status, tip.priority, tip.due_at) == ("closed", 3, None)
    final = followup(client, receipt)
    assert final["status"] == "closed"
    assert final["updates"][-1]["note"] == "The quarry was closed and fined."
    actions = [e.action for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == tip_id,
                                 AuditEvent.object_type == "tip").order_by(AuditEvent.id))]
    for expected in ("tip.received", "tip.classified", "tip.accepted", "message.to_reporter",
                     "tip.deadline_extended", "tip.verification_started", "tip.priority_set",
                     "tip.closed", "tip.opened"):
        assert expected in actions


def test_decline_with_reason_the_reporter_reads(app, client, staff) -> None:
    tip_id, receipt = file_tip(client, "helong")
    uid = staff.create("helong_intake", "helong")
    browser = app.test_client()
    staff.login(browser, "helong_intake", uid)
    page = act(browser, tip_id, "decline", reason="")
    assert "Please give a reason." in page
    act(browser, tip_id, "decline", reason="Not in our jurisdiction; call 12345.")
    seen = followup(client, receipt)
    assert seen["status"] == "declined"
    assert seen["updates"][-1]["note"] == "Not in our jurisdiction; call 12345."


def test_case_officer_may_not_accept_and_intake_may_not_close(app, client, staff) -> None:
    tip_id, _ = file_tip(client, "antu")
    case = staff.create("case", "antu", "case_officer")
    browser = app.test_client()
    staff.login(browser, "case", case)
    page = act(browser, tip_id, "classify", category="P01")
    assert "Your role does not allow this action" in page
    assert db.session.get(Tip, tip_id).category_id is None


def test_transfer_reencrypts_for_the_new_unit(app, client, staff, portal_keys) -> None:
    response = client.post("/api/v1/tips", content_type="multipart/form-data", data={
        "narrative": "belongs to wangqing", "county": "yanji",
        "attachments": [(io.BytesIO(jpeg_with_metadata()), "p.jpg"),
                        (io.BytesIO(b"notes " * 50_000), "n.txt")]})
    assert response.status_code == 201
    receipt = response.get_json()["receipt"]
    tip_id = db.session.scalar(select(func.max(Tip.id)))
    client.post("/api/v1/followup/messages", json={"receipt": receipt, "body": "more"})
    uid = staff.create("mover", "yanji")
    browser = app.test_client()
    staff.login(browser, "mover", uid)
    act(browser, tip_id, "transfer", unit="wangqing", reason="It is in Wangqing")
    tip = db.session.get(Tip, tip_id)
    db.session.refresh(tip)
    assert tip.unit.code == "wangqing"
    for holder, opens in (("wangqing", True), ("zhou", True), ("yanji", False)):
        for ciphertext in [tip.content, *(m.body for m in tip.messages),
                           *(attachment_ciphertext(db.session, a.id) for a in tip.attachments)]:
            if opens:
                crypto.open_sealed(ciphertext, [portal_keys[holder]])
            else:
                with pytest.raises(crypto.CryptoError):
                    crypto.open_sealed(ciphertext, [portal_keys[holder]])
    text_file = next(a for a in tip.attachments if a.family == "text")
    plain = crypto.open_sealed(attachment_ciphertext(db.session, text_file.id),
                               [portal_keys["wangqing"]])
    assert plain == b"notes " * 50_000
    # The reporter still reads everything with the receipt.
    seen = followup(client, receipt)
    assert [m["body"] for m in seen["messages"]] == ["more"]
    # The yanji officer no longer sees it.
    assert browser.get(f"/staff/tips/{tip_id}").status_code == 404
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "tip.transferred")).one()
    assert json.loads(event.details) == {"from_unit": "yanji", "to_unit": "wangqing"}


def test_duplicates_assignment_and_related_tips(app, client, staff) -> None:
    first, _ = file_tip(client, "yanji", "x", responsible="Tianyuan Chemical Co.")
    second, _ = file_tip(client, "yanji", "y", responsible="tianyuan chemical co")
    uid = staff.create("linker", "yanji")
    colleague = staff.create("colleague", "yanji", "case_officer")
    browser = app.test_client()
    staff.login(browser, "linker", uid)
    page = browser.get(f"/staff/tips/{second}").get_data(as_text=True)
    assert f'href="/staff/tips/{first}"' in page  # related by blind index
    act(browser, second, "duplicate", original_id=str(first))
    page = act(browser, first, "duplicate", original_id=str(second))
    assert "already marked as a duplicate" in page
    act(browser, second, "assign", user_id=str(colleague))
    tip = db.session.get(Tip, second)
    db.session.refresh(tip)
    assert (tip.duplicate_of_id, tip.assigned_to_id) == (first, colleague)


def hotline_token(browser) -> str:
    page = browser.get("/staff/hotline").get_data(as_text=True)
    return re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)


def test_hotline_entry_reads_back_a_receipt(app, client, staff) -> None:
    uid = staff.create("operator", "zhou")
    browser = app.test_client()
    staff.login(browser, "operator", uid)
    response = browser.post("/staff/hotline", data={
        "channel": "hotline", "category": "Z02", "county": "antu", "narrative": "straw burning",
        "name": "", "phone": "", "language": "ko", "submission": hotline_token(browser)})
    assert response.status_code == 201
    receipt = RECEIPT.search(response.get_data(as_text=True)).group(1)
    tip = db.session.scalars(select(Tip)).one()
    assert (tip.channel, tip.unit.code, tip.category.code) == ("hotline", "antu", "Z02")
    assert followup(client, receipt)["status"] == "received"
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "tip.received")).one()
    assert (event.actor_type, event.actor_id) == ("staff", uid)


def test_message_from_officer_appears_on_the_followup_page(app, client, staff) -> None:
    tip_id, receipt = file_tip(client, "yanji")
    uid = staff.create("writer", "yanji")
    browser = app.test_client()
    staff.login(browser, "writer", uid)
    act(browser, tip_id, "message", body="Please send a photo of the pipe.")
    page = client.post("/followup?lang=en", data={"receipt": receipt}).get_data(as_text=True)
    assert "Please send a photo of the pipe." in page and "Officer" in page
    assert db.session.scalars(select(Message)).one().author == "staff"


def test_category_edit_makes_a_version_and_old_tips_keep_theirs(app, client, staff) -> None:
    tip_id, _ = file_tip(client, "yanji", category="P04")
    old_id = db.session.get(Tip, tip_id).category_id
    from auditlog.events import SYSTEM
    from portal.triage.categories import CategoryEdit, edit_category

    new = edit_category(db.session, "P04", CategoryEdit(
        names={"zh": "暗管偷排（新）", "ko": "암관 (새)", "en": "Hidden discharge (new)"},
        descriptions={}, usual_receiver="public_security"), actor=SYSTEM)
    db.session.commit()
    assert new.version == 2 and new.id != old_id
    assert db.session.get(Tip, tip_id).category_id == old_id
    assert db.session.get(Category, old_id).current is False
    later, _ = file_tip(client, "yanji", category="P04")
    assert db.session.get(Tip, later).category_id == new.id


def test_queue_filters_counts_and_keyset_pages(app, client, staff) -> None:
    from auditlog.events import SYSTEM
    from portal.intake import filing
    from portal.security.access import principal_for
    from portal.triage import queue as tip_queue
    from portal.triage import tip_actions

    limits = filing.Limits(10, 10**6, 10**6)
    base = datetime(2026, 11, 2, 9, 0).astimezone()
    ids = []
    for i in range(12):
        draft = filing.TipDraft(narrative=f"tip {i}", county="yanji" if i % 3 else "tumen",
                                category="P01" if i % 2 else None,
                                identity=filing.Identity(name="N") if i == 4 else None)
        filed = filing.file_tip(db.session, draft, [], limits=limits, receipt_cost=FAST_ARGON2,
                                actor=SYSTEM, now=base + timedelta(hours=i))
        ids.append(filed.tip_id)
    uid = staff.create("viewer", "zhou")
    principal = principal_for(db.session, db.session.get(User, uid))
    seen: list[int] = []
    cursor = None
    while True:
        page = tip_queue.queue(db.session, principal, tip_queue.QueueFilter(cursor=cursor),
                               limit=5, now=base)
        seen += [r.id for r in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))
    only = lambda **f: [r.id for r in tip_queue.queue(  # noqa: E731
        db.session, principal, tip_queue.QueueFilter(**f), now=base).rows]
    assert set(only(county="tumen")) == {ids[i] for i in range(12) if i % 3 == 0}
    assert set(only(category="unclassified")) == {ids[i] for i in range(0, 12, 2)}
    assert set(only(category="P01")) == {ids[i] for i in range(1, 12, 2)}
    assert only(real_name=True) == [ids[4]]
    assert only(channel="hotline") == []
    assert only(has_attachments=True) == []
    # 15 days to accept: seen a month later, all are overdue; seen at once, none is.
    assert len(only(deadline="overdue")) == 0
    month_later = base + timedelta(days=30)
    overdue = tip_queue.queue(db.session, principal, tip_queue.QueueFilter(deadline="overdue"),
                         now=month_later).rows
    assert len(overdue) == 12 and {r.deadline_state for r in overdue} == {"overdue"}
    by_deadline = [r.id for r in tip_queue.queue(
        db.session, principal, tip_queue.QueueFilter(sort="deadline"), now=base).rows]
    assert by_deadline == ids
    counts = tip_queue.category_counts(db.session, principal)
    assert counts == {None: 6, "P01": 6}
    with pytest.raises(tip_actions.Refused):
        tip_queue.queue(db.session, principal, tip_queue.QueueFilter(cursor="%%%"), now=base)


def test_the_queue_does_not_even_load_ciphertext(app, client, staff) -> None:
    from sqlalchemy import event

    from portal.security.access import principal_for
    from portal.triage import queue as tip_queue

    file_tip(client, "yanji")
    principal = principal_for(db.session, db.session.get(User, staff.create("lister", "zhou")))
    db.session.expunge_all()
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        rows = tip_queue.queue(db.session, principal, tip_queue.QueueFilter()).rows
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(rows) == 1
    listing = next(s for s in statements if "FROM tips" in s and "ORDER BY" in s)
    for column in ("tips.content", "receipt_lookup", "receipt_recipient", "submission_hash"):
        assert column not in listing
