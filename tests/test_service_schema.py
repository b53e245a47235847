"""Schema-driven fuzzing (schemathesis): no 5xx and replies that match the OpenAPI schema.

Bounded: a few examples per operation against one SQLite database. Requests
go through the ASGI app in-process; admin operations are fuzzed both without
a key (401/403 expected) and with a valid one (except the calibration, which
fits a model per call and is tested on its own).
"""

from __future__ import annotations

from pathlib import Path

import hypothesis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from service import sessions
from service.app import create_app
from service.settings import Settings
from tests.service_fixtures import ADMIN_KEY, bank_dict, write_bank

_TMP = Path(__import__("tempfile").mkdtemp(prefix="nangluc-schemathesis-"))


def _app():
    bank = write_bank(_TMP / "bank.json", bank_dict())
    settings = Settings(
        database_url=f"sqlite:///{_TMP / 'fuzz.db'}", bank_path=str(bank)
    ).with_admin_keys(ADMIN_KEY)
    return create_app(settings)


APP = _app()
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", APP)


@schema.parametrize()
@hypothesis.settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_server_errors_and_schema_conformance(case) -> None:
    case.call_and_validate()


@schema.include(path_regex="/admin/").exclude(path_regex="/calibrations").parametrize()
@hypothesis.settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_admin_with_key_no_server_errors(case) -> None:
    case.call_and_validate(headers={"X-API-Key": ADMIN_KEY})


REAL_SESSION = str(sessions.start_session(APP.state.db, ward="Hải Châu").session_id)


@schema.include(path_regex=r"/sessions/\{session_id\}").parametrize()
@hypothesis.settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_real_session_no_server_errors(case) -> None:
    # Random UUIDs almost never name a session: fuzz the bodies and queries
    # against one that exists, so the answer path itself is exercised.
    # Replacing the id can turn a negative case into a valid one, so only the
    # checks that hold for any request apply here.
    if case.path_parameters and "session_id" in case.path_parameters:
        case.path_parameters["session_id"] = REAL_SESSION
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )
