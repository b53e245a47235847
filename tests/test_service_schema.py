"""Schema-driven fuzzing (schemathesis): no 5xx and replies that match the OpenAPI schema.

Bounded: a few examples per operation, on SQLite and (when reachable) on
PostgreSQL, which refuses some strings SQLite takes (NUL characters). Requests
go through the ASGI app in-process; admin operations are fuzzed both without
a key (401/403 expected) and with a valid one (except the calibration, which
fits a model per call and is tested on its own).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from nangluc.service import sessions
from nangluc.service.app import create_app
from nangluc.service.settings import Settings
from service_fixtures import (
    ADMIN_KEY,
    PostgresSchema,
    bank_dict,
    postgres_available,
    write_bank,
)

_TMP = Path(tempfile.mkdtemp(prefix="nangluc-schemathesis-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
FUZZ = hypothesis.settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


#: Operations that refuse some schema-valid requests on purpose, as in
#: tests/schemathesis.toml (the real server's fuzzing): an answer's
#: ``"response": 1.0`` is 400 (no type coercion), and a response pattern of
#: items the bank does not hold is 422 naming the entry.
BEYOND_JSON_SCHEMA = {
    ("POST", "/api/v1/sessions/{session_id}/answers"),
    ("POST", "/api/v1/score"),
}


def _app(database_url: str):
    bank = write_bank(_TMP / "bank.json", bank_dict())
    settings = Settings(
        database_url=database_url, bank_path=str(bank), pool_size=2
    ).with_admin_keys(ADMIN_KEY)
    return create_app(settings)


def _fuzz_tests(app, mark=None):
    """The three fuzz tests against ``app`` (one database)."""
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    real_session = str(sessions.start_session(app.state.db, ward="Hải Châu").session_id)

    @schema.parametrize()
    @FUZZ
    def no_server_errors(case) -> None:
        if (case.method, case.path) in BEYOND_JSON_SCHEMA:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])
        else:
            case.call_and_validate()

    # calibrations, bank files and test definitions: their bodies need meaning
    # (stored responses, a valid bank or definition) that random data lacks;
    # tests/test_service_gate.py and tests/test_service_tests.py cover them
    @(
        schema.include(path_regex="/admin/")
        .exclude(path_regex="/calibrations|/bank-files|/test-definitions")
        .parametrize()
    )
    @FUZZ
    def admin_with_key(case) -> None:
        case.call_and_validate(headers={"X-API-Key": ADMIN_KEY})

    @schema.include(path_regex=r"/sessions/\{session_id\}").parametrize()
    @FUZZ
    def real_session_bodies(case) -> None:
        # Random UUIDs almost never name a session: fuzz bodies and queries
        # against one that exists, so the answer path itself is exercised.
        # Replacing the id can turn a negative case into a valid one, so only
        # the checks that hold for any request apply here.
        if case.path_parameters and "session_id" in case.path_parameters:
            case.path_parameters["session_id"] = real_session
        case.call_and_validate(
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )

    tests = (no_server_errors, admin_with_key, real_session_bodies)
    return tests if mark is None else tuple(mark(t) for t in tests)


SQLITE_APP = _app(f"sqlite:///{_TMP / 'fuzz.db'}")
(
    test_sqlite_no_server_errors,
    test_sqlite_admin_with_key,
    test_sqlite_real_session_bodies,
) = _fuzz_tests(SQLITE_APP)

if postgres_available():
    _PG_SCHEMA = PostgresSchema()
    atexit.register(_PG_SCHEMA.drop)
    PG_APP = _app(_PG_SCHEMA.url)
    atexit.register(PG_APP.state.db.dispose)
    (
        test_postgresql_no_server_errors,
        test_postgresql_admin_with_key,
        test_postgresql_real_session_bodies,
    ) = _fuzz_tests(PG_APP, mark=pytest.mark.postgres)
elif os.environ.get("NANGLUC_REQUIRE_POSTGRES") == "1":

    def test_postgresql_fuzzing_needs_postgres() -> None:
        pytest.fail("PostgreSQL is required (NANGLUC_REQUIRE_POSTGRES=1) but unreachable")
