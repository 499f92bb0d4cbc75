"""The never-500 fuzzer's machinery, shared by tests/functional/test_no_server_errors.py,
tests/functional/test_fuzz_api.py and bench/fuzz.py.

- `build_world`: a portal with real objects in it (a tip with a photo, a tip of another county,
  accepted tips forming a case, referrals in several states, one with its package, a 三书一函
  entry, a reporter's receipt) and one account per role, plus a member who holds no key.
- `sign_in`: a test client signed in as one of ROLES, through the real pages.
- `Fuzzer`: sends requests, counts them per role and records every 5xx (or exception) with the
  head of its traceback.
- `crawl_forms`: visits every page a role can reach (the route map with the world's ids, and the
  links found on the pages), parses each HTML form (html.parser) and posts it with empty
  bodies, out-of-range values for every select and radio group, and nasty values for every other
  field: overlong text, control characters, NUL bytes, non-UTF-8 bytes, wrong types, huge and
  negative integers, impossible dates, repeated fields, odd files.
"""

from __future__ import annotations

import io
import logging
import re
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock
from urllib.parse import quote_from_bytes, urlsplit

import pyotp
from flask import Flask
from flask.ctx import AppContext
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from auditlog.events import SYSTEM
from models import Attachment, Tip, User
from portal.cases import referrals
from portal.intake import filing
from portal.security.access import principal_for
from portal.security.auth import begin_enrollment
from portal.security.custody import unit_identities, unlock_personal
from portal.web.extensions import db
from tests.helpers import MemoryUpload, jpeg_with_metadata

# Everyone who can knock on the portal's doors. "keyless" is a head of 延吉 who was never
# granted the unit's key (and sits on the case team); "citizen" holds a receipt.
ROLES = ("anonymous", "citizen", "intake", "case", "head", "liaison", "auditor", "admin",
         "keyless")
ACCOUNTS = {  # role → (username, unit, role name, holds the key)
    "intake": ("fz_intake", "yanji", "intake_officer", True),
    "case": ("fz_case", "yanji", "case_officer", True),
    "case2": ("fz_case2", "yanji", "case_officer", True),
    "head": ("fz_head", "yanji", "head", True),
    "liaison": ("fz_liaison", "psb_zhou", "liaison", True),
    "auditor": ("fz_auditor", "zhou", "auditor", False),
    "keyless": ("fz_keyless", "yanji", "head", False),
    # 珲春's own team: the objects of ANOTHER unit (World.other), which no role above works on.
    "hc_case": ("fz_hc_case", "hunchun", "case_officer", True),
    "hc_case2": ("fz_hc_case2", "hunchun", "case_officer", True),
    "hc_head": ("fz_hc_head", "hunchun", "head", True),
}
LIMITS = filing.Limits(10, 10**7, 10**7)

# What a careless or hostile client types into a field.
OVERLONG = "长" + "x" * 99_999  # 100k characters (all "长" would be 900 kB percent-encoded)
NASTY: dict[str, str] = {
    "empty": "",
    "spaces": "   \t  ",
    "overlong": OVERLONG,
    "control": "".join(chr(c) for c in range(1, 32)) + "\x7f\x85\u2028\u202e\u200b",
    "nul": "a\x00b\x00",
    "json_object": '{"a": [1, {"b": null}]}',
    "json_array": "[1, 2, 3]",
    "float": "1e309",
    "bool": "true",
    "huge_int": "9" * 40,
    "int64_overflow": str(2**63),
    "negative": "-1",
    "huge_negative": "-" + "9" * 30,
    "zero": "0",
    "date_feb30": "2026-02-30",
    "date_y99999": "99999-01-01",
    "date_zero": "0000-00-00",
    "html": '"><script>alert(1)</script>',
    "format": "%s%n%(x)s{0}{x}",
    "emoji": "𝕏😀\U000e0041",
    "path": "../../../../etc/passwd",
    "unicode_digits": "²³١٢",
}
OUT_OF_RANGE = ("999999999999", "-1", "no-such-choice")
# The suite's quicker pass: one value of each kind (NUL and control characters together).
QUICK = {"overlong": OVERLONG, "control_nul": NASTY["control"] + NASTY["nul"],
         "json_object": NASTY["json_object"], "huge_int": NASTY["huge_int"],
         "negative": NASTY["negative"], "date_feb30": NASTY["date_feb30"],
         "date_y99999": NASTY["date_y99999"], "unicode_digits": NASTY["unicode_digits"]}
# A body that is not UTF-8: percent-encoded and raw.
NOT_UTF8 = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1"


# ---------------------------------------------------------------------------------------------
# The world


