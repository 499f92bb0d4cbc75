"""Every code a page may show has words (portal/web/messages.py), so a new one without words fails.

The audit actions are collected from the source itself: every call of the one audit writer
(`record`) and of the triage wrapper that forwards to it (`_done`), with the action as a literal,
a choice of literals, or `f"referral.{action}"` over the workflow table.
"""

from __future__ import annotations

import ast
import json
from datetime import timedelta
from pathlib import Path

import pytest

from models import Channel, Role, TipStatus
from portal.web import messages
from referral import deadlines, workflow

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "portal").rglob("*.py"), *(ROOT / "referral").rglob("*.py"),
                  *(ROOT / "auditlog").rglob("*.py")])
# Which argument of each writer holds the action.
WRITERS = {"record": 2, "_done": 3}
NOT_DETAILS = {"object_type", "object_id", "unit_code", "at"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _actions_of(node: ast.expr, where: str) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _actions_of(node.body, where) | _actions_of(node.orelse, where)
    if isinstance(node, ast.JoinedStr):
        text = "".join(part.value if isinstance(part, ast.Constant) else "{}"
                       for part in node.values)
        if text == "referral.{}":
            return {f"referral.{t.action}" for t in workflow.TRANSITIONS}
    raise AssertionError(f"{where}: the audit action is not a literal this test can read; "
                         "extend tests/unit/test_words.py so the new action gets words")


def _writer_calls() -> list[tuple[str, ast.Call, int]]:
    calls = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in WRITERS:
                position = WRITERS[_name(node.func)]  # type: ignore[index]
                if len(node.args) > position:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    calls.append((where, node, position))
    return calls


def written_actions() -> dict[str, str]:
    """Every audit action the code can write, with where it is written."""
    found: dict[str, str] = {}
    for where, call, position in _writer_calls():
        argument = call.args[position]
        if isinstance(argument, ast.Name) and argument.id == "action":
            continue  # the wrapper forwarding its own argument; its callers are read instead
        for action in _actions_of(argument, where):
            found.setdefault(action, where)
    return found


def written_detail_keys() -> dict[str, str]:
    found: dict[str, str] = {}
    for where, call, _position in _writer_calls():
        for keyword in call.keywords:
            if keyword.arg and keyword.arg not in NOT_DETAILS:
                found.setdefault(keyword.arg, where)
    return found


def test_the_collector_finds_the_known_writers():
    actions = written_actions()
    for action in ("tip.received", "tip.accepted", "referral.hand_over", "audit.verified",
                   "unit_key.granted", "user.deactivated", "message.from_reporter"):
        assert action in actions
    assert len(actions) > 50


def test_every_audit_action_has_words():
    missing = {a: w for a, w in written_actions().items() if a not in messages.EVENT_WORDS}
    assert not missing, f"audit actions without words in messages.EVENT_WORDS: {missing}"


def test_every_audit_detail_has_words():
    missing = {k: w for k, w in written_detail_keys().items()
               if k not in messages.DETAIL_WORDS}
    assert not missing, f"audit details without words in messages.DETAIL_WORDS: {missing}"


def test_every_deadline_step_has_words():
    steps = set(deadlines.RULES) | set(workflow.FILING_PERIODS.values())
    steps |= {t.starts for t in workflow.TRANSITIONS if t.starts}
    assert steps - set(messages.STEP_WORDS) == set()


@pytest.mark.parametrize(("codes", "words"), [
    ({s.value for s in workflow.State}, messages.STATE_LABELS),
    ({t.action for t in workflow.TRANSITIONS}, messages.ACTION_LABELS),
    ({d.value for d in workflow.Document}, messages.DOCUMENT_LABELS),
    ({c.value for c in Channel}, messages.CHANNEL_WORDS),
    ({r.value for r in Role} | {a.value for a in workflow.Actor}, messages.ROLE_WORDS),
    ({s.value for s in TipStatus}, messages.STATUS_WORDS),
])
def test_every_code_has_words(codes, words):
    assert codes - {str(k) for k in words} == set()


@pytest.fixture
def in_lang(app):
    def enter(lang):
        context = app.test_request_context(f"/?lang={lang}")  # the page's language
        context.push()
        return context.pop

    return enter


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "Tip received (Online portal, 1 attachment, anonymous)"),
    ("zh", "收到举报（网上举报平台，1个附件，匿名）"),
])
def test_an_event_reads_as_a_sentence(app, in_lang, lang, expected):
    leave = in_lang(lang)
    try:
        details = json.dumps({"attachments": 1, "channel": "online", "real_name": False})
        assert messages.event_text("tip.received", details) == expected
        # Unknown details are left out, never dumped; an unknown action still reads as words.
        assert messages.event_text("tip.accepted", '{"secret_code":"x1"}') == str(
            messages.EVENT_WORDS["tip.accepted"])
        assert "{" not in messages.event_text("no.such_action", {"a": 1})
    finally:
        leave()


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "2 days 3 hours"), ("zh", "2天3小时"), ("ko", "2일 3시간"),
])
def test_durations_in_the_page_language(app, in_lang, lang, expected):
    leave = in_lang(lang)
    try:
        assert messages.duration_text(timedelta(days=2, hours=3)) == expected
        assert messages.duration_text(None) == "—"
    finally:
        leave()


@pytest.mark.parametrize(("lang", "seconds", "expected"), [
    ("en", 30, "Try again in 1 minute."),
    ("en", 61, "Try again in 2 minutes."),
    ("zh", 900, "请在 15 分钟后重试"),
    ("ko", 60, "1분 후에 다시 시도"),
])
def test_a_held_back_sign_in_says_how_long_with_the_right_plural(app, in_lang, lang, seconds,
                                                                 expected):
    leave = in_lang(lang)
    try:
        assert expected in messages.throttled_text("password", seconds)
        assert "recovery code" in messages.throttled_text("code", seconds) or lang != "en"
    finally:
        leave()
