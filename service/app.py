"""The Litestar application: API, error replies, OpenAPI, citizen pages."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import sys
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Link, OpenAPIType, Schema, SecurityScheme
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from threadpoolctl import threadpool_limits

from nangluc.service import schemas
from nangluc.service.api import (
    API_KEY_HEADER,
    VERSION,
    AdminController,
    AdminTestController,
    AdminWardController,
    FrameworkController,
    HealthController,
    ReadyController,
    ReportController,
    SchemaController,
    ScoreController,
    SessionController,
    TestController,
    WardController,
)
from nangluc.service.banks import (
    ConflictError,
    GateRefusedError,
    NotFoundError,
    UnprocessableError,
)
from nangluc.service.db import is_read_only_error
from nangluc.service.docs import OfflineSwaggerPlugin
from nangluc.service.edge import (
    API_PREFIX,
    StrictRequest,
    add_security_headers,
    head_as_get,
    public_cors,
)
from nangluc.service.migrate import SchemaError
from nangluc.service.observability import (
    Metrics,
    PrometheusMetrics,
    configure_logging,
    request_observer,
    route_of,
)
from nangluc.service.settings import Settings
from nangluc.service.store import Database, SessionBusyError
from nangluc.text import LABEL_PATTERN

logger = logging.getLogger("nangluc.service")


def _error(
    status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(
        content={"detail": detail, "status_code": status_code},
        status_code=status_code,
        headers=headers,
    )


def _not_found(_: Request, exc: NotFoundError) -> Response:
    return _error(404, str(exc.args[0]) if exc.args else "not found")


def _conflict(_: Request, exc: ConflictError) -> Response:
    return _error(409, str(exc))


def _gate_refused(_: Request, exc: GateRefusedError) -> Response:
    return Response(
        content={"detail": str(exc), "status_code": 409, "gate": exc.gate}, status_code=409
    )


def _unprocessable(_: Request, exc: UnprocessableError) -> Response:
    return _error(422, str(exc))


def database_error_reply(error: BaseException, lock_timeout: float) -> tuple[str, str, int]:
    """What a database error means for a client: (kind, message, seconds to retry after).

    ``read-only``: the database refuses writes (a SQLite file or folder made
    read-only, a full or read-only disk); an operator has to act, and the
    service recovers by itself once it is writable. ``busy``: a lock or
    statement timeout, or no free connection in time; retry shortly.
    ``unavailable``: anything else (the server is down or unreachable).
    """
    orig = getattr(error, "orig", None)
    text = str(orig or error).lower()
    sqlstate = getattr(orig, "sqlstate", None)
    if is_read_only_error(error):
        return (
            "read-only",
            "the database is read-only: answers cannot be stored until an operator makes it "
            "writable again (the service then recovers by itself)",
            30,
        )
    if (
        isinstance(error, PoolTimeoutError | SessionBusyError)
        or sqlstate in ("55P03", "57014")  # lock_not_available, query_canceled (timeouts)
        or "database is locked" in text
        or "database is busy" in text
    ):
        return (
            "busy",
            f"the database is busy (a lock was held longer than {lock_timeout:g} s); "
            "try again in a moment",
            max(1, round(lock_timeout)),
        )
    return "unavailable", "the database is unavailable; try again shortly", 5


def _database_unavailable(request: Request, exc: Exception) -> Response:
    settings: Settings = request.app.state.settings
    kind, detail, retry_after = database_error_reply(exc, settings.lock_timeout)
    request.app.state.metrics.database_error(kind)
    # The message of the driver only: SQL parameters (a session id next to an
    # answer) never reach the log (the engine also hides them), and the route
    # template, not the path (which holds the session id).
    reason = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0][:200]
    logger.warning(
        "database %s on %s %s: %s", kind, request.method, route_of(request.scope), reason
    )
    return _error(503, detail, headers={"Retry-After": str(retry_after)})


def _schema_not_ready(request: Request, exc: SchemaError) -> Response:
    request.app.state.metrics.database_error("unavailable")
    logger.error("database schema not ready: %s", exc)
    return _error(503, f"the service is not ready: {exc}", headers={"Retry-After": "30"})


def _http_error(_: Request, exc: HTTPException) -> Response:
    """Litestar's own errors (validation, 404 route, 405, 413) in our error shape."""
    body: dict[str, Any] = {"detail": exc.detail, "status_code": exc.status_code}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(content=body, status_code=exc.status_code, headers=exc.headers)