def fast_commits(app: Flask) -> None:
    """Commits that do not wait for the disk (SQLite `synchronous=OFF`, PostgreSQL
    `synchronous_commit=off`): a sweep of thousands of requests commits on most of them, and
    waiting for fsync is most of its time. Nothing is lost unless the machine crashes."""
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
        setting = ("PRAGMA synchronous=OFF" if engine.dialect.name == "sqlite"
                   else "SET synchronous_commit TO off")

        @event.listens_for(engine, "connect")
        def _on_connect(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute(setting)
            cursor.close()

        engine.dispose()  # connections made before the listener get the setting too

# A stand-in for the 案件移送书 PDF: rendering the real one loads its CJK fonts (seconds each
# time), and the objects of another unit and the access matrix need only that a letter exists.
STUB_LETTER = b"%PDF-1.4\n% stand-in for the transfer letter\n%%EOF\n"


@contextmanager
def stub_letters() -> Iterator[None]:
    with mock.patch("portal.cases.referrals.render_transfer_letter",
                    lambda data, draft=False: STUB_LETTER):
        yield


@dataclass
class World:
    users: dict[str, int]
    admin_id: int
    receipt: str
    tip_id: int  # received, with a photo, in 延吉
    other_tip_id: int  # in 珲春: not the 延吉 officers'
    case_tip_ids: list[int]
    attachment_id: int
    case_id: int
    referrals: dict[str, int]  # state → id
    suggestion_id: int
    document_id: int = 0  # the case's document (an investigation report)
    # Objects nobody signed in above works on: of ANOTHER unit (珲春: "tip_id", "case_id",
    # "attachment_id" a photo of its tip, "document_id" its case document, "referral_id" handed
    # over to 珲春's public security, "suggestion_id") and of ANOTHER receiving body
    # ("body_referral_id": 延吉's case handed over to 州人民检察院, which the liaison of 州公安局
    # does not speak for). Empty in a toy world.
    other: dict[str, int] = field(default_factory=dict)

    def ids(self) -> dict[str, list[str]]:
        """Path values to try for each URL variable: real ids, a missing one, edge values."""
        edge = ["0", "999999", str(2**63)]
        return {
            "tip_id": [str(self.tip_id), str(self.other_tip_id), str(self.case_tip_ids[0]),
                       *edge],
            "attachment_id": [str(self.attachment_id), *edge],
            "case_id": [str(self.case_id), *edge],
            "referral_id": [*(str(i) for i in self.referrals.values()), *edge],
            "suggestion_id": [str(self.suggestion_id), *edge],
            "user_id": [*(str(i) for i in self.users.values()), *edge],
        }


def _principal(username: str, password: str):
    user = db.session.scalars(select(User).where(User.username == username)).one()
    personal = unlock_personal(user, password)
    return principal_for(db.session, user, unit_identities(db.session, user, personal))


def _file(narrative: str, county: str, uploads: list[MemoryUpload] | None = None,
          status: str | None = None) -> tuple[int, str]:
    filed = filing.file_tip(db.session, filing.TipDraft(narrative=narrative, county=county,
                                                        category="P04",
                                                        keep_photo_location=True),
                            uploads or [], limits=LIMITS,
                            receipt_cost=_argon2(), actor=SYSTEM)
    if status:
        db.session.get(Tip, filed.tip_id).status = status
    db.session.commit()
    return filed.tip_id, filed.receipt


def _argon2():
    from tests.conftest import FAST_ARGON2

    return FAST_ARGON2


def fresh_world(folder: Path, **settings: Any) -> tuple[Flask, AppContext, Any, World]:
    """A portal of its own in `folder` on the test database (emptied, seeded and set up), its app
    context pushed (the caller pops it), its staff and the world of build_world: where the
    benches fuzz (bench/fuzz.py, bench/schemathesis_all.py)."""
    from portal import create_app
    from portal.operations.seed import seed
    from portal.operations.setup import complete_setup
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff, _reset_database, test_settings

    app = create_app({**test_settings(folder), **settings})
    context = app.app_context()
    context.push()
    _reset_database()
    seed(db.session)
    keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
    staff = Staff(app, keys)
    return app, context, staff, build_world(app, staff)


def build_world(app: Flask, staff: Any) -> World:
    """Accounts for every role and the objects they work on, and those of another unit and
    another receiving body (World.other). `staff` is tests.conftest.Staff (after setup: the
    administrator is "admin"). The handed-over referrals carry a stand-in letter (STUB_LETTER:
    seconds saved per referral); letters rendered by requests are real."""
    with stub_letters():
        return _build_world(app, staff)


def _build_world(app: Flask, staff: Any) -> World:
    users = {}
    for role, (username, unit, role_name, holds_key) in ACCOUNTS.items():
        users[role] = staff.create(username, unit, role_name, grant=holds_key)
    admin = db.session.scalars(select(User).where(User.username == "admin")).one()
    tip_id, receipt = _file("black water from a hidden pipe behind the dye works", "yanji",
                            [MemoryUpload("现场.jpg", jpeg_with_metadata())])
    other_tip_id, _ = _file("smoke at night in Hunchun", "hunchun")
    case_tips = [_file(text, "yanji", status="accepted")[0]
                 for text in ("waste dumped at the quarry", "the same quarry, again")]
    from portal.intake import followup
    from tests.conftest import FAST_ARGON2

    key = followup.unlock(db.session, receipt, FAST_ARGON2)
    followup.reply(db.session, key, "I saw it again this morning.", [], limits=LIMITS)
    attachment_id = db.session.scalar(select(Attachment.id).where(Attachment.tip_id == tip_id))

    password = staff.PASSWORD
    officer = _principal(ACCOUNTS["case"][0], password)
    case = referrals.form_case(
        db.session, officer, tip_ids=case_tips,
        member_ids=[users["case"], users["case2"], users["keyless"]],
        offence_code="pollution", title="某采石场倾倒废物案", summary="两次倾倒废油。")
    referrals.add_documents(db.session, officer, case.id, "investigation_report",
                            [MemoryUpload("调查报告.txt", "调查报告正文".encode())], limits=LIMITS)
    head = _principal(ACCOUNTS["head"][0], password)
    liaison = _principal(ACCOUNTS["liaison"][0], password)
    steps = {
        "draft": [],
        "awaiting_approval": [(officer, "submit")],
        "approved": [(officer, "submit"), (head, "approve")],
        "handed_over": [(officer, "submit"), (head, "approve"), (officer, "hand_over")],
        "material_requested": [(officer, "submit"), (head, "approve"), (officer, "hand_over"),
                               (liaison, "sign_receipt"), (liaison, "request_material")],
    }
    made = {}
    for state, path in steps.items():
        referral = referrals.create_referral(db.session, officer, case.id, "psb_zhou",
                                             "proc_zhou")
        for who, action in path:
            referrals.act(db.session, who, referral.id, action, reason="缺少采样记录",
                          limits=LIMITS, letter_context={"contact_phone": "0433-2512345"})
        made[state] = referral.id
    from datetime import datetime
    from zoneinfo import ZoneInfo

    suggestion = referrals.record_suggestion(
        db.session, head, kind="procuratorial", issuer="延吉市人民检察院", unit_code="yanji",
        received_on=datetime(2026, 8, 31, 9, tzinfo=ZoneInfo("Asia/Shanghai")),
        problems="饮用水水源地排污口未拆除")
    db.session.commit()
    # 州人民检察院: another receiving body, not spoken for by the liaison of 州公安局 (handing
    # over to a procuratorate alone once failed on PostgreSQL: a81e00000007).
    body_referral = referrals.create_referral(db.session, officer, case.id, "proc_zhou")
    for who, action in ((officer, "submit"), (head, "approve"), (officer, "hand_over")):
        referrals.act(db.session, who, body_referral.id, action, limits=LIMITS,
                      letter_context={"contact_phone": "0433-2512345"})
    other = _other_unit(users, password, received=datetime(2026, 9, 1, 9,
                                                           tzinfo=ZoneInfo("Asia/Shanghai")))
    other["body_referral_id"] = body_referral.id
    document = db.session.scalar(select(Attachment.id).where(Attachment.case_id == case.id))
    db.session.commit()
    return World(users=users, admin_id=admin.id, receipt=receipt, tip_id=tip_id,
                 other_tip_id=other_tip_id, case_tip_ids=case_tips, attachment_id=attachment_id,
                 case_id=case.id, referrals=made, suggestion_id=suggestion.id,
                 document_id=document, other=other)


def _other_unit(users: dict[str, int], password: str, received: Any) -> dict[str, int]:
    """珲春's tip with a photo, its case with a document, a referral handed over to 珲春市公安局
    and a 三书一函 entry: real objects of another unit."""
    tip_id, _ = _file("oil on the Tumen river bank", "hunchun",
                      [MemoryUpload("河岸.jpg", jpeg_with_metadata())], status="accepted")
    second, _ = _file("oil again on the river bank", "hunchun", status="accepted")
    officer = _principal(ACCOUNTS["hc_case"][0], password)
    head = _principal(ACCOUNTS["hc_head"][0], password)
    case = referrals.form_case(
        db.session, officer, tip_ids=[tip_id, second],
        member_ids=[users["hc_case"], users["hc_case2"]], offence_code="pollution",
        title="图们江岸油污案", summary="两次发现油污。")
    referrals.add_documents(db.session, officer, case.id, "investigation_report",
                            [MemoryUpload("珲春报告.txt", "珲春报告正文".encode())], limits=LIMITS)
    referral = referrals.create_referral(db.session, officer, case.id, "psb_hunchun")
    for who, action in ((officer, "submit"), (head, "approve"), (officer, "hand_over")):
        referrals.act(db.session, who, referral.id, action, limits=LIMITS,
                      letter_context={"contact_phone": "0433-7512345"})
    suggestion = referrals.record_suggestion(
        db.session, head, kind="procuratorial", issuer="珲春市人民检察院", unit_code="hunchun",
        received_on=received, problems="入河排污口未规范设置")
    attachments = dict(db.session.execute(
        select(Attachment.tip_id, Attachment.id).where(Attachment.tip_id == tip_id)).all())
    document = db.session.scalar(select(Attachment.id).where(Attachment.case_id == case.id))
    return {"tip_id": tip_id, "case_id": case.id, "attachment_id": attachments[tip_id],
            "document_id": document, "referral_id": referral.id,
            "suggestion_id": suggestion.id}


def sign_in(app: Flask, staff: Any, world: World, who: str) -> FlaskClient:
    """A client for `who`: the pages' own sign-in (password, then TOTP) for staff."""
    client = app.test_client()
    if who in ("anonymous", "citizen"):
        return client
    if who == "admin":
        admin = db.session.get(User, world.admin_id)
        if admin.id not in staff.secrets:
            staff.secrets[admin.id] = begin_enrollment(admin, app.config["SECRET_KEY"]).secret
            admin.totp_confirmed_at = admin.created_at
            db.session.commit()
        from tests.conftest import ADMIN_PASSWORD

        client.post("/staff/login", data={"username": "admin", "password": ADMIN_PASSWORD})
        client.post("/staff/login/code",
                    data={"code": pyotp.TOTP(staff.secrets[admin.id]).now()})
        return client
    staff.login(client, ACCOUNTS[who][0], world.users[who])
    return client


def bearer_token(app: Flask, staff: Any, world: World, who: str) -> str:
    """A staff API token for `who` (the liaison uses /liaison/token, the others /staff/token)."""
    client = app.test_client()
    path = "/api/v1/liaison/token" if who == "liaison" else "/api/v1/staff/token"
    if who == "admin":
        from tests.conftest import ADMIN_PASSWORD

        sign_in(app, staff, world, "admin")  # enrols the administrator's TOTP
        username, password, uid = "admin", ADMIN_PASSWORD, world.admin_id
    else:
        username, password, uid = ACCOUNTS[who][0], staff.PASSWORD, world.users[who]
    # A code of the next step: the page sign-in may just have used this step's code.
    otp = pyotp.TOTP(staff.secrets[uid]).at(time.time() + 30)
    response = client.post(path, json={"username": username, "password": password,
                                       "otp": otp})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]


