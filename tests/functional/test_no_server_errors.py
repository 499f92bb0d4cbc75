"""Never a 500, proven by fuzzing rather than by the inputs one thought of.

For every kind of person (anonymous, a reporter with a receipt, intake officer, case officer,
head, liaison of public security, auditor, administrator, and a head who was never granted the
unit's key), in a portal with real objects (a tip with a photo, a case, referrals in five
states, a 三书一函 entry): every page they can reach is visited, every HTML form on it is posted
with out-of-range values for every select and nasty values for every field (tests/fuzzing.py),
and every route of the app is hit with empty and wrongly typed bodies. Any answer of 500 or more
fails the test, with the route, the input and the head of the traceback.
"""

from __future__ import annotations

import pytest

from tests.fuzzing import ROLES, Fuzzer, build_world, crawl_forms, hit_every_route, sign_in

LIMITS = {"FOLLOWUP_RATE_LIMIT": "100000 per minute", "SUBMIT_RATE_LIMIT": "100000 per minute"}


@pytest.mark.parametrize("who", ROLES)
def test_no_page_or_form_answers_500(app_factory, who) -> None:
    from portal.operations.setup import complete_setup
    from portal.web.extensions import db
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff

    app = app_factory(**LIMITS)
    with app.app_context():
        keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        staff = Staff(app, keys)
        world = build_world(app, staff)
        client = sign_in(app, staff, world, who)
        fuzzer = Fuzzer(app, who)
        try:
            extra = [("POST", "/followup", {"data": {"receipt": world.receipt}})] if (
                who == "citizen") else []
            own = world.admin_id if who == "admin" else world.users.get(who)
            counts = crawl_forms(fuzzer, client, world, own_id=own, extra_pages=extra, level=0)
            assert counts["forms"] >= (1 if who in ("anonymous", "citizen") else 3), counts
            sent = hit_every_route(fuzzer, client, world)
            assert sent > 300  # the whole app, not a handful of pages
        finally:
            fuzzer.close()
            db.session.remove()
        problems = fuzzer.distinct()
        assert not problems, "\n\n".join(str(p) for p in problems)


def test_the_fuzzer_finds_a_500_behind_a_select() -> None:
    """The crawler can fail: a form whose handler trusts its select is caught."""
    from flask import Flask, request

    from tests.fuzzing import World

    toy = Flask("toy")
    toy.config["TESTING"] = True
    units = {"yanji": "延吉市", "tumen": "图们市"}

    @toy.get("/")
    def page() -> str:
        options = "".join(f'<option value="{k}">{v}</option>' for k, v in units.items())
        return (f'<html><form method="post" action="/pick"><select name="unit">{options}'
                '</select><input name="note"></form></html>')

    @toy.post("/pick")
    def pick() -> str:
        return units[request.form["unit"]]  # KeyError for a value the list did not offer

    world = World(users={}, admin_id=0, receipt="", tip_id=0, other_tip_id=0, case_tip_ids=[0],
                  attachment_id=0, case_id=0, referrals={}, suggestion_id=0)
    fuzzer = Fuzzer(toy, "anonymous")
    counts = crawl_forms(fuzzer, toy.test_client(), world, level=0)
    fuzzer.close()
    assert counts["forms"] == 1
    found = {(f.path, f.label.split(" (")[0]) for f in fuzzer.findings}
    assert ("/pick", "unit='999999999999'") in found
    assert all("KeyError" in f.traceback for f in fuzzer.findings)
