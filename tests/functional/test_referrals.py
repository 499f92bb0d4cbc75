"""The referral chain (两法衔接): a case from two tips walked through approval, handover, a
request for material, supplement, 不予立案, reconsideration, supervision and 立案, with every
deadline checked against dates computed by hand across the 2026 National Day holiday
(1–7 October) and its 调休 working Saturday (10 October)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from auditlog.events import SYSTEM
from models import AuditEvent, Referral, ReferralEvent, Tip, TipUpdate, User
from portal.cases import referrals
from portal.intake import filing
from portal.security import access
from portal.security.access import principal_for
from portal.security.custody import unit_identities, unlock_personal
from portal.web.extensions import db
from referral import workflow
from referral.workflow import State
from tests.conftest import FAST_ARGON2
from tests.helpers import MemoryUpload, attachment_ciphertext
from tests.unit.test_crypto import require_age

CST = ZoneInfo("Asia/Shanghai")
LIMITS = filing.Limits(10, 10**7, 10**7)


def cst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CST)


def end_of(day: str) -> datetime:
    """23:59:59 local time of an ISO day: when a day-counted period ends."""
    y, m, d = (int(x) for x in day.split("-"))
    return cst(y, m, d, 23, 59, 59)


def principal(staff, username: str):
    user = db.session.scalars(select(User).where(User.username == username)).one()
    personal = unlock_personal(user, staff.PASSWORD)
    return principal_for(db.session, user, unit_identities(db.session, user, personal))


@pytest.fixture
def chain(app, staff):
    """Two accepted tips in 延吉, a 专案组 of two case officers, a head, and liaisons of the
    prefecture public security bureau, of 延吉市公安局, and of the procuratorate."""
    for name, unit, role in (("case_a", "yanji", "case_officer"),
                             ("case_b", "yanji", "case_officer"),
                             ("head_y", "yanji", "head"),
                             ("psb_liaison", "psb_zhou", "liaison"),
                             ("other_psb", "psb_yanji", "liaison"),
                             ("proc_liaison", "proc_zhou", "liaison")):
        staff.create(name, unit, role)
    tips = []
    for text in ("black water from a hidden pipe", "the same pipe, seen from the road"):
        filed = filing.file_tip(db.session, filing.TipDraft(narrative=text, county="yanji",
                                                            category="P04"), [],
                                limits=LIMITS, receipt_cost=FAST_ARGON2, actor=SYSTEM,
                                now=cst(2026, 9, 1, 9))
        tip = db.session.get(Tip, filed.tip_id)
        tip.status = "accepted"
        tips.append((filed.tip_id, filed.receipt))
    db.session.commit()
    return tips


def form(staff, tips):
    officer = principal(staff, "case_a")
    members = [u.id for u in db.session.scalars(select(User).where(
        User.username.in_(["case_a", "case_b"])))]
    case = referrals.form_case(db.session, officer, tip_ids=[t for t, _ in tips],
                               member_ids=members, offence_code="pollution",
                               title="某化工有限公司涉嫌污染环境案",
                               summary="该公司通过暗管向布尔哈通河排放含重金属废水。",
                               now=cst(2026, 9, 20, 10))
    referrals.add_documents(db.session, officer, case.id, "investigation_report",
                            [MemoryUpload("调查报告.txt", "调查报告正文".encode())], limits=LIMITS)
    referrals.add_documents(db.session, officer, case.id, "monitoring_report",
                            [MemoryUpload("监测报告.txt", b"Cd 0.8 mg/L")], limits=LIMITS)
    referral = referrals.create_referral(db.session, officer, case.id, "psb_zhou", "proc_zhou",
                                         now=cst(2026, 9, 25, 9))
    return case, referral


def step(staff, username, referral_id, action, at, **kwargs):
    return referrals.act(db.session, principal(staff, username), referral_id, action, now=at,
                         limits=LIMITS, **kwargs)


def test_case_from_two_tips_walks_the_whole_chain(app, client, staff, chain) -> None:
    case, referral = form(staff, chain)
    assert case.number == "延州环移〔2026〕第1号"
    assert {t.tip_id for t in case.tips} == {t for t, _ in chain}
    rid = referral.id
    decision = [MemoryUpload("决定书.txt", b"decision")]

    # Submitted Mon 28 Sep: the head has 3 days, the 3rd (1 Oct) is National Day, so the period
    # ends on the next working day, Thu 8 Oct (17号 第5条; 第38条).
    r = step(staff, "case_a", rid, "submit", cst(2026, 9, 28, 10))
    assert (r.state, r.due_step, r.due_at) == ("awaiting_approval", "referral.approve",
                                              end_of("2026-10-08"))
    # Approved Wed 30 Sep 09:00: handover within 24 hours, around the clock: 1 Oct 09:00.
    r = step(staff, "head_y", rid, "approve", cst(2026, 9, 30, 9))
    assert (r.state, r.due_at) == ("approved", cst(2026, 10, 1, 9))
    r = step(staff, "case_b", rid, "hand_over", cst(2026, 9, 30, 16),
             letter_context={"contact_phone": "0433-1234567"})
    assert r.state == "handed_over" and r.due_at is None and r.package_id
    # Receipt signed Wed 7 Oct (still a holiday): 3 days → Sat 10 Oct, a 调休 working day, so
    # the period ends that Saturday (17号 第9条).
    r = step(staff, "psb_liaison", rid, "sign_receipt", cst(2026, 10, 7, 10))
    assert (r.state, r.due_step, r.due_at) == ("receipt_signed", "referral.decide_filing",
                                              end_of("2026-10-10"))
    # Material asked Thu 8 Oct: 3 days → Sun 11 Oct, a rest day → Mon 12 Oct (17号 第8条).
    r = step(staff, "psb_liaison", rid, "request_material", cst(2026, 10, 8, 9),
             reason="缺少采样记录")
    assert (r.state, r.due_at) == ("material_requested", end_of("2026-10-12"))
    r = step(staff, "case_a", rid, "supplement", cst(2026, 10, 8, 17),
             uploads=[MemoryUpload("采样记录.txt", b"samples")], document_kind="sampling_record")
    assert (r.state, r.due_at) == ("supplemented", end_of("2026-10-12"))
    # 不予立案 on Fri 9 Oct: reconsideration within 3 WORKING days: Sat 10 Oct (调休),
    # Mon 12, Tue 13 → 13 Oct (17号 第11条).
    r = step(staff, "psb_liaison", rid, "decline_filing", cst(2026, 10, 9, 10),
             reason="认为不构成犯罪", uploads=decision, document_kind="decision")
    assert (r.state, r.due_step, r.due_at) == ("not_filed", "referral.request_reconsideration",
                                              end_of("2026-10-13"))
    # Reconsideration asked Mon 12 Oct: police decide in 3 working days: 13, 14, 15 Oct.
    r = step(staff, "case_a", rid, "request_reconsideration", cst(2026, 10, 12, 9),
             uploads=[MemoryUpload("复议申请.txt", b"r")], document_kind="reconsideration_request")
    assert (r.state, r.due_at) == ("reconsideration_requested", end_of("2026-10-15"))
    r = step(staff, "psb_liaison", rid, "uphold_refusal", cst(2026, 10, 15, 14),
             reason="维持", uploads=[MemoryUpload("复议决定.txt", b"d")], document_kind="decision")
    assert r.state == "reconsideration_upheld" and r.due_at is None
    r = step(staff, "case_a", rid, "request_supervision", cst(2026, 10, 16, 9),
             reason="提请检察院立案监督",
             uploads=[MemoryUpload("监督申请.txt", b"s")], document_kind="supervision_request")
    assert r.state == "supervision_requested"
    # 立案 Tue 20 Oct: exhibits within 3 days → Fri 23 Oct (17号 第10条).
    r = step(staff, "psb_liaison", rid, "file", cst(2026, 10, 20, 11),
             uploads=[MemoryUpload("立案决定书.txt", b"f")], document_kind="decision")
    assert (r.state, r.due_step, r.due_at) == ("filed", "referral.hand_over_exhibits",
                                              end_of("2026-10-23"))

    events = db.session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == rid)
                                .order_by(ReferralEvent.id)).all()
    assert [e.action for e in events] == [
        "submit", "approve", "hand_over", "sign_receipt", "request_material", "supplement",
        "decline_filing", "request_reconsideration", "uphold_refusal", "request_supervision",
        "file"]
    # Every step that closed a running period says whether it met it.
    assert [e.on_time for e in events] == [None, True, True, None, True, True, True, True,
                                           True, None, None]
    audit = [e.action for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "referral", AuditEvent.object_id == rid))]
    assert audit.count("referral.file") == 1 and "referral.created" in audit
    # The reporters read plain words, naming no one.
    for tip_id, receipt in chain:
        seen = client.post("/api/v1/followup", json={"receipt": receipt},
                           headers={"Accept-Language": "zh"}).get_json()
        statuses = [u["status"] for u in seen["updates"]]
        assert statuses[-2:] == ["referred_police", "case_filed"]
        assert all(u["note"] is None for u in seen["updates"][-2:])
        assert "移送公安机关" in seen["updates"][-2]["status_text"]
        assert db.session.get(Tip, tip_id).status == "referred"


def test_every_disallowed_transition_is_refused_and_changes_nothing(app, staff, chain) -> None:
    _case, referral = form(staff, chain)
    # Who acts in which column of the table: a head may also act for the case team.
    people = {"case_a": ({"officer"}, principal(staff, "case_a")),
              "head_y": ({"head", "officer"}, principal(staff, "head_y")),
              "psb_liaison": ({"liaison"}, principal(staff, "psb_liaison")),
              "proc_liaison": (set(), principal(staff, "proc_liaison"))}
    refused = 0

    def snapshot() -> tuple:
        row = db.session.get(Referral, referral.id)
        counts = db.session.execute(select(
            select(func.count()).select_from(ReferralEvent).scalar_subquery(),
            select(func.count()).select_from(AuditEvent).scalar_subquery())).one()
        return (row.state, row.due_at, tuple(counts))

    before_hand_over = {State.DRAFT, State.AWAITING_APPROVAL, State.APPROVED, State.REJECTED}
    for state in State:
        allowed_here = {(t.action, t.actor.value) for t in workflow.allowed(state)}
        row = db.session.get(Referral, referral.id)
        row.state = state
        row.handed_over_at = None if state in before_hand_over else cst(2026, 9, 30)
        db.session.commit()
        before = snapshot()
        for action in {t.action for t in workflow.TRANSITIONS}:
            for who, (columns, person) in people.items():
                if any((action, column) in allowed_here for column in columns):
                    continue
                # A receiving body does not even see a referral before it is handed over.
                hidden = "liaison" in who and state in before_hand_over
                with pytest.raises(referrals.NotFound if hidden else workflow.TransitionRefused):
                    referrals.act(db.session, person, referral.id, action, reason="r",
                                  now=cst(2026, 10, 1))
                assert snapshot() == before, (state, action, who)
                refused += 1
    assert refused > 1000


def test_documents_and_reasons_the_table_requires(app, staff, chain) -> None:
    case, referral = form(staff, chain)
    # Without an investigation report a referral cannot be submitted.
    from models import Attachment, BlobChunk

    report = db.session.scalars(select(Attachment).where(
        Attachment.kind == "investigation_report")).one()
    db.session.query(BlobChunk).filter(BlobChunk.attachment_id == report.id).delete()
    db.session.delete(report)
    db.session.commit()
    with pytest.raises(workflow.TransitionRefused) as missing:
        step(staff, "case_a", referral.id, "submit", cst(2026, 9, 28))
    assert missing.value.code == "documents_missing"
    referrals.add_documents(db.session, principal(staff, "case_a"), case.id,
                            "investigation_report", [MemoryUpload("r.txt", b"r")], limits=LIMITS)
    step(staff, "case_a", referral.id, "submit", cst(2026, 9, 28))
    with pytest.raises(workflow.TransitionRefused) as no_reason:
        step(staff, "head_y", referral.id, "reject", cst(2026, 9, 29))
    assert no_reason.value.code == "reason_required"
    with pytest.raises(workflow.TransitionRefused) as not_head:
        step(staff, "case_a", referral.id, "approve", cst(2026, 9, 29))
    assert not_head.value.code == "not_your_step"
    step(staff, "head_y", referral.id, "reject", cst(2026, 9, 29), reason="证据不足")
    reasons = referrals.referral_reasons(db.session, principal(staff, "head_y"),
                                         db.session.get(Referral, referral.id))
    assert list(reasons.values()) == ["证据不足"]


def test_a_team_has_two_officers_and_tips_must_be_accepted(app, staff, chain) -> None:
    officer = principal(staff, "case_a")
    alone = [db.session.scalars(select(User.id).where(User.username == "case_a")).one()]
    with pytest.raises(referrals.CaseRefused) as small:
        referrals.form_case(db.session, officer, tip_ids=[chain[0][0]], member_ids=alone,
                            offence_code="pollution", title="t", summary="s")
    assert small.value.code == "team_too_small"
    db.session.get(Tip, chain[0][0]).status = "received"
    db.session.commit()
    pair = [*alone, db.session.scalars(select(User.id).where(User.username == "case_b")).one()]
    with pytest.raises(referrals.CaseRefused) as not_accepted:
        referrals.form_case(db.session, officer, tip_ids=[chain[0][0]], member_ids=pair,
                            offence_code="pollution", title="t", summary="s")
    assert not_accepted.value.code == "tip_not_accepted"


def test_liaisons_see_only_referrals_addressed_to_their_body(app, staff, chain) -> None:
    _case, referral = form(staff, chain)
    for who, action, at in (("case_a", "submit", cst(2026, 9, 28)),
                            ("head_y", "approve", cst(2026, 9, 29)),
                            ("case_a", "hand_over", cst(2026, 9, 29, 15))):
        step(staff, who, referral.id, action, at, letter_context={"contact_phone": "0433-1234567"})
    other = principal(staff, "other_psb")
    with pytest.raises(referrals.NotFound):
        referrals.get_referral(db.session, other, referral.id)
    with pytest.raises(referrals.NotFound):
        referrals.act(db.session, other, referral.id, "sign_receipt", now=cst(2026, 10, 1))
    # The procuratorate receives a copy: it may read, not act.
    copy = principal(staff, "proc_liaison")
    assert referrals.get_referral(db.session, copy, referral.id).id == referral.id
    assert referrals.available_actions(copy, referral) == []
    # A liaison never sees the bureau's tips.
    from portal.triage import queue as tip_queue

    assert tip_queue.queue(db.session, principal(staff, "psb_liaison"), tip_queue.QueueFilter()
                           ).rows == []


def test_package_opens_with_the_age_tool_and_holds_the_letter(app, staff, chain, portal_keys,
                                                              tmp_path) -> None:
    age = require_age()
    case, referral = form(staff, chain)
    for who, action, at in (("case_a", "submit", cst(2026, 9, 28)),
                            ("head_y", "approve", cst(2026, 9, 29)),
                            ("case_a", "hand_over", cst(2026, 9, 29, 15))):
        step(staff, who, referral.id, action, at,
             letter_context={"contact_phone": "0433-1234567"})
    row = db.session.get(Referral, referral.id)
    (tmp_path / "package.age").write_bytes(attachment_ciphertext(db.session, row.package_id))
    (tmp_path / "psb.txt").write_text(portal_keys["psb_zhou"] + "\n")
    opened = subprocess.run([age, "-d", "-i", str(tmp_path / "psb.txt"),
                             str(tmp_path / "package.age")], capture_output=True, check=True)
    archive = zipfile.ZipFile(io.BytesIO(opened.stdout))
    names = archive.namelist()
    assert names[0] == "01_案件移送书.pdf" and "00_材料清单.txt" in names
    assert any("调查报告" in n for n in names)
    text = "".join(page.extract_text() for page in PdfReader(
        io.BytesIO(archive.read("01_案件移送书.pdf"))).pages)
    for expected in (case.number, "污染环境罪", "延边朝鲜族自治州公安局"):
        assert expected in text.replace("\n", "").replace(" ", "")
    # The procuratorate's copy key opens it too; another bureau's key does not.
    (tmp_path / "proc.txt").write_text(portal_keys["proc_zhou"] + "\n")
    subprocess.run([age, "-d", "-i", str(tmp_path / "proc.txt"), str(tmp_path / "package.age")],
                   capture_output=True, check=True)
    (tmp_path / "other.txt").write_text(portal_keys["psb_yanji"] + "\n")
    assert subprocess.run([age, "-d", "-i", str(tmp_path / "other.txt"),
                           str(tmp_path / "package.age")], capture_output=True).returncode != 0


def test_the_letter_is_reproducible_from_the_same_data(app, staff, chain) -> None:
    case, referral = form(staff, chain)
    phone = {"contact_phone": "0433-1234567"}
    for who, action, at in (("case_a", "submit", cst(2026, 9, 28)),
                            ("head_y", "approve", cst(2026, 9, 29)),
                            ("case_a", "hand_over", cst(2026, 9, 29, 15))):
        step(staff, who, referral.id, action, at, letter_context=phone)
    first = db.session.get(Referral, referral.id).letter_sha256
    second = referrals.create_referral(db.session, principal(staff, "case_a"), case.id,
                                       "psb_zhou", "proc_zhou", now=cst(2026, 9, 29))
    for who, action in (("case_a", "submit"), ("head_y", "approve"), ("case_a", "hand_over")):
        step(staff, who, second.id, action, cst(2026, 9, 29, 15), letter_context=phone)
    assert db.session.get(Referral, second.id).letter_sha256 == first


def test_overdue_and_due_soon_lists(app, staff, chain) -> None:
    _case, referral = form(staff, chain)
    step(staff, "case_a", referral.id, "submit", cst(2026, 9, 28, 10))  # due 8 Oct
    head = principal(staff, "head_y")
    due = referrals.due_lists(db.session, head, now=cst(2026, 10, 7, 12))
    assert (due.overdue, [r.id for r in due.soon]) == ([], [referral.id])  # 8 Oct: next workday
    assert (due.overdue_total, due.soon_total) == (0, 1)
    due = referrals.due_lists(db.session, head, now=cst(2026, 10, 9, 9))
    assert ([r.id for r in due.overdue], due.soon) == ([referral.id], [])
    # Marking the police overdue is refused while their period runs.
    step(staff, "head_y", referral.id, "approve", cst(2026, 10, 9, 10))
    with pytest.raises(referrals.CaseRefused):  # the 移送书 names a contact
        step(staff, "case_a", referral.id, "hand_over", cst(2026, 10, 9, 11))
    step(staff, "case_a", referral.id, "hand_over", cst(2026, 10, 9, 11),
         letter_context={"contact_phone": "0433-1234567"})
    step(staff, "psb_liaison", referral.id, "sign_receipt", cst(2026, 10, 9, 12),
         period="check")  # 7 days: 16 Oct
    assert db.session.get(Referral, referral.id).due_at == end_of("2026-10-16")
    with pytest.raises(workflow.TransitionRefused):
        step(staff, "case_a", referral.id, "mark_overdue", cst(2026, 10, 15))
    r = step(staff, "case_a", referral.id, "mark_overdue", cst(2026, 10, 17))
    assert r.state == "overdue"


def test_suggestions_are_tracked_with_their_due_date(app, staff, chain) -> None:
    officer = principal(staff, "head_y")
    # A 检察建议 received Mon 31 Aug 2026: two months → Sat 31 Oct, a rest day → Mon 2 Nov.
    suggestion = referrals.record_suggestion(
        db.session, officer, kind="procuratorial", issuer="延边州人民检察院",
        unit_code="yanji", received_on=cst(2026, 8, 31, 10), problems="饮用水源地排污口未拆除")
    assert suggestion.due_at == end_of("2026-11-02")
    referrals.answer_suggestion(db.session, officer, suggestion.id, "已拆除并复查",
                                now=cst(2026, 10, 30, 9))
    assert db.session.scalar(select(AuditEvent.details).where(
        AuditEvent.action == "suggestion.answered")) == json.dumps(
            {"evidence": 0, "on_time": True}, separators=(",", ":"))
    assert db.session.scalar(select(func.count()).select_from(TipUpdate)) >= 0
    with pytest.raises(referrals.CaseRefused):
        referrals.record_suggestion(db.session, officer, kind="rumour", issuer="x",
                                    unit_code="yanji", received_on=cst(2026, 8, 31),
                                    problems="p")
    assert timedelta(0) < suggestion.due_at - cst(2026, 8, 31)


def test_a_receiving_body_sees_a_referral_only_once_handed_over(app, staff, chain) -> None:
    _case, referral = form(staff, chain)
    liaison = principal(staff, "psb_liaison")
    copy = principal(staff, "proc_liaison")
    for state_at in (("submit", cst(2026, 9, 28)), ("approve", cst(2026, 9, 29))):
        step(staff, "head_y" if state_at[0] == "approve" else "case_a", referral.id, *state_at)
        for person in (liaison, copy):
            assert not access.may(person, "referral.view",
                                  db.session.get(Referral, referral.id))
            assert referrals.addressed_to(db.session, person).rows == []
            with pytest.raises(referrals.NotFound):
                referrals.get_referral(db.session, person, referral.id)
    step(staff, "case_a", referral.id, "hand_over", cst(2026, 9, 29, 15),
         letter_context={"contact_phone": "0433-1234567"})
    for person in (liaison, copy):
        assert referrals.get_referral(db.session, person, referral.id).id == referral.id
        assert [r.id for r in referrals.addressed_to(db.session, person).rows] == [referral.id]
    # Another public security bureau sees nothing.
    assert referrals.addressed_to(db.session, principal(staff, "other_psb")).rows == []


def test_nobody_approves_their_own_report(app, staff, chain) -> None:
    """A head who is on the 专案组, or who submitted the report, is not offered approval and is
    refused it; another head approves."""
    staff.create("head_team", "yanji", "head")
    case, referral = form(staff, chain)
    # head_team joins the team, head_y submits: neither may approve.
    from models import CaseMember

    db.session.add(CaseMember(case_id=case.id, user_id=db.session.scalars(
        select(User.id).where(User.username == "head_team")).one()))
    db.session.commit()
    step(staff, "head_y", referral.id, "submit", cst(2026, 9, 28))
    for who in ("head_team", "head_y"):
        person = principal(staff, who)
        row = db.session.get(Referral, referral.id)
        assert "approve" not in {t.action for t in referrals.available_actions(person, row)}
        with pytest.raises(workflow.TransitionRefused):
            step(staff, who, referral.id, "approve", cst(2026, 9, 29))
    staff.create("head_other", "yanji", "head")
    assert step(staff, "head_other", referral.id, "approve", cst(2026, 9, 29)).state == "approved"


def test_the_referral_list_pages_newest_first(app, client, staff, chain, monkeypatch) -> None:
    """Two a page: the newest two, a link to the next page, the oldest there with a link back
    to the first; the heading counts every referral; a `before` that is not an id is the first
    page; the API pages the same way and refuses such a `before` in words."""
    case, first = form(staff, chain)
    officer = principal(staff, "case_a")
    later = [referrals.create_referral(db.session, officer, case.id, code,
                                       now=cst(2026, 9, 26, 9)).id
             for code in ("psb_yanji", "proc_zhou")]
    monkeypatch.setattr(referrals, "PAGE_SIZE", 2)
    head = db.session.scalars(select(User).where(User.username == "head_y")).one()
    staff.login(client, "head_y", head.id)

    def listed(page: str) -> list[int]:
        return [int(n) for n in re.findall(r'href="/staff/referrals/(\d+)"', page)]

    page = client.get("/staff/referrals?lang=en").get_data(as_text=True)
    assert "All (3)" in page and listed(page) == sorted(later, reverse=True)
    older = re.search(r'href="(/staff/referrals\?before=\d+)">Next page', page)
    assert older and "First page" not in page
    page = client.get(older.group(1) + "&lang=en").get_data(as_text=True)
    assert listed(page) == [first.id] and "Next page" not in page and "First page" in page
    page = client.get("/staff/referrals?before=x²&lang=en").get_data(as_text=True)
    assert listed(page) == sorted(later, reverse=True)
    issued = app.test_client().post("/api/v1/staff/token", json={
        "username": "head_y", "password": staff.PASSWORD,
        "otp": staff.code(head.id, offset_steps=1)})
    bearer = {"Authorization": f"Bearer {issued.get_json()['token']}"}
    body = client.get("/api/v1/staff/referrals", headers=bearer).get_json()
    assert [r["id"] for r in body["referrals"]] == sorted(later, reverse=True)
    assert body["total"] == 3 and body["next"] == min(later)
    body = client.get(f"/api/v1/staff/referrals?before={body['next']}",
                      headers=bearer).get_json()
    assert [r["id"] for r in body["referrals"]] == [first.id] and body["next"] is None
    refused = app.test_client().get("/api/v1/staff/referrals?before=abc",
                         headers={**bearer, "Accept-Language": "zh"})
    assert refused.status_code == 400 and "下一页" in refused.get_json()["error"]