# ---------------------------------------------------------------------------------------------
# Recording


@dataclass
class Finding:
    role: str
    method: str
    path: str
    label: str
    status: int
    traceback: str

    def head(self) -> str:
        """The innermost frame of the project's own code, and the exception."""
        lines = [line for line in self.traceback.strip().splitlines() if line.strip()]
        ours = [i for i, line in enumerate(lines) if line.lstrip().startswith("File ")
                and "site-packages" not in line and "/lib/python" not in line]
        where = lines[ours[-1]:ours[-1] + 2] if ours else []
        return "\n".join([*where, *lines[-1:]])

    def __str__(self) -> str:
        return (f"{self.status} {self.method} {self.path} as {self.role} [{self.label}]\n"
                f"{self.head()}")


class _Catch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = "".join(traceback.format_exception(*record.exc_info))
        else:
            self.last = record.getMessage()


@dataclass
class Fuzzer:
    """Sends requests as one role and remembers every answer of 500 or more."""

    app: Flask
    role: str
    findings: list[Finding] = field(default_factory=list)
    requests: Counter = field(default_factory=Counter)  # role → requests made

    def __post_init__(self) -> None:
        self._catch = _Catch()
        self.app.logger.addHandler(self._catch)

    def close(self) -> None:
        self.app.logger.removeHandler(self._catch)

    def send(self, client: FlaskClient, method: str, path: str, label: str, **kwargs: Any):
        self._catch.last = ""
        self.requests[self.role] += 1
        try:
            response = client.open(path, method=method, **kwargs)
            response.get_data()  # a streamed body fails while it is read
        except Exception:  # an error the error handler did not even see
            if "sqlalchemy" in self.app.extensions:
                db.session.rollback()
            self.findings.append(Finding(self.role, method, path, label, 599,
                                         traceback.format_exc()))
            return None
        if response.status_code >= 500:
            self.findings.append(Finding(self.role, method, path, label, response.status_code,
                                         self._catch.last))
        return response

    def distinct(self) -> list[Finding]:
        """One finding per route, role and last traceback line."""
        seen, out = set(), []
        for f in self.findings:
            key = (f.role, f.method, re.sub(r"/\d+", "/<id>", f.path), f.head()[-200:])
            if key not in seen:
                seen.add(key)
                out.append(f)
        return out


