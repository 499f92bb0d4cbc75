"""Hostile input never answers 5xx: the cases of issue 9 (findings 4 and 5) one by one, then a
hand-made hostile set (tests/fuzzing.hostile_inputs: JSON nested 100,000 deep, lone surrogates
as JSON escapes and as raw bytes in JSON, forms and multipart, huge and odd numbers, wrong
types, wrong content types, broken multipart, over-long values, NUL bytes) sent to every POST
route of the app with the real ids of a world (tests/fuzzing.build_world), as nobody and as
every signed-in role. A failure names the route, the input, the role and the head of the
traceback.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from portal.web.http import MAX_JSON_DEPTH, StrictJSON
from tests.fuzzing import (
    ROLES,
    Fuzzer,
    bearer_token,
    build_world,
    fast_commits,
    hostile_inputs,
    post_routes,
    send_hostile,
    sign_in,
    stub_letters,
)

LIMITS = {"FOLLOWUP_RATE_LIMIT": "100000 per minute", "SUBMIT_RATE_LIMIT": "100000 per minute"}
EN = {"Accept-Language": "en"}
NOT_JSON = "The request body is not valid JSON."
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
PUBLIC_JSON = ("/api/v1/tips", "/api/v1/followup", "/api/v1/followup/messages")
TOKENS = ("/api/v1/liaison/token", "/api/v1/staff/token")


def _loads(text: str | bytes) -> object:
    from flask import Flask

    return StrictJSON(Flask("strict")).loads(text)


@pytest.mark.parametrize("text", [
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1),
    DEEP_ARRAY, '"a\\ud800"', '{"\\udc00": 1}', '["\\ude00\\ud83d"]',
    b'{"a": "\xed\xa0\x80"}', "NaN", "[Infinity]", '{"a": -Infinity}', "1e309", "[-1e400]",
])
def test_what_is_not_valid_json(text) -> None:
    with pytest.raises(ValueError, match=r"."):
        _loads(text)


def test_what_is_still_json() -> None:
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert _loads(nested) is not None
    assert _loads('{"a": "\\ud83d\\ude00 水", "n": 1e308, "i": 123456789012345678901234567890}'
                  ) == {"a": "😀 水", "n": 1e308, "i": 123456789012345678901234567890}


def test_deep_json_and_lone_surrogates_answer_in_words(client) -> None:
    """Issue 9 finding 4: RecursionError and UnicodeEncodeError (500) before."""
    bodies = {"deep": DEEP_ARRAY,
              "surrogate": json.dumps({"username": "a\ud800", "password": "a\ud800",
                                       "otp": "123456", "receipt": "a\ud800",
                                       "body": "a\ud800", "narrative": "a\ud800"}),
              "raw surrogate": b'{"username": "a\xed\xa0\x80", "narrative": "a\xed\xa0\x80"}'}
    for path in PUBLIC_JSON + TOKENS:
        for label, data in bodies.items():
            response = client.post(path, data=data, content_type="application/json",
                                   headers=EN)
            assert response.status_code < 500, (path, label)
            if path in PUBLIC_JSON:
                assert response.status_code == 400, (path, label)
                assert response.get_json()["errors"] == {"_request": NOT_JSON}, (path, label)
            else:
                assert response.status_code in (400, 401), (path, label)
                assert response.get_json()["error"], (path, label)  # a sentence, not a trace


def test_lone_surrogates_in_forms_are_never_text(app, client) -> None:
    """A %-escaped surrogate stays its escape and raw bytes become U+FFFD: a form field never
    holds a lone surrogate, which no text column could store."""
    from flask import request

    seen = {}

    @app.route("/_echo_fields", methods=["GET", "POST"])
    def echo() -> str:
        seen.update(request.args.to_dict())
        seen.update(request.form.to_dict())
        seen.update({f"file {k}": v.filename or "" for k, v in request.files.items()})
        return ""

    client.post("/_echo_fields", data=b"a=x%ED%A0%80&b=y\xed\xa0\x80",
                content_type="application/x-www-form-urlencoded")
    body = (b'--B\r\nContent-Disposition: form-data; name="c"\r\n\r\nz\xed\xa0\x80\r\n'
            b'--B\r\nContent-Disposition: form-data; name="f"; filename="n\xed\xa0\x80.jpg"'
            b"\r\n\r\nx\r\n--B--\r\n")
    client.post("/_echo_fields", data=body, content_type="multipart/form-data; boundary=B")
    client.get("/_echo_fields?q=%ED%A0%80&r=\xed\xa0\x80")
    assert seen, "nothing reached the view"
    for value in seen.values():
        assert not any("\ud800" <= ch <= "\udfff" for ch in value), seen


def _world(app_factory):
    from portal.operations.setup import complete_setup
    from portal.web.extensions import db
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff

    app = app_factory(**LIMITS)
    fast_commits(app)
    context = app.app_context()
    context.push()
    keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
    staff = Staff(app, keys)
    return app, context, staff, build_world(app, staff)


def test_issue_9_finding_5_inputs(app_factory) -> None:
    """Issue 9 finding 5, each input: ids beyond 64 bits on every `<int:>` route, a malformed
    queue cursor, non-numeric ids on the case, key and membership forms, a page that is no
    number, an unknown unit on user creation. Each answers in words, never 5xx."""
    from portal.web.extensions import db

    app, context, staff, world = _world(app_factory)
    try:
        clients = {who: sign_in(app, staff, world, who)
                   for who in ("head", "admin", "auditor", "liaison")}
        head = clients["head"]
        token = {"Authorization": "Bearer " + bearer_token(app, staff, world, "head"), **EN}
        answers: list[tuple[str, int]] = []

        def check(client, method, path, expect, **kwargs) -> None:
            response = client.open(path, method=method, **kwargs)
            answers.append((f"{method} {path}", response.status_code))
            assert response.status_code in expect, (method, path, response.status_code,
                                                   response.get_data(as_text=True)[:300])

        huge = [str(2**64), str(2**63), "9" * 40]
        for rule in app.url_map.iter_rules():
            if "<int:" not in rule.rule:
                continue
            for value in huge:
                path = rule.rule
                for name in rule.arguments:
                    path = path.replace(f"<int:{name}>", value).replace(f"<{name}>", "message")
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    check(head, method, path, {404, 405},
                          headers=token if path.startswith("/api/") else EN)
        cursors = ("WzFd", "%%", "W10", "eyJhIjoxfQ", "A" * 500, "WyIxIiwgIngiXQ",
                   "WyIyMDI2LTAxLTAxVDk5IiwgMV0", "WzEsICIyMDI2LTAxLTAxVDA5OjAwOjAwKzAwOjAwIiwgMl0",
                   "WyIyMDI2LTAxLTAxVDA5OjAwOjAwKzAwOjAwIiwgOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTld")
        for cursor in cursors:  # [1], [], {"a":1}, ["2026-01-01T99", 1], a huge id, …
            for sort in ("", "&sort=priority", "&sort=deadline"):
                check(head, "GET", f"/staff/?after={cursor}{sort}", {200, 400})
                check(head, "GET", f"/api/v1/staff/tips?after={cursor}{sort}", {200, 400},
                      headers=token)
        for value in ("abc", "-1", str(2**64), "1e309", "0x10", ""):
            check(head, "POST", "/staff/cases", {200, 303, 400, 422},
                  data={"tips": value, "members": value, "offence": "pollution",
                        "title": "案", "summary": "摘要"})
            check(head, "POST", "/staff/keys", {200, 303, 400, 422},
                  data={"unit": "yanji", "user_id": value, "recovery_key": ""})
            check(clients["admin"], "POST",
                  f"/admin/users/{world.users['case2']}/remove-membership",
                  {303, 400, 404, 422}, data={"membership_id": value})
            check(clients["admin"], "POST", f"/admin/users/{world.users['case2']}/membership",
                  {303, 400, 422}, data={"unit": value, "role": value})
            for page in ("/audit/tips", "/audit/referrals", "/audit/decryptions"):
                check(clients["auditor"], "GET", f"{page}?page={value}", {200, 302, 400})
        for unit in ("atlantis", "", "0", "\x00", "x" * 5000):
            check(clients["admin"], "POST", "/admin/users", {200, 303, 400, 422},
                  data={"username": "fz_new_" + str(len(answers)), "unit": unit,
                        "role": "intake_officer", "password": "a long enough password"})
        assert len(answers) > 150
    finally:
        db.session.remove()
        context.pop()


def _full_set_role(endpoint: str) -> str:
    """The role that gets past each route's access checks, and so receives the whole set."""
    blueprint, name = endpoint.split(".")
    if blueprint in ("admin", "auditor", "liaison"):
        return "anonymous" if name in ("setup", "first_sign_in",
                                       "complete_password_reset") else blueprint
    if "hotline" in name:
        return "intake"
    if name.startswith("liaison_referral"):
        return "liaison"
    if blueprint == "staff" and name in ("login", "second_factor", "enroll"):
        return "anonymous"
    if blueprint == "staff" or (name.startswith("staff_") and name != "staff_token"):
        return "head"
    return "citizen"


