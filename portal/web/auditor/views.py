"""Auditor pages: read-only; they never decrypt."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from auditlog.database import (
    PROBLEMS,
    export_for_auditor,
    latest_checkpoint,
    verify_for_auditor,
)
from models import AuditEvent, Case, IdentityRequest, Referral, Tip, Unit, User
from models.base import utcnow
from portal.cases import oversight
from portal.intake import identity
from portal.security.accounts import ACCOUNT_CHANGES_PAGE, account_changes
from portal.web import audit_keys, checkpoint_now
from portal.web.auditor import bp
from portal.web.extensions import db
from portal.web.session import Caller, staff_required
from referral.calendar import load_calendar


def _export_name() -> str:
    return current_app.config["AUDIT_LOG_ORIGIN"].replace("/", "_") + ".zip"


@bp.get("/")
@staff_required(role="auditor")
def index(caller: Caller) -> str:
    per_step, per_unit = oversight.on_time_rates(db.session(), utcnow() - timedelta(days=365))
    return render_template("auditor/index.html", caller=caller, per_step=per_step,
                           per_unit=per_unit, checkpoint=latest_checkpoint(db.session()),
                           export_name=_export_name())


@bp.get("/tips")
@staff_required(role="auditor")
def tips(caller: Caller) -> str:
    page_text = request.args.get("page", "0") or "0"
    page = min(int(page_text), 10**6) if page_text.isdigit() else 0
    rows = list(db.session.scalars(select(Tip).order_by(Tip.id.desc()).offset(page * 100)
                                   .limit(100)))
    calendar = load_calendar(db.session())
    units = {u.id: u for u in db.session.scalars(select(Unit))}
    return render_template("auditor/tips.html", caller=caller, rows=rows, units=units,
                           deadlines={t.id: oversight.tip_deadlines(t, calendar) for t in rows},
                           page=page)


@bp.get("/tips/<int:tip_id>")
@staff_required(role="auditor")
def tip(caller: Caller, tip_id: int) -> str:
    row = db.session.get(Tip, tip_id)
    if row is None:
        abort(404)
    users = {u.id: u for u in db.session.scalars(select(User))}
    return render_template("auditor/tip.html", caller=caller, tip=row, users=users,
                           timeline=oversight.tip_timeline(db.session(), tip_id),
                           deadlines=oversight.tip_deadlines(row, load_calendar(db.session())))


@bp.get("/referrals")
@staff_required(role="auditor")
def referrals(caller: Caller) -> str:
    rows = list(db.session.scalars(select(Referral).order_by(Referral.id.desc()).limit(200)))
    cases = list(db.session.scalars(select(Case).order_by(Case.id.desc()).limit(200)))
    users = {u.id: u for u in db.session.scalars(select(User))}
    return render_template("auditor/referrals.html", caller=caller, rows=rows, users=users,
                           cases=cases,
                           timelines={r.id: oversight.referral_timeline(db.session(), r.id)
                                      for r in rows})


@bp.get("/decryptions")
@staff_required(role="auditor")
def decryptions(caller: Caller) -> str:
    users = {u.id: u for u in db.session.scalars(select(User))}
    events, grants = oversight.key_events(db.session())
    units = {u.id: u for u in db.session.scalars(select(Unit))}
    return render_template("auditor/decryptions.html", caller=caller, users=users,
                           reads=oversight.decryptions(db.session()), key_events=events,
                           grants=grants, units=units)


@bp.get("/accounts")
@staff_required(role="auditor")
def accounts(caller: Caller) -> str:
    """Account changes, from the log alone: who created accounts, gave or removed roles, reset
    passwords, activated or deactivated accounts — so a role given to oneself or to an
    accomplice is seen."""
    page_text = request.args.get("page", "0") or "0"
    page = min(int(page_text), 10**6) if page_text.isdigit() else 0
    rows = account_changes(db.session(), page)
    return render_template("auditor/accounts.html", caller=caller, rows=rows, page=page,
                           per_page=ACCOUNT_CHANGES_PAGE)


IDENTITY_PAGE = 100


@bp.get("/identity")
@staff_required(role="auditor")
def identity_requests(caller: Caller) -> str:
    """Every identity access request: who asked, why, who decided what and why, until when, and
    who read the identity when (from the log). Never the identity itself."""
    page_text = request.args.get("page", "0") or "0"
    page = min(int(page_text), 10**6) if page_text.isdigit() else 0
    rows = list(db.session.scalars(select(IdentityRequest).order_by(IdentityRequest.id.desc())
                                   .offset(page * IDENTITY_PAGE).limit(IDENTITY_PAGE)))
    reads: dict[int, list[AuditEvent]] = {r.id: [] for r in rows}
    if rows:
        for event in db.session.scalars(select(AuditEvent).where(
                AuditEvent.action == "identity.read",
                AuditEvent.object_id.in_(sorted({r.tip_id for r in rows})))
                .order_by(AuditEvent.seq)):
            request_id = json.loads(event.details or "{}").get("request")
            if request_id in reads:
                reads[request_id].append(event)
    return render_template("auditor/identity.html", caller=caller, rows=rows, reads=reads,
                           page=page, per_page=IDENTITY_PAGE,
                           reasons={r.id: identity.decision_reasons(r) for r in rows})


@bp.post("/verify")
@staff_required(role="auditor")
def verify(caller: Caller) -> Any:
    """Verify, log it, then show the result on a page of its own (a refresh repeats nothing)."""
    checkpoint_now()
    result = verify_for_auditor(db.session(), audit_keys(),
                                caller.user.id)
    db.session.commit()
    session["audit_verification"] = {
        "ok": result.ok, "entries": result.entries, "checkpoint_size": result.checkpoint_size,
        "first_bad_seq": result.first_bad_seq, "problem": result.problem,
        "params": {k: v for k, v in result.params.items() if isinstance(v, int | str)}}
    return redirect(url_for("auditor.verification"), 303)


@bp.get("/verify")
@staff_required(role="auditor")
def verification(caller: Caller) -> Any:
    result = session.get("audit_verification")
    if not isinstance(result, dict) or result.get("problem", "") not in {"", *PROBLEMS}:
        return redirect(url_for("auditor.index"))
    return render_template("auditor/verify.html", caller=caller, result=result,
                           checkpoint=latest_checkpoint(db.session()))


@bp.post("/export")
@staff_required(role="auditor")
def export(caller: Caller) -> Response:
    """The bundle for `python -m auditlog.verify`, as a ZIP. The log holds no content."""
    checkpoint_now()
    with tempfile.TemporaryDirectory() as folder:
        export_for_auditor(db.session(), Path(folder), audit_keys(),
                           caller.user.id)
        buffer = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
        size = buffer.tell()
        buffer.seek(0)
    name = _export_name()
    return Response(iter(lambda: buffer.read(io.DEFAULT_BUFFER_SIZE * 16), b""),
                    mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Content-Length": str(size)})