# ---------------------------------------------------------------------------------------------
# Forms


@dataclass
class Form:
    action: str
    method: str
    enctype: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, value)
    choices: dict[str, list[str]] = field(default_factory=dict)  # select/radio name → options
    buttons: list[tuple[str, str]] = field(default_factory=list)  # named submit buttons
    files: list[str] = field(default_factory=list)


class FormParser(HTMLParser):
    """Forms, their fields and choices, and the page's same-site links."""

    TEXTUAL: ClassVar[set[str]] = {
        "text", "search", "email", "tel", "url", "number", "date", "datetime-local", "month",
        "time", "password", "hidden", "range", "color", "week", ""}

    def __init__(self, page_path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: tuple[str, bool] | None = None
        self._select_value: str | None = None
        self._option: str | None = None
        self._option_text: list[str] = []
        self._textarea: str | None = None
        self._textarea_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(a["href"])
        if tag == "form":
            self._form = Form(action=a.get("action") or self.page_path,
                              method=(a.get("method") or "get").upper(),
                              enctype=a.get("enctype") or "application/x-www-form-urlencoded")
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind == "file":
                form.files.append(name)
            elif kind in ("submit", "image", "button"):
                if kind != "button":
                    form.buttons.append((name, a.get("value", "")))
            elif kind == "radio":
                form.choices.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields.append(("radio", name, a.get("value", "on")))
            elif kind == "checkbox":
                if "checked" in a:
                    form.fields.append(("checkbox", name, a.get("value", "on")))
                else:
                    form.fields.append(("checkbox-off", name, a.get("value", "on")))
            elif kind in self.TEXTUAL:
                form.fields.append(("hidden" if kind == "hidden" else "text", name,
                                    a.get("value", "")))
            else:
                form.fields.append(("text", name, a.get("value", "")))
        elif tag == "button" and name and a.get("type", "submit") == "submit":
            form.buttons.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = (name, "multiple" in a)
            self._select_value = None
            form.choices.setdefault(name, [])
        elif tag == "option" and self._select:
            self._option = a.get("value")
            self._option_text = []
            if "selected" in a:
                self._select_value = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self._textarea_text = []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea_text.append(data)
        if self._select and self._option is None and self._option_text is not None:
            self._option_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        form = self._form
        if tag == "form":
            self._form = None
        elif tag == "option" and self._select and form is not None:
            value = self._option if self._option is not None else "".join(
                self._option_text).strip()
            form.choices[self._select[0]].append(value)
            self._option = None
        elif tag == "select" and self._select and form is not None:
            name, multiple = self._select
            options = form.choices[name]
            chosen = self._select_value if self._select_value is not None else (
                None if multiple or not options else options[0])
            if chosen is not None:
                form.fields.append(("select", name, chosen))
            self._select = None
        elif tag == "textarea" and self._textarea is not None and form is not None:
            form.fields.append(("text", self._textarea, "".join(self._textarea_text)))
            self._textarea = None


def parse(page_path: str, html: str) -> FormParser:
    parser = FormParser(page_path)
    parser.feed(html)
    parser.close()
    return parser


def baseline(form: Form) -> MultiDict:
    """What a browser sends when the form is submitted untouched."""
    data = MultiDict()
    for kind, name, value in form.fields:
        if kind != "checkbox-off":
            data.add(name, value)
    return data


def mutations(form: Form, level: int = 1) -> Iterator[tuple[str, MultiDict | bytes]]:
    """Label and body of each fuzzed submission of a form. Level 0 (the suite) sends one
    value of each kind, 1 all of NASTY, 2 also each nasty value in one field at a time."""
    base = baseline(form)
    free = [name for kind, name, _ in form.fields if kind in ("text", "hidden")]
    toggles = [name for kind, name, _ in form.fields if kind in ("checkbox", "checkbox-off")]
    yield "empty body", MultiDict()
    for name, options in form.choices.items():
        for value in OUT_OF_RANGE[:1] if level == 0 else OUT_OF_RANGE:
            data = base.copy()
            data.setlist(name, [value])
            yield f"{name}={value!r} (not among {options[:5]})", data
        data = base.copy()
        data.setlist(name, [*options, "no-such-choice"])  # every choice at once, and one more
        yield f"{name}=all choices", data
    for label, value in (QUICK if level == 0 else NASTY).items():
        data = base.copy()
        for name in free + toggles + list(form.choices):
            data.setlist(name, [value])
        yield f"every field {label}", data
        if level >= 2:
            for name in free:
                data = base.copy()
                data.setlist(name, [value])
                yield f"{name} {label}", data
    data = base.copy()
    for name in {n for _k, n, _v in form.fields}:
        data.setlist(name, ["1", "2"])  # each field twice
    yield "repeated fields", data
    raw = "&".join(f"{name}={quote_from_bytes(NOT_UTF8)}" for name in
                   [n for _k, n, _v in form.fields] or ["x"])
    if level:
        yield "percent-encoded non-UTF-8", raw.encode()
    yield "raw non-UTF-8", b"&".join(name.encode() + b"=" + NOT_UTF8 for name in
                                      [n for _k, n, _v in form.fields] or ["x"])


def odd_files(form: Form) -> Iterator[tuple[str, MultiDict]]:
    """Files no officer meant to send: a NUL and a path in the name, an overlong name, empty
    content, bytes that claim to be a JPEG."""
    if not form.files:
        return
    cases = {
        "file with NUL and path in its name": ("../\x00evil.jpg", b"\xff\xd8\xff\xe0garbage"),
        "file with overlong name": ("名" * 5000 + ".pdf", b"%PDF-1.7\n%garbage"),
        "empty file": ("empty.txt", b""),
        "file with control characters in its name": ("a\r\nb\tc.png", b"\x89PNG\r\n\x1a\n"),
    }
    for label, (filename, content) in cases.items():
        data = baseline(form)
        for name in form.files:
            data.add(name, (io.BytesIO(content), filename))
        yield label, data


def submit(fuzzer: Fuzzer, client: FlaskClient, form: Form, label: str,
           body: MultiDict | bytes) -> None:
    action = urlsplit(form.action)
    path = action.path or form.action
    if form.method == "GET":
        if isinstance(body, bytes):
            fuzzer.send(client, "GET", path + "?" + body.decode("latin-1"), label)
        else:
            fuzzer.send(client, "GET", path, label, query_string=body)
        return
    if action.query:
        path = f"{path}?{action.query}"
    if isinstance(body, bytes):
        fuzzer.send(client, "POST", path, label, data=body,
                    content_type="application/x-www-form-urlencoded")
    elif form.enctype == "multipart/form-data" or any(
            isinstance(v, tuple) for v in body.values()):
        fuzzer.send(client, "POST", path, label, data=body, content_type="multipart/form-data")
    else:
        fuzzer.send(client, "POST", path, label, data=body)


# Forms that end the visit: posted once, at the very end (tests/functional test them anyway).
def _ends_session(action: str, own_id: int | None) -> bool:
    path = urlsplit(action).path
    if path.startswith("/staff/logout"):
        return True
    return own_id is not None and bool(re.fullmatch(
        rf"/admin/users/{own_id}/(deactivate|reset-password|remove-membership)", path))


def seed_urls(app: Flask, world: World) -> list[str]:
    """Every GET route with each of the world's ids (and missing and absurd ones)."""
    ids = world.ids()
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or "GET" not in rule.methods:
            continue
        names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule.rule)
        if "token" in names:
            out.append(rule.rule.replace("<token>", "nonsense"))
            continue
        paths = [rule.rule]
        for name in names:
            paths = [re.sub(rf"<(?:[a-z]+:)?{name}>", value, p, count=1)
                     for p in paths for value in ids.get(name, ["x"])]
        out.extend(paths)
    return sorted(set(out))


