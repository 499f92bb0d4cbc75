"""Retention: a closed tip's content, files and messages are destroyed when its category's period
runs out; its row (metadata) is kept for statistics.

The rule, in one place:
- An administrator sets `Category.retention_days` per category code (None: keep for ever, the
  default). The CURRENT version of the tip's category code decides, whichever version the tip
  was classified under; a tip without a category is kept.
- The period runs in natural (calendar) days from `Tip.closed_at`: a tip closed at instant T with
  N days is due from T + N × 24 hours. Statutory working-day calendars (referral/calendar.py, the
  Spring Festival and other holidays) do not pause or lengthen it: retention is not a procedural
  deadline. Only finished tips have a period: closed with a result, or not accepted (declined,
  which also sets `closed_at`).
- Never destroyed: a tip on legal hold (`Tip.legal_hold`, set and lifted by a head, `set_hold`),
  one already archived (`Tip.archived_at`), and a tip attached to a case (CaseTip) unless that
  case has at least one referral and every referral of it is finished (referral/workflow.py
  TERMINAL). So a case without any referral yet holds its tips too: the case is still being
  worked on and may still send them on (conservative; a tip leaves the hold only when the
  receiving bodies are done with it).

Destroying a tip (`destroy`, one transaction per batch, re-checking the rule under a row lock):
its ciphertext becomes the empty tombstone; each file's ciphertext rows are deleted and its
sealed name emptied (the size stays); message bodies are emptied and progress notes removed;
the reporter's sealed identity and any copy sealed for a granted request go; the redaction specs
of its referrals (they quote its narrative) are deleted; the blind indexes are set to "names
nothing" (intake.NO_INDEX: NULL would mean "not computed yet" and queue the tip for indexing);
`archived_at` is set. Kept: unit, county, category, channel, language, status, dates, counts,
the reporter's progress entries (status and date) and the receipt's lookup hash, so the receipt
still answers "archived". One audit event per tip, "tip.destroyed", carries the category code,
the closing day and the period, never content.

Referral packages and case documents are the case's records, not the tip's: not touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Exists, Select, and_, delete, exists, not_, or_, select, update
from sqlalchemy.orm import Session, aliased

from auditlog.events import Actor, record
from models import (
    Attachment,
    BlobChunk,
    CaseTip,
    Category,
    Message,
    Referral,
    Tip,
    TipStatus,
    TipUpdate,
    Unit,
)
from models.identity import IdentityRequest, Redaction, TipIdentity
from portal.intake.filing import NO_INDEX
from portal.security.access import Principal
from portal.transaction import transaction
from referral.calendar import PREFECTURE_ZONE
from referral.workflow import TERMINAL

TOMBSTONE = b""  # what Tip.content holds once destroyed: opens with no key, says nothing
MIN_DAYS, MAX_DAYS = 1, 36500
MAX_HOLD_REASON = 64  # kept in the audit event (auditlog/events.py: details are short metadata)
BATCH = 50
FINISHED = (TipStatus.CLOSED, TipStatus.DECLINED)


class RetentionRefused(ValueError):
    """A retention setting or a hold that is not allowed; `code` says why (shown in words)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Candidate:
    tip_id: int
    unit_code: str
    unit_name_zh: str
    category_code: str
    closed_at: datetime
    retention_days: int
    due_since: datetime


@dataclass
class Report:
    dry_run: bool
    candidates: list[Candidate] = field(default_factory=list)
    destroyed: int = 0


def held_by_case() -> Exists:
    """SQL: the tip belongs to a case that may still need it (no referral yet, or a referral
    not finished)."""
    case_id = CaseTip.case_id
    any_referral = exists().where(Referral.case_id == case_id)
    unfinished = exists().where(Referral.case_id == case_id,
                                Referral.state.not_in(sorted(s.value for s in TERMINAL)))
    return exists().where(CaseTip.tip_id == Tip.id, or_(not_(any_referral), unfinished))


def _due_query() -> Select:
    """Tips whose period has run out and that nothing holds, with their unit, category code and
    period. The current version of the tip's category code decides."""
    filed_under = aliased(Category)
    current = aliased(Category)
    return (
        select(Tip.id, Unit.code, Unit.name_zh, current.code, Tip.closed_at,
               current.retention_days)
        .join(Unit, Unit.id == Tip.unit_id)
        .join(filed_under, filed_under.id == Tip.category_id)
        .join(current, and_(current.code == filed_under.code, current.current.is_(True)))
        .where(current.retention_days.is_not(None), Tip.closed_at.is_not(None),
               Tip.status.in_([s.value for s in FINISHED]), Tip.archived_at.is_(None),
               Tip.legal_hold.is_(False), not_(held_by_case()))
        .order_by(Tip.closed_at, Tip.id))


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo("UTC"))


