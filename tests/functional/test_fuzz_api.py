"""The API fuzzed from its OpenAPI document (tests/fuzzing_api.py, Schemathesis in process):
for each caller (nobody, a reporter with a receipt, an intake officer, a liaison of public
security, a head who holds no key), every operation with generated examples that fit the schema
and examples that do not. No answer may be a 5xx, and what fits the schema is answered as the
document says (status code, content type, body). The same examples every run (derandomized);
bench/fuzz.py draws new ones, as many as asked."""

from __future__ import annotations

import pytest

from tests.fuzzing import Fuzzer, build_world
from tests.fuzzing_api import fuzz_api

LIMITS = {"FOLLOWUP_RATE_LIMIT": "100000 per minute", "SUBMIT_RATE_LIMIT": "100000 per minute"}
EXAMPLES = 4  # per operation, mode and caller: about 25 s on SQLite for the five callers


@pytest.mark.parametrize("who", ["anonymous", "citizen", "intake", "liaison", "keyless"])
def test_api_fuzzed_from_its_openapi_document(app_factory, who) -> None:
    from portal.operations.setup import complete_setup
    from portal.web.extensions import db
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff

    app = app_factory(**LIMITS)
    with app.app_context():
        keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        staff = Staff(app, keys)
        world = build_world(app, staff)
        fuzzer = Fuzzer(app, "api " + who)
        try:
            run = fuzz_api(fuzzer, app, staff, world, who, examples=EXAMPLES, derandomize=True)
        finally:
            fuzzer.close()
            db.session.remove()
    assert run.operations >= 20 and run.examples >= run.operations * EXAMPLES
    problems = fuzzer.distinct()
    assert not problems, "\n\n".join(str(p) for p in problems)
    assert not run.mismatches, "\n".join(sorted(set(run.mismatches)))


def test_a_multipart_part_without_a_name_is_an_unknown_field(client) -> None:
    """Found by the fuzzer: a part with no name reached the schema as the key None (500)."""
    body = (b'--B\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n'
            b'--B\r\nContent-Disposition: form-data; name="narrative"\r\n\r\nn\r\n--B--\r\n')
    response = client.post("/api/v1/tips", data=body, headers={"Accept-Language": "en"},
                           content_type="multipart/form-data; boundary=B")
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["None"]