def crawl_forms(fuzzer: Fuzzer, client: FlaskClient, world: World, *, own_id: int | None = None,
                max_pages: int = 400, level: int = 1,
                extra_pages: Iterable[tuple[str, str, dict[str, Any]]] = ()) -> dict[str, int]:
    """Visit every reachable page, then post every form on it, fuzzed (`level`: see
    `mutations`). Returns counts."""
    queue = [("GET", url, {}) for url in seed_urls(fuzzer.app, world)]
    queue.extend(extra_pages)
    seen_pages: set[str] = set()
    per_route: Counter = Counter()  # level 0: a page with many filter links, visited 3 times
    seen_forms: set[tuple[str, str, tuple]] = set()
    forms: list[Form] = []
    pages = 0
    while queue and pages < max_pages:
        method, url, kwargs = queue.pop(0)
        key = method + " " + url + repr(sorted(kwargs.items()))
        if key in seen_pages:
            continue
        seen_pages.add(key)
        route = method + re.sub(r"/\d+", "/<id>", urlsplit(url).path)
        per_route[route] += 1
        if level == 0 and urlsplit(url).query and per_route[route] > 3:
            continue
        pages += 1
        response = fuzzer.send(client, method, url, "visit", **kwargs)
        if response is None or "text/html" not in response.content_type:
            continue
        parsed = parse(urlsplit(url).path, response.get_data(as_text=True))
        for link in parsed.links:
            target = urlsplit(link)
            if target.path.startswith("/static/") or "lang=" in target.query:
                continue
            queue.append(("GET", link, {}))
        for form in parsed.forms:
            # The suite posts each kind of form once; the bench each form of each object.
            signature = (form.method, re.sub(r"/\d+", "/<id>", urlsplit(form.action).path)
                         if form.method == "GET" or level == 0 else form.action,
                         tuple(sorted((k, n) for k, n, _v in form.fields)))
            if signature not in seen_forms:
                seen_forms.add(signature)
                forms.append(form)
    last = []
    submitted = 0
    for form in forms:
        if _ends_session(form.action, own_id):
            last.append(form)
            continue
        variants = [*mutations(form, level), *odd_files(form)]
        if form.buttons:
            for name, value in form.buttons:
                data = baseline(form)
                data.add(name, value)
                variants.append((f"button {name}={value}", data))
        # The untouched form last: it may well succeed and change the object's state.
        variants.append(("untouched form", baseline(form)))
        for label, body in variants:
            submit(fuzzer, client, form, label, body)
            submitted += 1
    for form in last:
        submit(fuzzer, client, form, "untouched form", baseline(form))
    return {"pages": pages, "forms": len(forms), "submissions": submitted}


