"""Who reaches what: a route × role matrix generated from the app's own route map.

Every rule of `app.url_map` (each method but HEAD and OPTIONS), for every kind of person
(tests/fuzzing.ROLES: nobody, a reporter with a receipt, intake officer, case officer, head,
liaison of 州公安局, auditor, administrator, a head who holds no key), is requested with the
real ids of the objects it names in three variants: the objects these people work on ("own":
延吉's tip, case, referral handed over to 州公安局, …), objects of ANOTHER unit ("unit": 珲春's)
and of ANOTHER receiving body ("body": 延吉's referral handed over to 延吉市公安局).
The API is called with each staff role's bearer token.

MAP below says, per route, which roles reach it in each variant; every other cell must be
refused (401, 403, 404, 405, or a redirect to the sign-in page). The test fails on any cell
outside the map — a role reaching what it should not (a leak), a role refused what it should
reach, any 5xx — and on any route the map does not list, so a new route must be classified.
Requests carry no valid input: a POST that reaches its view is refused for its content (400,
409, a page with errors) and changes nothing, except where noted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import stamp_migrations_head
from tests.fuzzing import (
    ROLES,
    Fuzzer,
    World,
    bearer_token,
    build_world,
    fast_commits,
    sign_in,
    stub_letters,
)

LIMITS = {"FOLLOWUP_RATE_LIMIT": "100000 per minute", "SUBMIT_RATE_LIMIT": "100000 per minute"}

# Roles, grouped as the map names them.
EVERYONE = frozenset(ROLES)
NOBODY: frozenset[str] = frozenset()
STAFF = frozenset({"intake", "case", "head", "liaison", "auditor", "admin", "keyless"})
OFFICERS = frozenset({"intake", "case", "head", "keyless"})

# The one action each `<action>` route is tried with: one that needs input, so reaching the
# view changes nothing.
ACTION = {"admin.user_action": "membership", "staff.tip_action": "message",
          "api.staff_tip_action": "message", "staff.referral_action": "reject",
          "api.staff_referral_action": "reject", "liaison.referral_action": "return",
          "api.liaison_referral_action": "return"}


def object_ids(world: World) -> dict[str, dict[str, int]]:
    """Variant → path variable → id. A variant a route has no object for is not tried."""
    own = {"tip_id": world.tip_id, "case_id": world.case_id,
           "attachment_id": world.attachment_id,
           "referral_id": world.referrals["handed_over"], "suggestion_id": world.suggestion_id,
           "user_id": world.users["case"]}
    other = world.other
    unit = {"tip_id": other["tip_id"], "case_id": other["case_id"],
            "attachment_id": other["attachment_id"], "referral_id": other["referral_id"],
            "suggestion_id": other["suggestion_id"], "user_id": world.users["hc_case"]}
    body = {"referral_id": other["body_referral_id"]}
    # A pending request for a reporter's identity: 延吉's case officer's, and 珲春's.
    requests = getattr(world, "identity_requests", {"own": 0, "unit": 0})
    own["request_id"], unit["request_id"] = requests["own"], requests["unit"]
    return {"own": own, "unit": unit, "body": body}


def add_identity_requests(world: World) -> None:
    """Two pending identity requests (portal/intake/identity.py), made as the domain would."""
    from models import IdentityRequest
    from portal.web.extensions import db

    made = {}
    for variant, tip_id, who in (("own", world.tip_id, "case"),
                                 ("unit", world.other["tip_id"], "hc_case")):
        row = IdentityRequest(tip_id=tip_id, requester_id=world.users[who], purpose="contact",
                              reason="to arrange a visit", state="pending")
        db.session.add(row)
        db.session.flush()
        made[variant] = row.id
    db.session.commit()
    world.identity_requests = made  # type: ignore[attr-defined]


# Case documents (/staff/documents, /liaison/documents) are attachments of a case.
DOCUMENT_ROUTES = {"staff.case_document", "liaison.document"}


def cells(app: Flask, world: World) -> list[tuple[str, str, str, str]]:
    """(endpoint, method, variant, path) for every rule, method and variant with objects."""
    ids = object_ids(world)
    documents = {"own": world.document_id,
                 "unit": world.other["document_id"]}
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule.rule)
        object_names = [n for n in names if n not in ("action", "token")]
        variants = [v for v in ids if object_names and all(n in ids[v] for n in object_names)]
        for variant in variants or ["-"]:
            path = rule.rule
            for name in names:
                if name == "action":
                    value = ACTION[rule.endpoint]
                elif name == "token":
                    value = "nonsense"
                elif rule.endpoint in DOCUMENT_ROUTES:
                    value = documents[variant]
                else:
                    value = ids[variant][name]
                path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(value), path, count=1)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                out.append((rule.endpoint, method, variant, path))
    # What may end a visit goes last.
    ending = ("/staff/login", "/staff/logout", "/api/v1/staff/token", "/api/v1/liaison/token")
    return sorted(out, key=lambda c: (c[3].startswith(ending), c))


# Who reaches each route (endpoint and method). A set of roles holds for the route without
# objects and for "own" objects; for objects of another unit ("unit") and another receiving body
# ("body") nobody reaches it unless a dict names them. ANY: a sign-in or sign-out step, which
# answers everyone (a form, 401, 429 or a redirect) and is only checked for 5xx.
ANY = frozenset({"*"})
ADMIN = frozenset({"admin"})
AUDITOR = frozenset({"auditor"})
WITH_KEY = frozenset({"intake", "case", "head"})  # 延吉's officers who hold its key
INTAKE = frozenset({"intake", "head", "keyless"})
# A referral of 延吉's case: its officers (with or without the key) and the liaison of the
# receiving body; for another body's referral, not the liaison.
REFERRAL = {"own": OFFICERS | {"liaison"}, "body": OFFICERS}
# Its package, opened on the server or sealed over the API: only for those who hold a key of
# it (a head without one is told who can grant it, on the page and over the API alike).
PACKAGE = {"own": WITH_KEY | {"liaison"}, "body": WITH_KEY}

MAP: dict[str, frozenset[str] | dict[str, frozenset[str]]] = {
    # Administration: the administrator alone, for any account.
    "admin.home GET": ADMIN, "admin.calendar GET": ADMIN, "admin.calendar POST": ADMIN,
    "admin.categories GET": ADMIN, "admin.categories POST": ADMIN,
    "admin.category_retention POST": ADMIN,
    "admin.offences GET": ADMIN, "admin.offences POST": ADMIN,
    "admin.users GET": ADMIN, "admin.users POST": ADMIN,
    "admin.user_action POST": {"own": ADMIN, "unit": ADMIN},
    # One-time links: a made-up token opens nothing.
    "admin.setup GET": NOBODY, "admin.setup POST": NOBODY,
    "admin.first_sign_in GET": NOBODY, "admin.first_sign_in POST": NOBODY,
    "admin.complete_password_reset GET": NOBODY, "admin.complete_password_reset POST": NOBODY,
    # Roles waiting for a second person: every signed-in person's own list (empty for most).
    "admin.roles_to_confirm GET": STAFF, "admin.roles_to_confirm POST": STAFF,
    # The auditor: metadata and the log of every unit, no content.
    "auditor.index GET": AUDITOR, "auditor.accounts GET": AUDITOR,
    "auditor.decryptions GET": AUDITOR, "auditor.export POST": AUDITOR,
    "auditor.referrals GET": AUDITOR, "auditor.tips GET": AUDITOR,
    "auditor.tip GET": {"own": AUDITOR, "unit": AUDITOR},
    "auditor.verification GET": AUDITOR, "auditor.verify POST": AUDITOR,
    "auditor.identity_requests GET": AUDITOR,
    # The citizen's side: everyone; the follow-up only with the receipt.
    "citizen.index GET": EVERYONE, "citizen.report_form GET": EVERYONE,
    "citizen.report_submit POST": EVERYONE, "citizen.report_language POST": EVERYONE,
    "citizen.receipt_again POST": EVERYONE, "citizen.receipt_download POST": EVERYONE,
    "citizen.followup_form GET": EVERYONE, "citizen.followup_lookup POST": {"citizen"},
    "citizen.followup_show POST": EVERYONE, "citizen.followup_reply POST": EVERYONE,
    "citizen.followup_language POST": EVERYONE,
    "api.openapi GET": EVERYONE, "api.categories GET": EVERYONE, "api.create_tip POST": EVERYONE,
    "api.followup_status POST": {"citizen"}, "api.followup_message POST": EVERYONE,
    # Sign-in and sign-out.
    "staff.login GET": ANY, "staff.login POST": ANY, "staff.second_factor GET": ANY,
    "staff.second_factor POST": ANY, "staff.enroll GET": ANY, "staff.enroll POST": ANY,
    "staff.logout POST": ANY, "staff.logout_everywhere POST": ANY,
    "api.staff_token POST": ANY, "api.liaison_token POST": ANY,
    "api.staff_token_revoke DELETE": ANY,
    # Pages of every signed-in person, listing only what theirs is (a form that reaches its
    # view is refused for what it holds).
    "staff.queue GET": STAFF, "staff.account GET": STAFF, "staff.account POST": STAFF,
    "staff.keys GET": STAFF, "staff.keys POST": STAFF, "staff.cases GET": STAFF,
    "staff.cases POST": STAFF, "staff.referral_list GET": STAFF, "staff.suggestions GET": STAFF,
    "staff.suggestions POST": STAFF, "liaison.index GET": STAFF,
    "api.staff_queue GET": STAFF, "api.staff_counts GET": STAFF,
    "api.staff_referrals GET": STAFF, "api.liaison_referrals GET": STAFF,
    # A tip, its files, a case, a 三书一函 entry: 延吉's officers holding its key.
    "staff.tip GET": WITH_KEY, "staff.tip_action POST": WITH_KEY,
    "staff.attachment GET": WITH_KEY, "staff.case GET": WITH_KEY,
    "staff.case POST": OFFICERS, "staff.case_document GET": WITH_KEY,
    "staff.suggestion GET": WITH_KEY, "staff.suggestion POST": WITH_KEY,
    "liaison.document GET": WITH_KEY,
    "api.staff_tip GET": WITH_KEY, "api.staff_attachment GET": WITH_KEY,
    "api.staff_tip_action POST": WITH_KEY,  # the key before the input, as on the page
    # Legal hold: heads of 延吉; the page that answers a refusal is the tip page, so a head
    # without the key is told that instead (403).
    "staff.legal_hold POST": {"own": frozenset({"head"})},
    "staff.hotline GET": INTAKE, "staff.hotline POST": INTAKE, "api.staff_hotline POST": INTAKE,
    # Referrals.
    "staff.referral GET": REFERRAL, "staff.referral_action POST": REFERRAL,
    "liaison.referral GET": REFERRAL, "liaison.referral_action POST": REFERRAL,
    "api.staff_referral GET": REFERRAL, "api.staff_referral_action POST": REFERRAL,
    "api.liaison_referral GET": REFERRAL, "api.liaison_referral_action POST": REFERRAL,
    "api.staff_package GET": PACKAGE, "api.liaison_package GET": PACKAGE,
    "staff.referral_package GET": PACKAGE, "liaison.referral_package GET": PACKAGE,
    "staff.letter_preview GET": {"own": frozenset({"case", "head"}),
                                 "body": frozenset({"case", "head"})},
    # Blacking out a tip's statement or photo for a referral (portal/cases/redaction.py): the
    # world's
    # tip and photo are not in the referral's case, so no page opens, nor does a step (404; a
    # head without the key is told how to get it first, 403).
    # tests/functional/test_package_redaction.py walks the real ones.
    "staff.redact_statement GET": NOBODY, "staff.redact_statement POST": NOBODY,
    "staff.redact_image GET": NOBODY, "staff.redact_image POST": NOBODY,
    # Reporters' identities (portal/intake/identity.py): asking is refused for its input on the tip
    # page of those who open it; every signed-in person's list of requests (theirs, and for a
    # custodian the ones to decide). The world's requests are pending: nobody reads them, no
    # custodian is here to decide or revoke, only the requester withdraws (which it does), and
    # the world's referral carries no identity.
    "staff.identity_request POST": WITH_KEY, "staff.identity_requests GET": STAFF,
    "staff.identity_read GET": NOBODY, "staff.identity_decide POST": NOBODY,
    "staff.identity_revoke POST": NOBODY,
    "staff.identity_withdraw POST": {"own": frozenset({"case"})},
    "liaison.package_identity GET": NOBODY,
    # Load balancers' probes (portal/web/health.py): everyone, "ok" and "ready" and nothing more.
    "health.healthz GET": EVERYONE, "health.readyz GET": EVERYONE,
}


def expected(endpoint: str, method: str, variant: str) -> frozenset[str]:
    entry = MAP[f"{endpoint} {method}"]
    if isinstance(entry, dict):
        return entry.get(variant, NOBODY)
    return entry if variant in ("-", "own") else NOBODY


def callers(app: Flask, staff: Any, world: World) -> dict[str, tuple[FlaskClient, dict]]:
    """Each role's signed-in client and the headers of its API calls (a bearer token)."""
    out = {}
    for who in ROLES:
        client = sign_in(app, staff, world, who)
        headers = {"Accept-Language": "en"}
        if who in STAFF:
            headers["Authorization"] = "Bearer " + bearer_token(app, staff, world, who)
        out[who] = (client, headers)
    return out


