"""Never a 500: every route, for every kind of person, with empty or nonsense input."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from models import User
from portal.auth import begin_enrollment
from portal.extensions import db
from tests.conftest import ADMIN_PASSWORD

SAMPLE = {"tip_id": "1", "attachment_id": "1", "case_id": "1", "referral_id": "1",
          "suggestion_id": "1", "user_id": "1", "token": "nonsense", "action": "accept"}


def urls(app) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: SAMPLE.get(m.group(1), "x"),
                      rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def signed_in_admin(app):
    admin = db.session.scalars(select(User).where(User.username == "admin")).one()
    secret = begin_enrollment(admin, app.config["SECRET_KEY"]).secret
    admin.totp_confirmed_at = admin.created_at
    db.session.commit()
    client = app.test_client()
    client.post("/staff/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    client.post("/staff/login/code", data={"code": pyotp.TOTP(secret).now()})
    return client


@pytest.mark.parametrize("who", ["anonymous", "officer", "head", "liaison", "auditor", "admin"])
def test_no_route_answers_500(app, staff, who) -> None:
    app.config["FOLLOWUP_RATE_LIMIT"] = "1000 per minute"
    client = app.test_client()
    client.post("/api/v1/tips", json={"narrative": "something", "county": "yanji"})
    if who == "admin":
        client = signed_in_admin(app)
    elif who != "anonymous":
        unit = {"liaison": "psb_zhou", "auditor": "zhou"}.get(who, "yanji")
        role = {"officer": "intake_officer"}.get(who, who)
        uid = staff.create(who, unit, role)
        staff.login(client, who, uid)
    failures = []
    routes = urls(app)
    assert len(routes) > 60  # the check covers the whole app, not a handful of pages
    for method, path in routes:
        for body in ({}, {"days": "many", "priority": "x", "user_id": "abc", "category": "P99",
                          "unit": "nowhere", "kind": "bogus", "tips": "a,b", "narrative": 5}):
            if method == "GET":
                response = client.get(path, query_string={"status": "x", "sort": "x",
                                                          "after": "%%", "from": "nope"})
            elif path.startswith("/api/"):
                response = client.open(path, method=method, json=body)
            else:
                response = client.open(path, method=method, data=body)
            if response.status_code >= 500:
                failures.append((method, path, body, response.status_code))
    assert not failures, failures
