"""HTTP API under ``/api/v1``: one controller per resource, thin handlers.

The database driver is blocking. The session handlers (the hot path) are
async and hand their unit of work to the database's own thread pool
(:meth:`Database.run`, one thread per pooled connection, so no thread waits
for a connection); the others are synchronous and run in Litestar's pool
(``sync_to_thread=True``). Either way a reply is sent only after the unit of
work has committed, which is what makes every acknowledged answer durable. The work itself lives in :mod:`nangluc.service.sessions`,
:mod:`nangluc.service.research` and :mod:`nangluc.service.reports`.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import date
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from nangluc.service import cohorts, patterns, reports, research, sessions
from nangluc.service import releases as releases_module
from nangluc.service import tests as test_definitions
from nangluc.service.edge import API_PREFIX
from nangluc.service.observability import Metrics
from nangluc.service.schemas import (
    AGE_GROUPS,
    ActivationIn,
    ActivationLogOut,
    ActivationOut,
    AnswerIn,
    AnswerOut,
    BankOut,
    CalibrationIn,
    CalibrationOut,
    CohortIn,
    CohortOut,
    ErrorBody,
    FrameworkOut,
    Health,
    Language,
    LevelReport,
    Ready,
    ReleaseOut,
    ResultOut,
    ScoreIn,
    ScoreOut,
    SessionOut,
    StartSession,
    TestActivationIn,
    TestActivationOut,
    TestDefinitionOut,
    TestName,
    TestOut,
    TestRef,
    TestVersion,
    UnmatchedWard,
    WardAliasIn,
    WardAliasOut,
    WardListOut,
)
from nangluc.service.settings import hash_key
from nangluc.service.store import Database
from nangluc.service.wards import load_wards

try:
    VERSION = package_version("nangluc")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0.1.0"

API_KEY_HEADER = "X-API-Key"
#: Largest bank file accepted by ``POST /admin/bank-files`` (other bodies: ``max_body_size``).
BANK_FILE_MAX_BYTES = 8 * 1024 * 1024

_DESCRIPTIONS = {
    400: "Malformed request (body, path or query)",
    401: f"No {API_KEY_HEADER} header",
    403: f"Invalid {API_KEY_HEADER}",
    404: "No such session, bank version, test, cohort or ward unit",
    409: "Conflicts with the stored state",
    413: "Request body too large",
    415: "The body is not sent as application/json",
    422: "Well-formed but not acceptable (for example a response out of range)",
    503: "The database is unavailable",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error replies a handler may give."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=_DESCRIPTIONS[code], generate_examples=False
        )
        for code in codes
    }


DB = NamedDependency[Database]
SessionId = Annotated[uuid.UUID, PathParameter(description="The session's id (a UUID)")]
# The pattern of bank version ids (items.schema); it also keeps characters
# PostgreSQL refuses (NUL) out of queries.
CohortPath = Annotated[
    str, PathParameter(description="A cohort's code", pattern=r"^[0-9A-Za-z]{4,16}$")
]
VersionPath = Annotated[
    str,
    PathParameter(description="A bank version id", pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"),
]
LanguageQuery = Annotated[
    Language | None,
    QueryParameter(description="vi or en (default: the language the session started with)"),
]


def location(description: str) -> list[ResponseHeader]:
    """OpenAPI entry of the ``Location`` header a ``201`` reply carries."""
    return [ResponseHeader(name="Location", description=description, documentation_only=True)]


def created(content: Any, path: str) -> Response:
    """A ``201 Created`` reply whose ``Location`` is the new resource's path."""
    return Response(content, status_code=201, headers={"Location": f"{API_PREFIX}{path}"})


def _session_out(view: sessions.SessionView) -> SessionOut:
    return SessionOut(
        session_id=view.session_id,
        status=view.status,  # type: ignore[arg-type]
        answered=view.answered,
        max_items=view.max_items,
        language=view.language,  # type: ignore[arg-type]
        item=view.item,  # type: ignore[arg-type]
        progress=view.progress,
        test=_test_ref(view.test),
    )