# ---------------------------------------------------------------------------------------------
# Every route, whatever it expects


ACTIONS = {
    "tip": ["classify", "priority", "accept", "decline", "verify", "close", "extend",
            "transfer", "duplicate", "assign", "message", "no_such_action"],
    "referral": None,  # filled from the workflow table
    "user": ["membership", "remove-membership", "activate", "deactivate", "reset-password",
             "no_such_action"],
}
JSON_BODIES: dict[str, Any] = {
    "no body": None,
    "empty object": {},
    "list": [1, 2],
    "string": "text",
    "number": 12,
    "null": "null-literal",
    "wrong types": {"days": [1], "priority": {"x": 1}, "user_id": "abc", "category": 5,
                    "unit": None, "reason": 12, "body": False, "original_id": 1.5,
                    "narrative": ["a"], "county": 3, "identity": "me", "receipt": 7,
                    "username": [], "password": {}, "otp": None, "period": 3,
                    "document_kind": ["decision"], "contact_phone": 5, "channel": [],
                    "keep_photo_location": "maybe"},
    "huge numbers": {"days": 10**30, "priority": -10**30, "user_id": 2**63,
                     "original_id": -(2**63) - 1, "narrative": "x", "category": "P01"},
    "nasty strings": {k: NASTY["control"] + NASTY["nul"] for k in (
        "narrative", "reason", "body", "category", "unit", "county", "receipt", "username",
        "period", "document_kind", "contact_phone", "channel")},
}


def every_route(app: Flask, world: World) -> list[tuple[str, str]]:
    from referral.workflow import TRANSITIONS

    actions = {**ACTIONS, "referral": [*sorted({t.action for t in TRANSITIONS}), "package"]}
    ids = {k: v[:1] + v[-2:] for k, v in world.ids().items()}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        paths = [rule.rule]
        for name in re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule.rule):
            if name == "action":
                kind = "tip" if "tip" in rule.rule else (
                    "user" if "users" in rule.rule else "referral")
                values = actions[kind]
            elif name == "token":
                values = ["nonsense"]
            else:
                values = ids.get(name, ["x"])
            paths = [re.sub(rf"<(?:[a-z]+:)?{name}>", v, p, count=1) for p in paths
                     for v in values]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.extend((method, p) for p in paths)
    # What ends the visit goes last.
    return sorted(set(found), key=lambda mp: ("logout" in mp[1] or "deactivate" in mp[1]
                                              or "reset-password" in mp[1], mp))


def hit_every_route(fuzzer: Fuzzer, client: FlaskClient, world: World,
                    headers: dict[str, str] | None = None) -> int:
    """Every route and method with empty, nonsense and wrongly typed bodies and queries."""
    sent = 0
    nonsense = {k: v for k, v in JSON_BODIES["wrong types"].items() if isinstance(v, str)} | {
        "days": "many", "priority": "x", "tips": "a,b", "members": "x",
        "received_on": "2026-02-30", "due_on": "99999-01-01", "membership_id": "abc",
        "csv": "x,y\n\x00"}
    # Every field any form has, with values that pass the first checks: so a route whose page
    # showed this role no form (no key, not theirs) is still reached past its validation.
    plausible = {
        "measures": "排污口已拆除", "reason": "理由", "body": "请补充照片", "category": "P01",
        "priority": "1", "days": "10", "unit": "hunchun", "user_id": str(world.users["case"]),
        "original_id": str(world.other_tip_id), "tips": ",".join(map(str, world.case_tip_ids)),
        "members": [str(world.users["case"]), str(world.users["case2"])],
        "offence": "pollution", "title": "案", "summary": "摘要", "kind": "procuratorial",
        "issuer": "延吉市人民检察院", "problems": "问题", "received_on": "2026-08-31",
        "do": "referral", "receiver": "psb_zhou", "copy": "proc_zhou",
        "contact_phone": "0433-2512345", "period": "normal", "document_kind": "decision",
        "channel": "hotline", "narrative": "黑水", "county": "yanji", "code": "P01",
        "role": "case_officer", "membership_id": "1", "receipt": world.receipt,
        "username": "fz_new", "password": "a long enough password", "recovery_key": "x",
        "name_zh": "名", "name_ko": "이름", "name_en": "name", "basis": "第1条",
        "tip_files": str(world.tip_id)}
    form_bodies = [{}, nonsense, plausible]
    queries = [{"status": "x", "sort": "x", "after": "%%", "from": "2026-02-30",
                "to": "99999-01-01", "real_name": "maybe", "deadline": "x", "format": "x",
                "category": NASTY["nul"], "county": "-1", "channel": "nonsense"},
               {"after": "A" * 5000, "from": "-1", "page": str(2**63)}]
    for method, path in every_route(fuzzer.app, world):
        if method == "GET":
            for query in queries:
                fuzzer.send(client, "GET", path, f"query {sorted(query)}", query_string=query,
                            headers=headers)
                sent += 1
            continue
        if path.startswith("/api/"):
            for label, body in JSON_BODIES.items():
                if body is None:
                    fuzzer.send(client, method, path, label, headers=headers)
                elif body == "null-literal":
                    fuzzer.send(client, method, path, label, data="null",
                                content_type="application/json", headers=headers)
                else:
                    fuzzer.send(client, method, path, label, json=body, headers=headers)
                sent += 1
            fuzzer.send(client, method, path, "invalid JSON", data=b"{\xff",
                        content_type="application/json", headers=headers)
            sent += 1
        else:
            for body in form_bodies:
                fuzzer.send(client, method, path, f"form {sorted(body)[:4]}", data=body)
                sent += 1
    return sent


