"""The API fuzzed from its own OpenAPI document (/api/v1/openapi.json) with Schemathesis, in
process against the Flask app: for each operation, examples that fit the schema and examples
that do not (wrong types, missing fields, out-of-range values), as one kind of caller. Used by
tests/functional/test_fuzz_api.py (a bounded, repeatable run) and bench/fuzz.py (as many
examples as asked).

Every answer of 500 or more is a finding (tests/fuzzing.Fuzzer); an answer that does not match
what the document promises for it (status code, content type, body schema) is a mismatch.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from tests.fuzzing import Finding, Fuzzer, World, bearer_token

# Who calls the API: nobody, a reporter with a receipt, officers, a liaison, a member without
# the unit's key. Staff roles carry a bearer token.
API_ROLES = ("anonymous", "citizen", "intake", "case", "head", "liaison", "keyless")


@dataclass
class ApiRun:
    operations: int = 0
    examples: int = 0
    mismatches: list[str] = field(default_factory=list)


def _real_ids(world: World) -> dict[str, list[int]]:
    return {"tip_id": [world.tip_id, world.case_tip_ids[0], world.other_tip_id],
            "referral_id": list(world.referrals.values()),
            "attachment_id": [world.attachment_id]}


def load_schema(app: Flask) -> Any:
    import schemathesis

    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def fuzz_api(fuzzer: Fuzzer, app: Flask, staff: Any, world: World, role: str, *,
             examples: int, seed: int | None = None, derandomize: bool = False,
             check_schema: bool = True) -> ApiRun:
    """Run every operation of the document with `examples` generated cases in each mode:
    `derandomize` for the same cases every run (the suite), `seed` for a repeatable random
    run, neither for new cases every time (the bench)."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = load_schema(app)
    headers = {"Accept-Language": "en"}
    if role not in ("anonymous", "citizen"):
        headers["Authorization"] = "Bearer " + bearer_token(app, staff, world, role)
    real = _real_ids(world)
    run = ApiRun()
    conformance = [status_code_conformance, content_type_conformance,
                   response_schema_conformance]

    for result in schema.get_all_operations():
        operation = result.ok()
        run.operations += 1
        ids = [p.name for p in operation.path_parameters if p.name in real]
        label = f"{operation.method.upper()} {operation.path}"
        if operation.path == "/staff/token" and operation.method == "delete":
            continue  # would end this caller's token; tests/functional/test_staff_api covers it
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if ids:  # half the examples name objects that exist
                strategy = st.one_of(strategy, _with_real_ids(operation, mode, ids, real))

            test = given(strategy)(_attempt(fuzzer, run, world, role, headers, label, mode,
                                            conformance if check_schema else None))
            test = settings(max_examples=examples, deadline=None, database=None,
                            derandomize=derandomize, phases=[Phase.explicit, Phase.generate],
                            verbosity=Verbosity.quiet,
                            suppress_health_check=list(HealthCheck))(test)
            if seed is not None:
                test = fixed_seed(seed)(test)
            try:
                test()
            except Unsatisfiable:  # nothing in this operation can be made invalid
                assert mode == GenerationMode.NEGATIVE, label
    return run


def _with_real_ids(operation: Any, mode: Any, ids: list[str], real: dict[str, list[int]]
                   ) -> Any:
    from hypothesis import strategies as st

    return st.tuples(*(st.sampled_from(real[n]) for n in ids)).flatmap(
        lambda values: operation.as_strategy(
            generation_mode=mode, path_parameters=dict(zip(ids, values, strict=True))))


def _attempt(fuzzer: Fuzzer, run: ApiRun, world: World, role: str, headers: dict[str, str],
             label: str, mode: Any, conformance: list[Any] | None) -> Callable[[Any], None]:
    from schemathesis import GenerationMode

    def attempt(case: Any) -> None:
        if role == "citizen" and isinstance(case.body, dict) and "receipt" in case.body:
            case.body["receipt"] = world.receipt
        run.examples += 1
        fuzzer.requests[fuzzer.role] += 1
        fuzzer._catch.last = ""
        try:
            response = case.call(headers=headers)
        except Exception:
            fuzzer.findings.append(Finding(fuzzer.role, case.method, case.formatted_path,
                                           _describe(case, mode), 599,
                                           traceback.format_exc()))
            return
        if response.status_code >= 500:
            fuzzer.findings.append(Finding(
                fuzzer.role, case.method, case.formatted_path, _describe(case, mode),
                response.status_code, fuzzer._catch.last))
            return
        if conformance and mode == GenerationMode.POSITIVE:
            try:
                case.validate_response(response, checks=conformance,
                                       headers=headers)
            except (Exception, BaseExceptionGroup) as error:  # a mismatch, reported
                run.mismatches.append(f"{label} as {role}: {_first_line(error)} "
                                      f"[{response.status_code}] {_describe(case, mode)}")

    return attempt