def _test_ref(test: dict[str, str] | None) -> TestRef | None:
    return TestRef(**test) if test is not None else None


class ReadyController(Controller):
    path = "/ready"
    tags = ["service"]

    @get(
        "/",
        sync_to_thread=True,
        summary="Readiness: the database answers and its schema is current",
        responses=errors(503),
    )
    def ready(self, db: DB) -> Ready:
        revision = db.check_ready()
        return Ready(status="ready", database=db.backend, revision=revision)


class HealthController(Controller):
    path = "/health"
    tags = ["service"]

    @get("/", sync_to_thread=False, summary="Liveness: the process answers (no database call)")
    def health(self) -> Health:
        return Health(status="ok", version=VERSION)


class FrameworkController(Controller):
    path = "/framework"
    tags = ["framework"]

    @get(
        "/",
        sync_to_thread=True,
        summary="Areas, competences, levels (vi/en, cut scores) and overall rule of the active bank",
        responses=errors(503),
    )
    def framework(self, db: DB) -> FrameworkOut:
        with db.engine.connect() as conn:
            loaded = db.banks.get(db.banks.active_version(conn), conn)
        framework = loaded.document.framework
        scale = loaded.bank.scale
        # Levels come from the bank's scale (the framework's own, or the Đà Nẵng
        # default for a framework or bare bank without levels); descriptions
        # from the framework file when it has them.
        described = (
            {int(band.code): band.description for band in framework.levels}
            if (framework is not None)
            else {}
        )
        levels = [
            {
                "level": lv.code,
                "name": {"vi": lv.name_vi, "en": lv.name_en},
                "lower": lv.lower,
                "upper": lv.upper,
                "description": _text(described[lv.code]) if described.get(lv.code) else None,
            }
            for lv in scale.levels
        ]
        if framework is None:  # a bare bank: area codes only
            areas = [
                {"code": code, "name": {"vi": code, "en": code}} for code in loaded.bank.area_codes
            ]
            competences: list[dict[str, Any]] = []
        else:
            areas = [{"code": a.code, "name": _text(a.name)} for a in framework.areas]
            competences = [
                {"code": c.code, "area": c.area, "name": _text(c.name)}
                for c in framework.competences
            ]
        overall = scale.describe()["overall"]
        return FrameworkOut(
            bank_version=loaded.version,
            areas=areas,  # type: ignore[arg-type]
            competences=competences,  # type: ignore[arg-type]
            levels=levels,  # type: ignore[arg-type]
            age_groups=list(AGE_GROUPS),
            overall=overall,  # type: ignore[arg-type]
            name=_text(framework.name) if framework is not None and framework.name else None,
            basic_skills=[  # type: ignore[arg-type]
                {"code": b.code, "name": _text(b.name)}
                for b in (framework.basic_skills if framework is not None else ())
            ],
        )


