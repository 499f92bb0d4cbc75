"""Auditor pages: read-only; they never decrypt."""

from __future__ import annotations

import io
import json
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from auditlog.database import export_for_auditor, latest_checkpoint
from auditlog.verification_runs import latest_report, run_verification, start_run
from models import AuditEvent, Case, IdentityRequest, Referral, Tip, Unit, User
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
    per_step, per_unit = oversight.on_time_rates(db.session(), months=12)
    return render_template("auditor/index.html", caller=caller, per_step=per_step,
                           per_unit=per_unit, checkpoint=latest_checkpoint(db.session()),
                           export_name=_export_name(), verification=latest_report(db.session()))


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
    """Start verifying the whole log in the background, unless a verification is going on
    already (asked on any server): then show that one. Post/Redirect/Get: a refresh of the page
    that follows starts nothing."""
    start = start_run(db.session(), caller.user.id)
    if start.started:
        _verify_in_background(start.run_id)
    return redirect(url_for("auditor.verification"), 303)


def _verify_in_background(run_id: int) -> None:
    """A thread of this process carries the run out, with sessions of its own on the same
    database, while the request answers at once (until a job runner takes such work over). If
    the process stops first, the run's silence shows it as interrupted and a new one may start."""
    sessions = sessionmaker(db.engine)
    keys, origin = audit_keys(), current_app.config["AUDIT_LOG_ORIGIN"]
    logger = current_app.logger

    def work() -> None:
        try:
            run_verification(sessions, run_id, keys, origin)
        except Exception:  # the thread's end: logged, and the page shows the run interrupted
            logger.exception("verifying the audit log stopped (run %s)", run_id)

    threading.Thread(target=work, name=f"audit-verification-{run_id}", daemon=True).start()


@bp.get("/verify")
@staff_required(role="auditor")
def verification(caller: Caller) -> Any:
    """The latest verification: its progress while it runs (the page reloads itself), else its
    outcome, who asked and when."""
    report = latest_report(db.session())
    if report is None:
        return redirect(url_for("auditor.index"))
    return render_template("auditor/verify.html", caller=caller, run=report,
                           result=report.result, checkpoint=latest_checkpoint(db.session()))


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