def _describe(case: Any, mode: Any) -> str:
    text = (f"{mode.value}: path={case.path_parameters} query={case.query} "
            f"body={case.body!r}")
    return text if len(text) < 300 else text[:300] + "…"


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return " / ".join(lines[:3])[:400]


# ---------------------------------------------------------------------------------------------
# Schemathesis's own runner, every check (`schemathesis run --checks all`)


@dataclass
class CliRun:
    returncode: int
    output: str


def run_all_checks(app: Flask, world: World, token: str, *, max_examples: int,
                   phases: str = "examples,coverage,fuzzing", seed: int | None = 1,
                   max_time: int | None = None, timeout: float = 600) -> CliRun:
    """Serve `app` on a loopback port (a thread of this process) and run the Schemathesis CLI
    against its document with every check, a staff bearer token and the ids of objects that
    exist (so that no operation is tried on 404s only); `max_time` bounds the run in seconds
    (Schemathesis stops where it is). DELETE /staff/token is left out: it
    would end the run's token (tests/functional/test_staff_api.py revokes one)."""
    import os
    import subprocess
    import sys
    import tempfile
    import threading
    from pathlib import Path

    from werkzeug.serving import make_server

    root = Path(__file__).resolve().parents[1]
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    referral = world.referrals.get("handed_over") or next(iter(world.referrals.values()))
    config = (f'[parameters]\n"path.tip_id" = {world.tip_id}\n'
              f'"path.referral_id" = {referral}\n'
              f'"path.attachment_id" = {world.attachment_id}\n'
              # An action on a tip or a step of a referral may be refused for what the data
              # holds, not for the request's shape (no such officer to assign, the 移送书's
              # facts missing, the deadline past the calendar's end): 400 with the reason, as
              # the document says. Every other operation must take what its schema allows.
              '[[operations]]\ninclude-path-regex = '
              '"(/\\\\{action\\\\}|/staff/tips/\\\\{tip_id\\\\}/[a-z]+)$"\n'
              '[operations.checks.positive_data_acceptance]\n'
              'expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]\n'
              # An Idempotency-Key sent again with other content is refused (422, declared):
              # the coverage phase sends its one example key with every body.
              '[[operations]]\ninclude-path = "/tips"\n'
              '[operations.checks.positive_data_acceptance]\n'
              'expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]\n'
              # The same for a follow-up message: a key that sent a message to one tip is
              # refused (422, declared) with a message to another.
              '[[operations]]\ninclude-path = "/followup/messages"\n'
              '[operations.checks.positive_data_acceptance]\n'
              'expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]\n')
    try:
        with tempfile.TemporaryDirectory() as folder:
            config_file = Path(folder) / "schemathesis.toml"
            config_file.write_text(config)
            command = [
                sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file),
                "run", f"http://127.0.0.1:{server.server_port}/api/v1/openapi.json",
                "--checks", "all", "--workers", "1", "--phases", phases,
                "--max-examples", str(max_examples), "-H", f"Authorization: Bearer {token}",
                "-H", "Accept-Language: en", "--exclude-method", "DELETE", "--no-color",
                *(["--seed", str(seed)] if seed is not None else []),
                *(["--max-time", str(max_time)] if max_time is not None else []),
                "--suppress-health-check", "all"]
            done = subprocess.run(
                command, cwd=folder, capture_output=True, text=True, timeout=timeout,
                env={**os.environ, "PYTHONPATH": str(root),
                     "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"})
    finally:
        server.shutdown()
        thread.join()
    return CliRun(done.returncode, done.stdout + done.stderr)