def _text(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        vi = str(value.get("vi") or value.get("en") or "")
        return {"vi": vi, "en": str(value.get("en") or vi)}
    return {"vi": str(value), "en": str(value)}


class SessionController(Controller):
    path = "/sessions"
    tags = ["sessions"]

    @post(
        "/",
        summary="Start a test",
        responses=errors(400, 404, 409, 413, 415, 503),
        response_headers=location("The new session: /api/v1/sessions/{session_id}"),
    )
    async def start(
        self, db: DB, state: State, data: JSONBody[StartSession | None] = None
    ) -> Response[SessionOut]:
        data = data or StartSession()
        metrics: Metrics = state.metrics
        view = await db.run(
            sessions.start_session,
            language=data.language,
            ward=data.ward,
            age_group=data.age_group,
            cohort=data.cohort.code if data.cohort else None,
            phase=data.cohort.phase if data.cohort else None,
            test=data.test,
        )
        metrics.started()
        if view.status == sessions.FINISHED:
            metrics.finished()
        return created(_session_out(view), f"/sessions/{view.session_id}")

    @get(
        "/{session_id:uuid}",
        summary="Status, progress and the current item",
        responses=errors(400, 404, 503),
    )
    async def read(
        self, db: DB, session_id: SessionId, language: LanguageQuery = None
    ) -> SessionOut:
        return _session_out(await db.run(sessions.get_session, session_id, language=language))

    @post(
        "/{session_id:uuid}/answers",
        status_code=200,
        summary="Answer the current item (idempotent for a retry)",
        responses=errors(400, 404, 409, 413, 415, 422, 503),
    )
    async def answer(
        self,
        db: DB,
        state: State,
        session_id: SessionId,
        data: JSONBody[AnswerIn],
        language: LanguageQuery = None,
    ) -> AnswerOut:
        metrics: Metrics = state.metrics
        async with db.one_at_a_time(session_id):
            view = await db.run(
                sessions.answer, session_id, data.item_id, data.response, language=language
            )
        if view.recorded and view.status == sessions.FINISHED:
            metrics.finished()
        return AnswerOut(
            session_id=view.session_id,
            status=view.status,
            answered=view.answered,  # type: ignore[arg-type]
            max_items=view.max_items,
            item=view.item,
            progress=view.progress,
            test=_test_ref(view.test),
        )  # type: ignore[arg-type]

    @get(
        "/{session_id:uuid}/result",
        summary="Scores, levels and how sure they are, and what to learn next, of a finished test",
        responses=errors(400, 404, 409, 503),
    )
    async def result(
        self, db: DB, session_id: SessionId, language: LanguageQuery = None
    ) -> ResultOut:
        view = await db.run(sessions.get_result, session_id, language=language)
        return ResultOut(
            session_id=view.session_id,
            overall=view.overall,  # type: ignore[arg-type]
            areas=view.areas,  # type: ignore[arg-type]
            answered=view.answered,
            stop_reason=view.stop_reason,
            settled_by=view.settled_by,
            advice=view.advice,  # type: ignore[arg-type]
            test=_test_ref(view.test),
        )


class ScoreController(Controller):
    path = "/score"
    tags = ["sessions"]

    @post(
        "/",
        status_code=200,
        summary="Score a response pattern (a paper form, a survey): the result of a test",
        description=(
            "Scores a complete or partial response pattern as the end of a test with these "
            "answers is scored: the same overall and area scores, 95% intervals, levels, their "
            "probabilities and advice as `GET /sessions/{id}/result`. Nothing of the pattern "
            "is stored, and no stored test is read. 422 names the entry that is wrong "
            "(`responses[3].item`)."
        ),
        responses=errors(400, 404, 409, 413, 415, 422, 503),
    )
    async def score(self, db: DB, data: JSONBody[ScoreIn]) -> ScoreOut:
        pairs = [(answer.item, answer.response) for answer in data.responses]
        out = await db.run(
            patterns.score_pattern,
            pairs,
            test=data.test,
            test_version=data.test_version,
            bank=data.bank,
            language=data.language,
        )
        return msgspec.convert(out, ScoreOut)


GroupByQuery = Annotated[
    Literal["all", "ward", "age_group", "ward_age_group", "cohort"],
    QueryParameter(
        description="all (the whole city), ward, age_group, ward_age_group or cohort "
        "(each cohort's before, after and change)"
    ),
]
MeasureQuery = Annotated[
    str,
    QueryParameter(
        description="overall, an area code (5) or a competence code (5.2)",
        pattern=r"^(overall|[0-9A-Za-z][0-9A-Za-z.]{0,15})$",
    ),
]
AtLeastQuery = Annotated[
    int | None,
    QueryParameter(
        description="a level code of the active bank's framework (GET /api/v1/framework; "
        "Đà Nẵng: 1..5): also give each group's share at or above it"
    ),
]
FromQuery = Annotated[
    date | None,
    QueryParameter(name="from", description="first day of the window (YYYY-MM-DD, Vietnam's time)"),
]
ToQuery = Annotated[
    date | None, QueryParameter(description="last day of the window (YYYY-MM-DD), included")
]


def planner_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Let through only requests whose ``X-API-Key`` is a planner key (not an admin key)."""
    _check_key(connection, connection.app.state.settings.planner_key_hashes, "planner")


def _report(
    db: Database,
    group_by: str,
    measure: str,
    at_least: int | None,
    from_: date | None,
    to: date | None,
    language: str,
) -> dict[str, Any]:
    try:
        return reports.level_report(
            db,
            group_by=group_by,
            measure=measure,
            at_least=at_least,
            start=from_,
            end=to,
            language=language,
        )
    except ValueError as error:
        raise ValidationException(str(error)) from None


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [planner_guard]
    security = [{"apiKey": []}]

    @get(
        "/levels",
        sync_to_thread=True,
        summary="Level shares of true scores by group, with 95% intervals (differentially private)",
        description=(
            "Estimated share of each group's people at each level of the chosen measure (the "
            "overall score, an area or a competence), the share at or above a level, and the "
            "mean score, each with a 95% interval for sampling, measurement error and privacy "
            "noise. The report covers the active bank's framework: its levels, and only tests "
            "taken on banks of that framework (same areas, levels and overall rule); tests of "
            "another framework are never mixed in. "
            "Computed only from releases: the noisy histograms of each ended period "
            "(quarter by default) and of each closed cohort, drawn once with OpenDP at the "
            "budget ε per test; asking again gives the same figures. A planner key "
            f"({API_KEY_HEADER}) is required."
        ),
        responses=errors(400, 401, 403, 404, 503),
    )
    def levels(
        self,
        db: DB,
        group_by: GroupByQuery = "all",
        measure: MeasureQuery = "overall",
        at_least: AtLeastQuery = None,
        from_: FromQuery = None,
        to: ToQuery = None,
        language: Annotated[Language, QueryParameter(description="vi or en")] = "vi",
    ) -> LevelReport:
        report = _report(db, group_by, measure, at_least, from_, to, language)
        return msgspec.convert(report, LevelReport)

    @get(
        "/levels.csv",
        sync_to_thread=True,
        media_type="text/csv",
        summary="The same report as CSV (cells that begin with = + - @ are escaped)",
        responses=errors(400, 401, 403, 404, 503),
    )
    def levels_csv(
        self,
        db: DB,
        group_by: GroupByQuery = "all",
        measure: MeasureQuery = "overall",
        at_least: AtLeastQuery = None,
        from_: FromQuery = None,
        to: ToQuery = None,
        language: Annotated[Language, QueryParameter(description="vi or en")] = "vi",
    ) -> Response[str]:
        report = _report(db, group_by, measure, at_least, from_, to, language)
        return Response(
            "\ufeff" + reports.level_report_csv(report),  # BOM: spreadsheets read UTF-8
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="nangluc-levels.csv"'},
        )

    @get(
        "/releases",
        sync_to_thread=True,
        summary="The releases reports are computed from: periods and cohorts, with their ε",
        responses=errors(401, 403, 503),
    )
    def releases(self, db: DB) -> list[ReleaseOut]:
        releases_module.ensure_releases(db)
        return [ReleaseOut(**r) for r in releases_module.release_summaries(db)]

    @get(
        "/cohorts",
        sync_to_thread=True,
        summary="Training cohorts and their links, newest first",
        responses=errors(401, 403, 503),
    )
    def cohorts_list(self, db: DB) -> list[CohortOut]:
        return [msgspec.convert(c, CohortOut) for c in cohorts.list_cohorts(db)]

    # Not POST /cohorts: Litestar's OPTIONS reply for a path with a GET and a POST
    # handler lists only one of them (the bank files' POST has its own path too).
    @post(
        "/cohorts/new",
        status_code=201,
        sync_to_thread=True,
        summary="Make a training cohort: a code and two links (before / after)",
        responses=errors(400, 401, 403, 409, 413, 503),
        response_headers=location("The new cohort: /api/v1/reports/cohorts/{code}"),
    )
    def cohorts_create(self, db: DB, data: JSONBody[CohortIn]) -> Response[CohortOut]:
        try:
            cohort = cohorts.create_cohort(db, data.name, days=data.days)
        except ValueError as error:
            raise ValidationException(str(error)) from None
        out = msgspec.convert(cohort, CohortOut)
        return created(out, f"/reports/cohorts/{out.code}")

    @get(
        "/cohorts/{code:str}",
        sync_to_thread=True,
        summary="One training cohort and its links",
        responses=errors(400, 401, 403, 404, 503),
    )
    def cohort(self, db: DB, code: CohortPath) -> CohortOut:
        return msgspec.convert(cohorts.get_cohort(db, code), CohortOut)

    @post(
        "/cohorts/{code:str}/close",
        status_code=200,
        sync_to_thread=True,
        summary="Close a cohort now: its links stop counting, its release follows a day later",
        responses=errors(400, 401, 403, 404, 503),
    )
    def cohorts_close(self, db: DB, code: CohortPath) -> CohortOut:
        return msgspec.convert(cohorts.close_cohort(db, code), CohortOut)


class WardController(Controller):
    path = "/wards"
    tags = ["framework"]

    @get(
        "/",
        sync_to_thread=False,
        summary="The city's wards and communes (suggestions for the ward field)",
    )
    def wards(self, db: DB) -> WardListOut:
        return msgspec.convert(load_wards(db.settings.wards_path).to_json(), WardListOut)


def _check_key(connection: ASGIConnection, hashes: tuple[str, ...], role: str) -> None:
    key = connection.headers.get(API_KEY_HEADER)
    if not key:
        raise NotAuthorizedException(f"this endpoint needs an {API_KEY_HEADER} header ({role} key)")
    digest = hash_key(key)
    # Compare against every configured digest so timing does not tell which matched.
    valid = False
    for stored in hashes:
        valid |= hmac.compare_digest(digest, stored)
    if not valid:
        raise PermissionDeniedException(f"the {API_KEY_HEADER} is not a valid {role} key")


def admin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Let through only requests with a valid admin ``X-API-Key`` (compared as SHA-256 digests)."""
    _check_key(connection, connection.app.state.settings.admin_key_hashes, "admin")


class AdminController(Controller):
    path = "/admin"
    tags = ["admin"]
    guards = [admin_guard]
    security = [{"apiKey": []}]

    @get(
        "/responses.csv",
        sync_to_thread=False,
        media_type="text/csv",
        summary="Every stored answer in the calibration input format (CSV)",
        responses=errors(401, 403),
    )
    def responses(self, db: DB) -> Stream:
        return Stream(
            research.responses_csv(db),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="responses.csv"'},
        )

    @post(
        "/calibrations",
        status_code=201,
        sync_to_thread=True,
        summary="Calibrate on stored responses -> a new draft bank version",
        responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
        response_headers=location("The new bank version: /api/v1/admin/banks/{version}"),
    )
    def calibrate(
        self, db: DB, data: JSONBody[CalibrationIn | None] = None
    ) -> Response[CalibrationOut]:
        data = data or CalibrationIn()
        out = research.calibrate(
            db,
            model=data.model,
            base_version=data.base_version,
            version=data.version,
            prior=data.prior,
            min_responses=data.min_responses,
        )
        return created(CalibrationOut(**out), f"/admin/banks/{out['bank']['version']}")

    @get(
        "/banks",
        sync_to_thread=True,
        summary="Stored bank versions, newest first",
        responses=errors(401, 403, 503),
    )
    def banks(self, db: DB) -> list[BankOut]:
        return [BankOut(**info) for info in research.list_banks(db)]

    @get(
        "/banks/{version:str}",
        sync_to_thread=True,
        summary="A stored bank document",
        responses=errors(401, 403, 404, 503),
    )
    def bank(self, db: DB, version: VersionPath) -> dict[str, Any]:
        return research.bank_document(db, version)

    @post(
        "/bank-files",
        status_code=201,
        sync_to_thread=True,
        # a whole bank (173 items with texts: about 300 KB) is larger than other bodies
        request_max_body_size=BANK_FILE_MAX_BYTES,
        summary="Store a bank file (for example a calibrated one) as a new draft version",
        responses=errors(400, 401, 403, 409, 413, 422, 503),
        response_headers=location("The new bank version: /api/v1/admin/banks/{version}"),
    )
    def add_bank(self, db: DB, data: JSONBody[dict[str, Any]]) -> Response[BankOut]:
        stored = BankOut(**research.store_bank(db, data))
        return created(stored, f"/admin/banks/{stored.version}")

    @post(
        "/banks/{version:str}/activate",
        status_code=200,
        sync_to_thread=True,
        summary="Put a version live through the go-live gate (tests in progress keep theirs)",
        description=(
            "The gate refuses a version with error-level diagnostics, or whose simulated "
            "level accuracy on the citizen test falls more than NANGLUC_GATE_TOLERANCE "
            "(default 0.02) below the active version's; it runs in the request (a second or "
            "two). A refusal is 409 with the gate's result in `gate`; `force` with a `reason` "
            "overrides it. Every attempt is written to the audit log (GET /admin/activations)."
        ),
        responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
    )
    def activate(
        self,
        db: DB,
        version: VersionPath,
        request: Request,
        data: JSONBody[ActivationIn | None] = None,
    ) -> ActivationOut:
        data = data or ActivationIn()
        out = research.activate_bank(
            db, version, actor=key_id(request), force=data.force, reason=data.reason
        )
        return ActivationOut(**out)

    @get(
        "/activations",
        sync_to_thread=True,
        summary="Audit log of bank activations, newest first (who, when, which, why, the gate)",
        responses=errors(401, 403, 503),
    )
    def activations(self, db: DB) -> list[ActivationLogOut]:
        return [ActivationLogOut(**entry) for entry in research.activation_log(db)]


class AdminWardController(Controller):
    path = "/admin/wards"
    tags = ["admin"]
    guards = [admin_guard]
    security = [{"apiKey": []}]

    @get(
        "/unmatched",
        sync_to_thread=True,
        summary="Ward texts of finished tests that match no unit (the reports' 'other' group)",
        responses=errors(401, 403, 503),
    )
    def unmatched(self, db: DB) -> list[UnmatchedWard]:
        return [UnmatchedWard(**w) for w in releases_module.unmatched_wards(db)]

    @post(
        "/aliases",
        status_code=201,
        sync_to_thread=True,
        summary="Count a ward text in a unit from now on (releases already drawn stay as they are)",
        responses=errors(400, 401, 403, 404, 409, 413, 503),
    )
    def alias(self, db: DB, data: JSONBody[WardAliasIn]) -> WardAliasOut:
        return WardAliasOut(**releases_module.add_ward_alias(db, data.text, data.code))


class TestController(Controller):
    path = "/tests"
    tags = ["tests"]

    @get(
        "/",
        sync_to_thread=True,
        summary="The tests one may start, the city's default first",
        description=(
            'Start one with POST /sessions {"test": NAME}; the citizen page opens one with '
            "/?test=NAME. Each has a title, description and intended use in the asked "
            "language, its languages, the areas it scores (null: all) and its length."
        ),
        responses=errors(400, 503),
    )
    def tests(
        self,
        db: DB,
        language: Annotated[Language, QueryParameter(description="vi or en")] = "vi",
    ) -> list[TestOut]:
        return [TestOut(**t) for t in test_definitions.public_tests(db, language)]


class SchemaController(Controller):
    path = "/schemas"
    tags = ["tests"]

    @get(
        "/test-definition",
        sync_to_thread=False,
        media_type="application/schema+json",
        summary="The JSON Schema of test definition documents (draft 2020-12)",
    )
    def test_definition(self) -> dict[str, Any]:
        from nangluc.items.definitions import definition_schema

        return definition_schema()


TestNamePath = Annotated[TestName, PathParameter(description="A test's name")]
TestVersionPath = Annotated[TestVersion, PathParameter(description="A test definition's version")]


class AdminTestController(Controller):
    path = "/admin"
    tags = ["admin"]
    guards = [admin_guard]
    security = [{"apiKey": []}]

    # Not POST /admin/tests: Litestar's OPTIONS reply for a path with a GET and a
    # POST handler lists only one of them (as for bank files).
    @post(
        "/test-definitions",
        status_code=201,
        sync_to_thread=True,
        summary="Store a test definition (JSON; the schema is GET /schemas/test-definition) as a draft",
        description=(
            '422 names every bad field (`rules.max_items: must be an integer >= 1, got "ten"`); '
            "409 when that name and version are stored already (a stored version never "
            "changes). Activate it with POST /admin/tests/{name}/{version}/activate."
        ),
        responses=errors(400, 401, 403, 409, 413, 415, 422, 503),
        response_headers=location("The stored version: /api/v1/admin/tests/{name}/{version}"),
    )
    def add(self, db: DB, data: JSONBody[dict[str, Any]]) -> Response[TestDefinitionOut]:
        stored = TestDefinitionOut(**test_definitions.store_definition(db, data))
        return created(stored, f"/admin/tests/{stored.name}/{stored.version}")

    @get(
        "/tests",
        sync_to_thread=True,
        summary="Stored test definitions (every version, with its status), by name",
        responses=errors(401, 403, 503),
    )
    def list_tests(self, db: DB) -> list[TestDefinitionOut]:
        return [TestDefinitionOut(**info) for info in test_definitions.list_definitions(db)]

    @get(
        "/tests/{name:str}/{version:str}",
        sync_to_thread=True,
        summary="A stored test definition's document",
        responses=errors(400, 401, 403, 404, 503),
    )
    def show(self, db: DB, name: TestNamePath, version: TestVersionPath) -> dict[str, Any]:
        return test_definitions.definition_info(db, name, version)["document"]

    @post(
        "/tests/{name:str}/{version:str}/activate",
        status_code=200,
        sync_to_thread=True,
        summary="Put a test version live through the go-live gate; optionally make it the default",
        description=(
            "The gate simulates the test with its own rules on its bank and areas (and the "
            "active version of the same test on the same simulated citizens) and reports the "
            "level accuracy and mean length in `gate` (`candidate`, `current`). It refuses, "
            "409 with the figures in `gate`, a bank with error-level diagnostics or a drop of "
            "level accuracy beyond NANGLUC_GATE_TOLERANCE; `force` with a `reason` overrides. "
            "Every attempt is in the audit log (GET /admin/activations, kind `test`). Sessions "
            "in progress finish under the version they started with."
        ),
        responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
    )
    def activate(
        self,
        db: DB,
        name: TestNamePath,
        version: TestVersionPath,
        request: Request,
        data: JSONBody[TestActivationIn | None] = None,
    ) -> TestActivationOut:
        data = data or TestActivationIn()
        out = test_definitions.activate_test(
            db,
            name,
            version,
            actor=key_id(request),
            default=data.default,
            force=data.force,
            reason=data.reason,
        )
        return TestActivationOut(**out)


def key_id(connection: ASGIConnection) -> str:
    """Who made an admin request, for the audit log: ``key:`` and 12 hex digits of the key's hash."""
    key = connection.headers.get(API_KEY_HEADER) or ""
    return f"key:{hash_key(key)[:12]}"