def outcome(response: Any) -> str:
    """"reach" or "deny" (or the 5xx status)."""
    status = response.status_code
    if status >= 500:
        return str(status)
    if status in (401, 403, 404, 405):
        return "deny"
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("Location", "")).path
        if target.startswith("/staff/login"):
            return "deny"
    return "reach"


def observe(app: Flask, staff: Any, world: World) -> tuple[dict, Fuzzer]:
    """(endpoint, method, variant, role) → (outcome, status, path)."""
    fuzzer = Fuzzer(app, "matrix")
    seen = {}
    wrong_receipt = world.receipt[:-1] + ("1" if world.receipt.endswith("0") else "0")
    try:
        for who, (client, headers) in callers(app, staff, world).items():
            fuzzer.role = who
            for endpoint, method, variant, path in cells(app, world):
                kwargs: dict[str, Any] = {}
                # The reporter's own receipt; everyone else one that opens nothing.
                receipt = {"receipt": world.receipt if who == "citizen" else wrong_receipt}
                followup = path.startswith(("/followup", "/api/v1/followup"))
                if path.startswith("/api/"):
                    kwargs["headers"] = headers
                    if method in ("POST", "DELETE"):
                        kwargs["json"] = receipt if followup else {}
                elif method == "POST" and followup:
                    kwargs["data"] = receipt
                response = fuzzer.send(client, method, path, variant, **kwargs)
                seen[(endpoint, method, variant, who)] = (
                    outcome(response) if response is not None else "599",
                    response.status_code if response is not None else 599, path)
    finally:
        fuzzer.close()
    return seen, fuzzer