# ---------------------------------------------------------------------------------------------
# A hand-made hostile set, sent to every POST route (tests/functional/test_hostile_inputs.py)

# Every field name a form or a JSON body of the portal reads.
FIELDS = ("receipt", "body", "narrative", "county", "category", "username", "password", "otp",
          "code", "reason", "unit", "role", "user_id", "membership_id", "tips", "members", "days",
          "priority", "original_id", "title", "summary", "offence", "kind", "issuer", "problems",
          "received_on", "due_on", "contact_phone", "period", "document_kind", "channel",
          "tip_files", "recovery_key", "csv", "name_zh", "measures", "do", "receiver", "copy",
          "display_name", "language", "identity", "keep_photo_location", "factor_lost")
SURROGATE = b"\xed\xa0\x80"  # U+D800 as UTF-8 would write it, were it a character
DEEP = 100_000
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


def _multipart(parts: list[bytes], *, end: bool = True, boundary: bytes = b"B0UNDARY") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if end else b"")


def _field_part(name: bytes, value: bytes) -> bytes:
    return b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value


def _file_part(name: bytes, filename: bytes, content: bytes) -> bytes:
    return (b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + content)


def hostile_inputs() -> list[tuple[str, dict[str, Any]]]:
    """(label, keyword arguments of client.open) for each hostile body: deep JSON, lone
    surrogates (JSON escapes, raw bytes in JSON, forms and multipart), huge and odd numbers,
    wrong types, wrong content types, broken multipart, over-long values, NUL bytes."""
    def js(value: Any) -> dict[str, Any]:
        import json

        # A lone surrogate is written as its JSON escape (\\ud800), anything else as UTF-8.
        return {"data": json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace"),
                "content_type": _JSON}

    def every(value: Any) -> dict[str, Any]:
        return dict.fromkeys(FIELDS, value)

    def form(value: bytes) -> dict[str, Any]:
        return {"data": b"&".join(f.encode() + b"=" + value for f in FIELDS),
                "content_type": _FORM}

    fields = [_field_part(f.encode(), b"x") for f in FIELDS[:8]]
    out: list[tuple[str, dict[str, Any]]] = [
        ("JSON array nested 100,000 deep", {"data": "[" * DEEP + "]" * DEEP,
                                            "content_type": _JSON}),
        ("JSON object nested 100,000 deep", {"data": '{"a":' * DEEP + "1" + "}" * DEEP,
                                             "content_type": _JSON}),
        ("JSON nested 65 deep in every field", js(every(_nested(65)))),
        ("JSON lone surrogate \\ud800 in every field", js(every("a\ud800"))),
        ("JSON lone surrogate \\udc00 as a key", {"data": '{"\\udc00": "x", "body": "\\udfff"}',
                                                  "content_type": _JSON}),
        ("JSON raw bytes ED A0 80 in every field", {
            "data": b"{" + b", ".join(b'"' + f.encode() + b'": "a' + SURROGATE + b'"'
                                      for f in FIELDS) + b"}", "content_type": _JSON}),
        ("JSON 2**64 in every field", js(every(2**64))),
        ("JSON -1 in every field", js(every(-1))),
        ("JSON 1e309 in every field", {"data": "{" + ", ".join(f'"{f}": 1e309' for f in FIELDS)
                                       + "}", "content_type": _JSON}),
        ("JSON NaN and Infinity", {"data": '{"days": NaN, "priority": Infinity, "user_id": '
                                   '-Infinity}', "content_type": _JSON}),
        ('JSON "0x10" in every field', js(every("0x10"))),
        ("JSON array in every field", js(every(["x", 1]))),
        ("JSON object in every field", js(every({"$gt": ""}))),
        ("JSON number in every field", js(every(1.5))),
        ("JSON true in every field", js(every(True))),
        ("JSON null in every field", js(every(None))),
        ("JSON top-level array of objects", js([{"receipt": "x"}])),
        ("JSON over-long strings", js(every("长" * 5_000))),
        ("JSON NUL in every field", js(every("a\x00b"))),
        ("JSON in UTF-16", {"data": '{"narrative": "x"}'.encode("utf-16"),
                            "content_type": _JSON + "; charset=utf-16"}),
        ("form %ED%A0%80 in every field", form(b"a%ED%A0%80")),
        ("form raw bytes ED A0 80 in every field", form(b"a" + SURROGATE)),
        ("form 2**64 in every field", form(str(2**64).encode())),
        ("form -1 in every field", form(b"-1")),
        ("form 1e309 in every field", form(b"1e309")),
        ("form 0x10 in every field", form(b"0x10")),
        ("form NaN in every field", form(b"NaN")),
        ("form field[]= and field[a]=", {"data": b"&".join(
            f.encode() + b"%5B%5D=1&" + f.encode() + b"%5Ba%5D=2" for f in FIELDS),
            "content_type": _FORM}),
        ("form JSON text in every field", form(b"%7B%22a%22%3A%5B1%5D%7D")),
        ("form over-long values", form(b"x" * 5_000)),
        ("form NUL in every field", form(b"a%00b")),
        ("text/plain body", {"data": "receipt=x&narrative=y", "content_type": "text/plain"}),
        ("no content type", {"data": b"\x00\x01\x02"}),
        ("multipart without a boundary", {"data": _multipart(fields),
                                          "content_type": "multipart/form-data"}),
        ("multipart truncated", {"data": _multipart(fields)[:150],
                                 "content_type": "multipart/form-data; boundary=B0UNDARY"}),
        ("multipart without its final boundary", {
            "data": _multipart(fields, end=False),
            "content_type": "multipart/form-data; boundary=B0UNDARY"}),
        ("multipart part without a name", {
            "data": _multipart([b"Content-Disposition: form-data\r\n\r\nvalue", *fields]),
            "content_type": "multipart/form-data; boundary=B0UNDARY"}),
        ("multipart empty files", {
            "data": _multipart([*fields, *(_file_part(n, b"empty.pdf", b"")
                                          for n in (b"attachments", b"files", b"file", b"csv",
                                                    b"documents"))]),
            "content_type": "multipart/form-data; boundary=B0UNDARY"}),
        ("multipart filename with NUL", {
            "data": _multipart([*fields, _file_part(b"attachments", b"a\x00.jpg", b"\xff\xd8"),
                                _file_part(b"files", b"../\x00x.pdf", b"%PDF-1.7")]),
            "content_type": "multipart/form-data; boundary=B0UNDARY"}),
        ("multipart raw bytes ED A0 80 in names, values and filenames", {
            "data": _multipart([_field_part(b"narrative" + SURROGATE, b"a" + SURROGATE),
                                *(_field_part(f.encode(), b"a" + SURROGATE) for f in FIELDS),
                                _file_part(b"attachments", b"a" + SURROGATE + b".jpg", b"x"),
                                b"Content-Disposition: form-data; name=\"files\"; "
                                b"filename*=UTF-8''a%ED%A0%80.pdf\r\n\r\n%PDF"]),
            "content_type": "multipart/form-data; boundary=B0UNDARY"}),
        ("multipart part in UTF-16", {
            "data": _multipart([b'Content-Disposition: form-data; name="narrative"\r\n'
                                b"Content-Type: text/plain; charset=utf-16\r\n\r\n"
                                + "水".encode("utf-16")]),
            "content_type": "multipart/form-data; boundary=B0UNDARY"}),
    ]
    return out


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# The few hostile bodies every role sends to every POST route (the whole set goes to each route
# as a role that gets past its access checks).
HOSTILE_FOR_EVERYONE = ("JSON array nested 100,000 deep",
                        "multipart raw bytes ED A0 80 in names, values and filenames")
