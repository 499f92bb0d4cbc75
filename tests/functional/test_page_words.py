"""Words, not codes: every staff, liaison, auditor and admin page, for every role that may see it,
in each language, shows no stored code and (in Chinese and Korean) no English sentence.

One portal is built per module (tests/fuzzing.py build_world: a tip with a photo, a case of two
tips, referrals in five states, a 三书一函 entry, accounts for every role and a head without the
unit's key), the tip is classified and accepted, the log is verified. Then every GET route of the
staff, liaison, auditor and admin blueprints is opened with the world's ids, as each role, in zh,
ko and en. A page that answers 200 with HTML is read as a person sees it (text, button labels,
placeholders, titles; not <code>, <pre>, <kbd> or <samp>, which hold commands and keys on
purpose) and fails on:

- a stored code as a word of its own: unit codes, channels, roles, deadline steps, referral
  states and actions, tip statuses, audit actions (tests/unit/test_words.py collects them from
  the source), or JSON (`{"`);
- on a zh or ko page, a run of three or more English words (names, numbers, file names and a few
  product names excepted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from models import Channel, Role, TipStatus
from portal.web.extensions import db
from referral import deadlines, workflow
from tests.unit.test_words import written_actions

LANGS = ("zh", "ko", "en")
WHO = ("intake", "case", "head", "liaison", "auditor", "admin", "keyless")
BLUEPRINTS = ("staff", "liaison", "auditor", "admin")
# Routes that are not pages (files) or not for a signed-in person.
NOT_PAGES = {"staff.attachment", "staff.case_document", "staff.letter_preview",
             "staff.referral_package", "liaison.referral_package", "staff.login",
             "staff.second_factor", "staff.enroll", "admin.setup", "admin.first_sign_in"}
# Extra views of list pages: filters people use.
QUERIES = {"staff.queue": ["", "?status=accepted", "?status=received&sort=due"]}


def _codes() -> tuple[set[str], set[str]]:
    """(codes that look like nothing but codes, codes that are also English words)."""
    from portal.operations.seed import UNITS

    every = {code for code, *_ in UNITS}
    every |= {c.value for c in Channel} | {r.value for r in Role}
    every |= {a.value for a in workflow.Actor} | {s.value for s in workflow.State}
    every |= {t.action for t in workflow.TRANSITIONS} | {s.value for s in TipStatus}
    every |= set(deadlines.RULES) | set(written_actions())
    every |= {"referral." + t.action for t in workflow.TRANSITIONS}
    distinctive = {c for c in every if "_" in c or "." in c}
    distinctive |= {code for code, *_ in UNITS}  # pinyin: never an English word
    return distinctive, every - distinctive


DISTINCTIVE, WORDLIKE = _codes()
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.]*[A-Za-z0-9_]|[A-Za-z]")

# What the world's people typed or sent (data, not the page's words), and product names.
DATA = ("black water from a hidden pipe behind the dye works", "smoke at night in Hunchun",
        "waste dumped at the quarry", "the same quarry, again", "I saw it again this morning.",
        "CanaryCam", "Model X1", "CanarySoft 1.0")
ALLOWED = ("FreeOTP or Google Authenticator", "Google Authenticator", "Word/Excel/PowerPoint",
           "Bearer", "Idempotency-Key", "date,kind,name")  # the holiday CSV's own header
_ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’]*(?:[ ,;:]+[A-Za-z][A-Za-z'’]*){2,}")


class VisibleText(HTMLParser):
    """The words a person sees, with the element each came from."""

    SKIP = frozenset({"script", "style", "code", "pre", "kbd", "samp", "textarea"})
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("title", "placeholder", "aria-label", "alt"):
            if values.get(name):
                self.parts.append(values[name] or "")
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"] or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self.SKIP.intersection(self.stack) and data.strip():
            self.parts.append(data)


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.parts


def problems_in(html: str, lang: str, usernames: set[str]) -> list[str]:
    found = []
    for part in visible_text(html):
        text = part
        for known in (*DATA, *ALLOWED):
            text = text.replace(known, " ")
        if '{"' in text:
            found.append(f"JSON: {part.strip()[:120]!r}")
        for token in _TOKEN.findall(text):
            if token in DISTINCTIVE or (lang != "en" and token in WORDLIKE):
                found.append(f"code {token!r} in {part.strip()[:120]!r}")
        if lang == "en":
            continue
        for run in _ENGLISH_RUN.findall(text):
            words = re.findall(r"[A-Za-z][A-Za-z'’]*", run)
            if not any(w.islower() and len(w) > 1 and w not in usernames for w in words):
                continue  # names and acronyms (Yanji PSB, PDF ZIP), not a sentence
            found.append(f"English {run!r} in {part.strip()[:120]!r}")
    return found


@dataclass
class Portal:
    app: object
    staff: object
    world: object
    urls: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    from portal import create_app
    from portal.cases import referrals
    from portal.operations.seed import seed
    from portal.operations.setup import complete_setup
    from portal.triage import tip_actions
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff, _reset_database, test_settings
    from tests.fuzzing import ACCOUNTS, _principal, build_world

    settings = test_settings(Path(tmp_path_factory.mktemp("page_words")))
    app = create_app(settings)
    context = app.app_context()
    context.push()
    try:
        _reset_database()
        seed(db.session)
        keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        staff = Staff(app, keys)
        world = build_world(app, staff)
        # More of the log: the tip is classified, given a priority and accepted; a referral
        # goes further (receipt signed, then filed, then cancelled: 撤案).
        intake = _principal(ACCOUNTS["intake"][0], staff.PASSWORD)
        tip_actions.classify(db.session, intake, world.tip_id, "P04")
        tip_actions.set_priority(db.session, intake, world.tip_id, 1)
        tip_actions.accept(db.session, intake, world.tip_id)
        liaison = _principal(ACCOUNTS["liaison"][0], staff.PASSWORD)
        handed = world.referrals["handed_over"]
        referrals.act(db.session, liaison, handed, "sign_receipt", reason="", period="normal")
        db.session.commit()
        urls = []
        for rule in app.url_map.iter_rules():
            if (rule.endpoint.split(".")[0] not in BLUEPRINTS or "GET" not in rule.methods
                    or rule.endpoint in NOT_PAGES):
                continue
            paths = [rule.rule]
            for name, values in world.ids().items():
                real = [v for v in values if v not in ("0", "999999", str(2**63))]
                paths = [p.replace(f"<int:{name}>", v) for p in paths for v in real] if any(
                    f"<int:{name}>" in p for p in paths) else paths
            for path in paths:
                urls.extend((rule.endpoint, path + q) for q in QUERIES.get(rule.endpoint, [""]))
        yield Portal(app, staff, world, sorted(set(urls)))
    finally:
        db.session.remove()
        context.pop()


@pytest.mark.parametrize("who", WHO)
def test_pages_speak_in_words(portal, who) -> None:
    from models import User
    from tests.fuzzing import sign_in

    client = sign_in(portal.app, portal.staff, portal.world, who)
    if who == "auditor":
        assert client.post("/audit/verify").status_code == 303  # the result page, too
    usernames = set(db.session.scalars(db.select(User.username)))
    seen, failures = 0, []
    for lang in LANGS:
        for _endpoint, path in portal.urls:
            joiner = "&" if "?" in path else "?"
            response = client.get(f"{path}{joiner}lang={lang}")
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            seen += 1
            for problem in problems_in(response.get_data(as_text=True), lang, usernames):
                failures.append(f"[{who} {lang}] {path}: {problem}")
    assert seen >= 2 * len(LANGS), f"{who} saw only {seen} pages"
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} codes or English sentences:\n" + "\n".join(unique[:300])


def test_the_checker_catches_codes_and_english() -> None:
    page = ('<p>收到举报 {"attachments":1}</p><td>yanji</td><p>状态：awaiting_approval</p>'
            '<p>Please give a reason for this</p><code>python -m auditlog.verify x.zip</code>'
            '<p>延吉市公安局 · Yanji PSB · 现场.jpg · fz_case</p>')
    found = problems_in(page, "zh", {"fz_case"})
    assert any(f.startswith("JSON") for f in found)
    assert any("'yanji'" in f for f in found) and any("awaiting_approval" in f for f in found)
    assert any("Please give a reason" in f for f in found)
    assert not any("python" in f or "PSB" in f or "jpg" in f for f in found)
    # On an English page, English words that are also codes are words.
    assert problems_in("<p>Received by the 12369 hotline, online.</p>", "en", set()) == []
    assert problems_in("<p>received</p>", "ko", set()) != []