def _internal_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and "disconnected" in str(exc.detail):
        # The client went away (or missed the body deadline) before its body
        # arrived: nothing failed here, and nobody is left to answer.
        logger.info(
            "client disconnected before its request body arrived: %s", route_of(request.scope)
        )
        return _error(400, "the request body was not received")
    logger.exception(
        "unhandled error on %s %s", request.method, route_of(request.scope), exc_info=exc
    )
    return _error(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error")


def _page_handlers() -> list[Any]:
    """Route handlers of the citizen pages (``nangluc.service.pages``), when present."""
    if importlib.util.find_spec("nangluc.service.pages") is None:
        return []
    pages = importlib.import_module("nangluc.service.pages")
    handlers = getattr(pages, "route_handlers", None)
    if callable(handlers):
        handlers = handlers()
    return list(handlers or [])


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Litestar:
    """Build the service.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :meth:`Settings.from_env` (``DATABASE_URL`` etc.).
    database : Database, optional
        An existing handle to share (tests); by default one is made from
        ``settings``. Tables and the configured bank are set up at once.
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, request_log=settings.request_log)
    metrics = PrometheusMetrics() if settings.metrics else Metrics()
    # A test step works on arrays of a few hundred numbers: BLAS threads only
    # add wake-up latency and compete with the other workers for the cores.
    threadpool_limits(1)
    db = database or Database(settings)
    db.setup()

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            HealthController,
            ReadyController,
            FrameworkController,
            SessionController,
            TestController,
            SchemaController,
            ScoreController,
            WardController,
            ReportController,
            AdminController,
            AdminTestController,
            AdminWardController,
        ],
    )

    def provide_db() -> Database:
        return db

    def dispose() -> None:
        if database is None:
            db.dispose()

    app = Litestar(
        route_handlers=[api, *_page_handlers(), *_metrics_handlers(metrics)],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
        },
        state=State({"settings": settings, "db": db, "metrics": metrics}),
        exception_handlers={
            NotFoundError: _not_found,
            ConflictError: _conflict,
            GateRefusedError: _gate_refused,
            UnprocessableError: _unprocessable,
            OperationalError: _database_unavailable,
            PoolTimeoutError: _database_unavailable,
            SessionBusyError: _database_unavailable,
            SchemaError: _schema_not_ready,
            HTTPException: _http_error,
            HTTP_500_INTERNAL_SERVER_ERROR: _internal_error,
        },
        request_max_body_size=settings.max_body_size,
        request_class=StrictRequest,
        before_send=[add_security_headers],
        openapi_config=OpenAPIConfig(
            title="nangluc",
            version=VERSION,
            description="Adaptive assessment of citizens' digital competence (Khung năng lực số, Đà Nẵng).",
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="apiKey", name=API_KEY_HEADER, security_scheme_in="header"
                    )
                }
            ),
            render_plugins=[OfflineSwaggerPlugin()],
        ),
        on_shutdown=[dispose],
        debug=False,
    )
    _fix_openapi(app)
    # Outside the router, so that unmatched routes (404, 405) are logged and
    # counted too; the route template is in the scope by the time it logs.
    # CORS inside the observer, so that preflights are logged and counted too;
    # HEAD is turned into GET inside both, so its reply gets their headers.
    app.asgi_handler = request_observer(
        public_cors(head_as_get(app.asgi_handler), settings.embed_origins), metrics
    )
    return app


def serve_app(settings: Settings | None = None) -> Litestar:
    """The app as ``nangluc serve`` runs it in each worker process: :func:`create_app`, tuned.

    - Once started, everything made so far (modules, tables, the app itself)
      is moved out of the garbage collector's sight (``gc.freeze``): a full
      collection then walks only what requests made, instead of stopping
      the worker for 60–130 ms (measured in ``benchmarks.service_load``).
    - The interpreter lock is handed between the event loop and the session
      threads every :data:`SWITCH_INTERVAL` seconds instead of 5 ms, so a
      thread stepping a test does not keep the loop from reading the next
      request for that long.
    """
    app = create_app(settings)
    app.on_startup.append(_tune_worker)
    return app


#: Seconds between forced hand-overs of the interpreter lock in a served worker.
SWITCH_INTERVAL = 0.001


def _tune_worker() -> None:
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)


def _metrics_handlers(metrics: Metrics) -> list[Any]:
    """``GET /metrics`` (Prometheus' text format) when metrics are on."""
    if not metrics.enabled:
        return []

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def prometheus_metrics() -> Response[bytes]:
        content, media_type = metrics.exposition()
        return Response(content=content, media_type=media_type)

    return [prometheus_metrics]


#: Operations whose JSON body may be left out (every field has a default).
OPTIONAL_BODIES = (
    ("post", f"{API_PREFIX}/sessions"),
    ("post", f"{API_PREFIX}/admin/calibrations"),
    ("post", f"{API_PREFIX}/admin/banks/{{version}}/activate"),
)

_SESSION = f"{API_PREFIX}/sessions/{{session_id}}"
#: OpenAPI links: how a client goes from a reply to the next request (a test's
#: whole course); clients and stateful fuzzers follow them.
SESSION_LINKS = {
    "ReadSession": ("ApiV1SessionsSessionIdRead", None),
    "AnswerCurrentItem": ("ApiV1SessionsSessionIdAnswersAnswer", "$response.body#/item/id"),
    "ReadResult": ("ApiV1SessionsSessionIdResultResult", None),
}
LINKED_REPLIES = (("post", f"{API_PREFIX}/sessions", "201"), ("post", f"{_SESSION}/answers", "200"))


def _fix_openapi(app: Litestar) -> None:
    """Make the OpenAPI document say what the handlers do.

    Litestar's schema generation does not carry msgspec's
    ``forbid_unknown_fields`` over (we add ``additionalProperties: false``),
    and marks an optional body as required; clients (and schemathesis)
    would otherwise expect what the server refuses, or refuse what it takes.
    """
    openapi = app.openapi_schema
    for method, path in OPTIONAL_BODIES:
        operation = getattr(openapi.paths[path], method) if path in (openapi.paths or {}) else None
        if operation is not None and operation.request_body is not None:
            operation.request_body.required = False
    for method, path, status in LINKED_REPLIES:
        operation = getattr(openapi.paths[path], method) if path in (openapi.paths or {}) else None
        reply = (operation.responses or {}).get(status) if operation is not None else None
        if reply is None:
            continue
        reply.links = {
            name: Link(
                operation_id=target,
                parameters={"session_id": "$response.body#/session_id"},
                request_body=None if item is None else {"item_id": item, "response": 0},
            )
            for name, (target, item) in SESSION_LINKS.items()
        }
    components = openapi.components.schemas or {}
    activation = components.get("ActivationIn")
    if activation is not None:
        # force overrides the go-live gate only with a reason (422 otherwise).
        activation.schema_if = Schema(properties={"force": Schema(const=True)}, required=["force"])
        activation.then = Schema(
            properties={"reason": Schema(type=OpenAPIType.STRING, min_length=1)},
            required=["reason"],
        )
    start = components.get("StartSession")
    if start is not None and start.properties and "ward" in start.properties:
        # What clean_label refuses, for clients that check before sending.
        start.properties["ward"].pattern = LABEL_PATTERN  # type: ignore[union-attr]
    answer = components.get("AnswerIn")
    if answer is not None and answer.properties and "response" in answer.properties:
        # msgspec's ge=0 arrives as the float 0.0; an integer field's bound is 0.
        answer.properties["response"].minimum = 0  # type: ignore[union-attr]
    for name, schema in components.items():
        struct = getattr(schemas, name, None)
        config = getattr(struct, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