# One action or a few for each `<action>` route: those that read numbers, ids and lists.
HOSTILE_ACTIONS = {"tip": ("assign", "duplicate", "extend"),
                   "referral": ("reject", "supplement"),
                   "liaison": ("sign_receipt", "request_material"),
                   "user": ("membership", "remove-membership")}


def post_routes(app: Flask, world: World) -> list[tuple[str, str]]:
    """(endpoint, path) of every POST route, with the world's real ids; what may end the
    visit last."""
    ids = {"tip_id": world.tip_id, "attachment_id": world.attachment_id,
           "case_id": world.case_id, "referral_id": world.referrals["handed_over"],
           "suggestion_id": world.suggestion_id, "user_id": world.users["case2"],
           # An identity request (portal/intake/identity.py): the world has one when a test made it.
           "request_id": getattr(world, "identity_requests", {}).get("own", 999999)}
    out = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods:
            continue
        paths = [rule.rule]
        for name in re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule.rule):
            if name == "action":
                kind = ("tip" if "tip" in rule.rule else "user" if "users" in rule.rule
                        else "liaison" if "liaison" in rule.rule else "referral")
                values = list(HOSTILE_ACTIONS[kind])
            elif name == "token":
                values = ["nonsense"]
            else:
                values = [str(ids[name])]
            paths = [re.sub(rf"<(?:[a-z]+:)?{name}>", v, p, count=1) for p in paths
                     for v in values]
        out.extend((rule.endpoint, p) for p in paths)
    ending = ("/staff/logout", "/staff/login", "/api/v1/staff/token", "/api/v1/liaison/token")
    return sorted(out, key=lambda ep: (ep[1].startswith(ending), ep))


def send_hostile(fuzzer: Fuzzer, client: FlaskClient, routes: list[tuple[str, str]],
                 inputs: list[tuple[str, dict[str, Any]]], headers: dict[str, str],
                 full: Any) -> Counter:
    """Each hostile input to each route (`full(endpoint)`: the whole set, else
    HOSTILE_FOR_EVERYONE); API routes with `headers` (a bearer token). Returns the inputs
    sent per endpoint."""
    sent: Counter = Counter()
    few = [i for i in inputs if i[0] in HOSTILE_FOR_EVERYONE]
    assert len(few) == len(HOSTILE_FOR_EVERYONE), "HOSTILE_FOR_EVERYONE names a missing input"
    for endpoint, path in routes:
        chosen = inputs if full(endpoint) else few
        for label, kwargs in chosen:
            extra = {"headers": headers} if path.startswith("/api/") else {}
            fuzzer.send(client, "POST", path, label, **kwargs, **extra)
            sent[endpoint] += 1
    return sent