def due(session: Session, now: datetime, ids: Sequence[int] | None = None) -> list[Candidate]:
    """The tips that would be destroyed at `now`, oldest closing first (optionally among `ids`).
    The cut-off is computed per row in Python: closed_at + N days <= now, natural days."""
    query = _due_query()
    if ids is not None:
        query = query.where(Tip.id.in_(list(ids)))
    found = []
    for tip_id, unit_code, unit_zh, code, closed_at, days in session.execute(query):
        closed = _as_utc(closed_at)
        due_since = closed + timedelta(days=int(days))
        if due_since <= now:
            found.append(Candidate(tip_id, unit_code, unit_zh, code, closed, int(days),
                                   due_since))
    return found


def destroy(session: Session, now: datetime, *, dry_run: bool, actor: Actor,
            batch: int = BATCH) -> Report:
    """Destroy the content of every due tip (see the module's docstring), `batch` tips per
    transaction; with `dry_run`, only list them and change nothing. Running it again destroys
    nothing more (archived tips are never due)."""
    candidates = due(session, now)
    report = Report(dry_run=dry_run, candidates=candidates)
    if dry_run:
        session.rollback()  # nothing was written; end the read transaction
        return report
    for start in range(0, len(candidates), batch):
        ids = [c.tip_id for c in candidates[start:start + batch]]
        with transaction(session):
            # Lock the rows, then ask again: a hold set since the listing wins.
            session.execute(select(Tip.id).where(Tip.id.in_(ids)).with_for_update())
            for candidate in due(session, now, ids):
                _destroy_tip(session, candidate, now, actor)
                report.destroyed += 1
    return report


def _destroy_tip(session: Session, candidate: Candidate, now: datetime, actor: Actor) -> None:
    tip_id = candidate.tip_id
    attachments = select(Attachment.id).where(Attachment.tip_id == tip_id)
    session.execute(delete(BlobChunk).where(BlobChunk.attachment_id.in_(attachments)))
    session.execute(update(Attachment).where(Attachment.tip_id == tip_id).values(meta=TOMBSTONE))
    session.execute(update(Message).where(Message.tip_id == tip_id).values(body=TOMBSTONE))
    session.execute(update(TipUpdate).where(TipUpdate.tip_id == tip_id).values(note=None))
    session.execute(delete(TipIdentity).where(TipIdentity.tip_id == tip_id))
    session.execute(update(IdentityRequest).where(IdentityRequest.tip_id == tip_id)
                    .values(sealed_copy=None))
    session.execute(delete(Redaction).where(Redaction.tip_id == tip_id))
    session.execute(update(Tip).where(Tip.id == tip_id).values(
        content=TOMBSTONE, responsible_index=NO_INDEX, place_index=NO_INDEX, archived_at=now))
    record(session, actor, "tip.destroyed", object_type="tip", object_id=tip_id,
           unit_code=candidate.unit_code, category=candidate.category_code,
           closed_on=candidate.closed_at.astimezone(PREFECTURE_ZONE).date().isoformat(),
           retention_days=candidate.retention_days)
    session.expire_all()  # objects loaded before see the tombstones


# ---------------------------------------------------------------------------------------------
# Legal hold


def set_hold(session: Session, principal: Principal, tip_id: int, hold: bool, reason: str
             ) -> Tip:
    """Put a tip on legal hold, or lift it, with a reason (the head's own words, e.g. the
    notice that requires keeping it, not the tip's content). Heads of the tip's unit or of
    州本级 (access.py "tip.hold"); no key is needed, nothing is opened. Audited; commits.
    Raises triage.NotFound (not visible), triage.Refused (role) or RetentionRefused."""
    from portal.triage.tip_actions import actor_of, get_visible

    tip = get_visible(session, principal, tip_id, "tip.hold")
    if tip.archived_at is not None:
        raise RetentionRefused("archived")
    reason = (reason or "").strip()
    if not reason:
        raise RetentionRefused("reason_required")
    if len(reason) > MAX_HOLD_REASON:
        raise RetentionRefused("reason_too_long")
    if bool(tip.legal_hold) == hold:
        raise RetentionRefused("already_on_hold" if hold else "not_on_hold")
    tip.legal_hold = hold
    record(session, actor_of(principal, "tip.hold", tip),
           "tip.hold_set" if hold else "tip.hold_lifted", object_type="tip", object_id=tip.id,
           unit_code=tip.unit.code, hold_reason=reason)
    session.commit()
    return tip


def retention_of(session: Session, tip: Tip) -> int | None:
    """The period that applies to a tip now (its category code's current version), or None."""
    if tip.category_id is None:
        return None
    code = session.scalar(select(Category.code).where(Category.id == tip.category_id))
    return session.scalar(select(Category.retention_days).where(
        Category.code == code, Category.current.is_(True)))
