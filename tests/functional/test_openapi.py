"""The API's OpenAPI document is generated from the routes and the schemas
(portal/web/api/openapi.py): every API route is in it and nothing else, and it is true, as
Schemathesis finds with every one of its checks against a portal with data in it."""

from __future__ import annotations

from werkzeug.exceptions import MethodNotAllowed, NotFound

from portal.web.api.openapi import operations

LIMITS = {"FOLLOWUP_RATE_LIMIT": "100000 per minute", "SUBMIT_RATE_LIMIT": "100000 per minute",
          "STAFF_SIGNIN_RATE_LIMIT": "100000 per minute"}


def test_every_api_route_is_declared_and_in_the_document(app, client) -> None:
    undeclared = sorted(f"{method.upper()} {path}" for path, method, _rule, declared
                        in operations(app) if declared is None)
    assert not undeclared, f"API views without an OpenAPI declaration: {undeclared}"
    doc = client.get("/api/v1/openapi.json").get_json()
    routes = {(path, method) for path, method, _rule, _declared in operations(app)}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == routes
    assert len(routes) >= 21


def test_no_path_in_the_document_lacks_a_route(app, client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    adapter = app.url_map.bind("localhost")
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":  # a value the document allows
                    value = parameter["schema"].get("enum", ["1"])[0]
                    concrete = concrete.replace("{" + parameter["name"] + "}", value)
            try:
                endpoint, _ = adapter.match("/api/v1" + concrete, method=method.upper())
            except (NotFound, MethodNotAllowed) as missing:
                raise AssertionError(f"{method.upper()} {path}: no route") from missing
            assert endpoint.startswith("api.")


def test_an_undeclared_method_is_405_with_allow(client) -> None:
    response = client.open("/api/v1/tips", method="TRACE")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"POST"}
    assert response.get_json()["status"] == 405


def test_schemathesis_finds_nothing_with_every_check(app_factory) -> None:
    """`schemathesis run --checks all`, bounded for CI to 150 s of requests (a loaded machine
    gets through part of the coverage phase; bench/schemathesis_all.py runs all of it, more):
    schema-valid requests accepted, invalid ones refused, every status and method declared,
    no 500, as an intake officer with a token and the ids of a tip, a file and a referral."""
    from portal.operations.setup import complete_setup
    from portal.web.extensions import db
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff
    from tests.fuzzing import bearer_token, build_world
    from tests.fuzzing_api import run_all_checks

    app = app_factory(**LIMITS)
    with app.app_context():
        keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        staff = Staff(app, keys)
        world = build_world(app, staff)
        token = bearer_token(app, staff, world, "intake")
        db.session.remove()
    run = run_all_checks(app, world, token, max_examples=2, max_time=150)
    assert run.returncode == 0, run.output[-20000:]
