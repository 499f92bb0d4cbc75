"""Retention (portal/operations/retention.py): which closed tips are due — natural days across the
Spring
Festival holidays, the current version of the category deciding — the holds (legal hold, a case
still at work, archived), a dry run that changes nothing, a run that empties the content and keeps
the metadata, and a second run that does nothing more."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from auditlog.events import SYSTEM
from models import (
    Attachment,
    AuditEvent,
    BlobChunk,
    Case,
    CaseTip,
    Message,
    Referral,
    Tip,
    TipStatus,
    TipUpdate,
    Unit,
)
from models.identity import IdentityRequest, Redaction, TipIdentity
from portal.intake import filing
from portal.operations import retention
from portal.security import crypto
from portal.triage.categories import CategoryEdit, edit_category, set_retention
from referral.calendar import load_calendar
from tests.conftest import COSTS, FAST_ARGON2
from tests.helpers import MemoryUpload, jpeg_with_metadata

CST = ZoneInfo("Asia/Shanghai")
LIMITS = filing.Limits(max_files=10, max_file_bytes=5 * 1024 * 1024,
                       max_clean_bytes=5 * 1024 * 1024)
NOW = datetime(2026, 3, 19, 12, 0, tzinfo=CST)  # 30 natural days after 17 February, noon
TABLES = ("tips", "attachments", "blob_chunks", "messages", "tip_updates", "tip_identities",
          "identity_requests", "redactions", "audit_events", "categories")


def cst(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CST)


class World:
    """Tips of 延吉, filed for real (sealed, with a photo), then closed on chosen days."""

    def __init__(self, session, keys) -> None:
        from portal.security.accounts import create_user

        self.session, self.keys = session, keys
        self.user = create_user(session, "retention-head", "officer password 2026", **COSTS,
                                actor=SYSTEM)
        self.psb = session.scalars(select(Unit).where(Unit.code == "psb_zhou")).one()
        self.yanji = session.scalars(select(Unit).where(Unit.code == "yanji")).one()
        self.cases = 0

    def tip(self, closed_at: datetime | None, category: str | None = "P01", *,
            status: str = TipStatus.CLOSED, photo: bool = False) -> Tip:
        uploads = [MemoryUpload("river.jpg", jpeg_with_metadata())] if photo else []
        filed = filing.file_tip(self.session, filing.TipDraft(
            narrative="污水直排布尔哈通河", county="yanji", category=category,
            responsible="某某化工厂", place="延吉市北山街"), uploads, limits=LIMITS,
            receipt_cost=FAST_ARGON2, blind_key=b"k" * 32)
        tip = self.session.get(Tip, filed.tip_id)
        tip.status, tip.closed_at = status, closed_at
        recipients = [crypto.recipient_of(self.keys["yanji"])]
        self.session.add(Message(tip_id=tip.id, author="staff", staff_user_id=self.user.id,
                                 body=crypto.seal(b"we will check", recipients)))
        self.session.add(TipUpdate(tip_id=tip.id, status="closed", at=closed_at or NOW,
                                   note=crypto.seal(b"the factory was fined", recipients)))
        self.session.add(TipIdentity(tip_id=tip.id, sealed=crypto.seal(b'{"name": "x"}',
                                                                        recipients)))
        self.session.add(IdentityRequest(tip_id=tip.id, requester_id=self.user.id,
                                         purpose="contact", reason="call back",
                                         state="granted", sealed_copy=b"sealed copy"))
        self.session.commit()
        return tip

    def case_of(self, tip: Tip, *referral_states: str) -> Case:
        self.cases += 1
        case = Case(number=f"测试〔2026〕第{self.cases}号", year=2026, seq=self.cases,
                    unit_id=self.yanji.id, created_by_id=self.user.id, content=b"sealed")
        self.session.add(case)
        self.session.flush()
        self.session.add(CaseTip(case_id=case.id, tip_id=tip.id))
        for state in referral_states:
            referral = Referral(case_id=case.id, unit_id=case.unit_id,
                                receiving_unit_id=self.psb.id, state=state,
                                created_by_id=self.user.id)
            self.session.add(referral)
            self.session.flush()
            self.session.add(Redaction(referral_id=referral.id, tip_id=tip.id,
                                       spec=b"sealed phrases", count=1,
                                       created_by_id=self.user.id))
        self.session.commit()
        return case


def dump(session) -> dict[str, list]:
    """Every row of the tables retention may touch, as plain values."""
    return {table: sorted(tuple(row) for row in session.execute(text(
        f"SELECT * FROM {table}")))  # noqa: S608 - table names are the constants above
        for table in TABLES}


def test_due_counts_natural_days_across_the_spring_festival(app, portal_keys) -> None:
    from portal.web.extensions import db

    world = World(db.session, portal_keys)
    set_retention(db.session, "P01", 30, actor=SYSTEM)
    before = world.tip(cst(2, 13))  # the Friday before the holidays: due since 15 March
    during = world.tip(cst(2, 17, 12))  # the third day of the holidays: due at NOW exactly
    later = world.tip(cst(2, 17, 12, 1))  # a minute later: not yet
    last_day = world.tip(cst(2, 23))  # the last holiday: due 25 March
    declined = world.tip(cst(2, 16), status=TipStatus.DECLINED)  # not accepted: finished too
    world.tip(None, status=TipStatus.VERIFYING)  # still being handled
    world.tip(cst(1, 5), category="P02")  # its category keeps tips for ever
    world.tip(cst(1, 5), category=None)  # never classified: kept
    due = retention.due(db.session, NOW)
    assert [c.tip_id for c in due] == [before.id, declined.id, during.id]
    assert {c.tip_id for c in due}.isdisjoint({later.id, last_day.id})
    first = due[0]
    assert (first.unit_code, first.category_code, first.retention_days) == ("yanji", "P01", 30)
    assert first.due_since == cst(3, 15)
    # Working days would have been another answer: 30 of them from 17 February end in April.
    assert load_calendar(db.session).add_working_days(date(2026, 2, 17), 30) > NOW.date()

    # The current version of the category decides, whichever version the tip was filed under.
    edit_category(db.session, "P01", CategoryEdit(
        names={"zh": "新名称", "ko": "새 이름", "en": "New name"}, descriptions={},
        usual_receiver=None), actor=SYSTEM)
    assert len(retention.due(db.session, NOW)) == 3  # the new version carries the 30 days
    set_retention(db.session, "P01", 60, actor=SYSTEM)
    assert retention.due(db.session, NOW) == []
    set_retention(db.session, "P01", None, actor=SYSTEM)
    assert retention.due(db.session, cst(12, 31)) == []


def test_holds_keep_a_tip(app, portal_keys) -> None:
    from portal.web.extensions import db

    world = World(db.session, portal_keys)
    set_retention(db.session, "P01", 30, actor=SYSTEM)
    free = world.tip(cst(2, 13))
    on_hold = world.tip(cst(2, 13))
    on_hold.legal_hold = True
    archived = world.tip(cst(2, 13))
    archived.archived_at = cst(3, 1)
    in_open_case = world.tip(cst(2, 13))
    world.case_of(in_open_case)  # a case without a referral yet: still at work
    referred = world.tip(cst(2, 13))
    world.case_of(referred, "prosecuted", "handed_over")  # one referral not finished
    finished = world.tip(cst(2, 13))
    world.case_of(finished, "prosecuted", "returned")  # every referral finished
    db.session.commit()
    assert {c.tip_id for c in retention.due(db.session, NOW)} == {free.id, finished.id}
    on_hold.legal_hold = False
    db.session.commit()
    assert on_hold.id in {c.tip_id for c in retention.due(db.session, NOW)}


def test_dry_run_changes_nothing_and_the_run_keeps_only_metadata(app, portal_keys) -> None:
    from portal.web.extensions import db

    world = World(db.session, portal_keys)
    set_retention(db.session, "P01", 30, actor=SYSTEM)
    gone = world.tip(cst(2, 13), photo=True)
    world.case_of(gone, "returned")  # its finished referral's redaction goes with it
    kept = world.tip(cst(2, 23), photo=True)
    db.session.commit()
    metadata = {t.id: (t.unit_id, t.county, t.category_id, t.channel, t.language, t.status,
                       t.real_name, t.attachment_count, t.received_at, t.closed_at,
                       t.receipt_lookup) for t in (gone, kept)}
    gone_files = [a.id for a in gone.attachments]
    assert gone_files and gone.responsible_index
    before = dump(db.session)

    report = retention.destroy(db.session, NOW, dry_run=True, actor=SYSTEM)
    assert report.dry_run and report.destroyed == 0
    assert [c.tip_id for c in report.candidates] == [gone.id]
    assert dump(db.session) == before

    report = retention.destroy(db.session, NOW, dry_run=False, actor=SYSTEM)
    assert report.destroyed == 1
    db.session.expire_all()
    tip = db.session.get(Tip, gone.id)
    assert tip.content == retention.TOMBSTONE and tip.archived_at is not None
    assert tip.responsible_index == filing.NO_INDEX == tip.place_index
    assert (tip.unit_id, tip.county, tip.category_id, tip.channel, tip.language, tip.status,
            tip.real_name, tip.attachment_count, tip.received_at, tip.closed_at,
            tip.receipt_lookup) == metadata[gone.id]
    files = list(db.session.scalars(select(Attachment).where(Attachment.tip_id == gone.id)))
    assert [a.id for a in files] == gone_files
    assert all(a.meta == b"" and a.size > 0 for a in files)
    assert db.session.scalar(select(func.count()).select_from(BlobChunk).where(
        BlobChunk.attachment_id.in_(gone_files))) == 0
    assert [m.body for m in tip.messages] == [b""]
    assert [(u.status, u.note) for u in tip.updates][-1] == ("closed", None)
    assert db.session.get(TipIdentity, gone.id) is None
    assert db.session.scalars(select(IdentityRequest.sealed_copy).where(
        IdentityRequest.tip_id == gone.id)).all() == [None]
    assert db.session.scalar(select(func.count()).select_from(Redaction).where(
        Redaction.tip_id == gone.id)) == 0
    # The other tip is as it was, and sealed content still opens.
    other = db.session.get(Tip, kept.id)
    assert other.archived_at is None and json.loads(crypto.open_sealed(
        other.content, [portal_keys["yanji"]]))["narrative"] == "污水直排布尔哈通河"
    assert db.session.scalar(select(func.count()).select_from(BlobChunk).where(
        BlobChunk.attachment_id.in_([a.id for a in other.attachments]))) > 0
    assert db.session.get(TipIdentity, kept.id) is not None
    # One event, in metadata only.
    events = list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "tip.destroyed")))
    assert [(e.object_id, e.actor_type, json.loads(e.details)) for e in events] == [
        (gone.id, "system", {"category": "P01", "closed_on": "2026-02-13",
                             "retention_days": 30})]

    # Again: nothing more is due, nothing changes.
    after = dump(db.session)
    again = retention.destroy(db.session, NOW, dry_run=False, actor=SYSTEM)
    assert (again.candidates, again.destroyed) == ([], 0)
    assert dump(db.session) == after