def test_hostile_set_on_every_post_route(app_factory) -> None:
    from portal.web.extensions import db

    started = time.monotonic()
    with stub_letters():
        app, context, staff, world = _world(app_factory)
    fuzzer = Fuzzer(app, "anonymous")
    sent: Counter = Counter()
    inputs = hostile_inputs()
    try:
        routes = post_routes(app, world)
        callers = {}
        for who in ROLES:  # all signed in first: the hostile sign-ins below count as failures
            client, headers = sign_in(app, staff, world, who), dict(EN)
            if who not in ("anonymous", "citizen"):  # after the page's sign-in: a later code
                headers["Authorization"] = "Bearer " + bearer_token(app, staff, world, who)
            callers[who] = (client, headers)
        for who, (client, headers) in callers.items():
            fuzzer.role = who
            sent += send_hostile(fuzzer, client, routes, inputs, headers,
                                 full=lambda endpoint, who=who: _full_set_role(endpoint) == who)
    finally:
        fuzzer.close()
        db.session.remove()
        context.pop()
    endpoints = {endpoint for endpoint, _path in routes}
    print(f"\nhostile inputs: {sum(sent.values())} requests to {len(endpoints)} POST endpoints, "
          f"{len(fuzzer.findings)} answered 5xx, {time.monotonic() - started:.0f} s")
    for endpoint, count in sorted(sent.items()):
        print(f"  {endpoint:<34} {count:>4}")
    assert endpoints == set(sent), "a POST route got no hostile input"
    assert all(sent[e] >= len(inputs) for e in endpoints)  # each got the whole set once
    problems = fuzzer.distinct()
    assert not problems, "\n\n".join(str(p) for p in problems)