def test_every_route_for_every_role(app_factory) -> None:
    from portal.operations.setup import complete_setup
    from portal.web.extensions import db
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff

    app = app_factory(**LIMITS, READY_MIN_FREE_MB=1)
    fast_commits(app)
    with app.app_context(), stub_letters():
        keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        stamp_migrations_head(app)  # /readyz: as `flask db upgrade` leaves the database
        staff = Staff(app, keys)
        world = build_world(app, staff)
        add_identity_requests(world)
        routes = {(r.endpoint, m) for r in app.url_map.iter_rules() if r.endpoint != "static"
                  for m in r.methods - {"HEAD", "OPTIONS"}}
        unclassified = sorted(f"{e} {m}" for e, m in routes if f"{e} {m}" not in MAP)
        assert not unclassified, "routes missing from MAP (classify them): " + ", ".join(
            unclassified)
        assert not set(MAP) - {f"{e} {m}" for e, m in routes}, "MAP names routes that are gone"
        seen, fuzzer = observe(app, staff, world)
        db.session.remove()
    wrong, leaks = [], []
    for (endpoint, method, variant, who), (out, status, path) in sorted(seen.items()):
        allowed = expected(endpoint, method, variant)
        if out not in ("reach", "deny"):  # a 5xx
            wrong.append(f"{status} {method} {path} as {who}")
        elif allowed is ANY:
            continue
        elif (out == "reach") != (who in allowed):
            line = f"{method} {path} ({endpoint}, {variant}) as {who}: {status}, " + (
                "reached; the map refuses it" if out == "reach" else "refused; the map allows it")
            wrong.append(line)
            if out == "reach":
                leaks.append(line)
    print(f"\nroute × role matrix: {len(seen)} cells, {len(routes)} routes × {len(ROLES)} roles, "
          f"{len(leaks)} leaks, {len(wrong)} cells outside the map")
    problems = [str(f) for f in fuzzer.distinct()] + wrong
    assert not problems, "\n".join(problems)
