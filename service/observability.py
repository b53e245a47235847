"""What an operator sees of a running service: request logs and Prometheus metrics.

Request logs
    One JSON line per request on the ``nangluc.request`` logger: method, the
    *route* (``/api/v1/sessions/{session_id}/answers``, never the path,
    so no session id is written), status, duration and response size. Bodies
    and query strings are never logged, so no answer, result or ward appears
    in a log, let alone next to a session id. The service's own messages
    (``nangluc.service``) are JSON lines too.

Metrics (``Settings.metrics``, served at ``/metrics``)
    ``nangluc_http_requests_total{method,route,status}``,
    ``nangluc_http_request_duration_seconds{method,route}``,
    ``nangluc_answer_duration_seconds`` (answers only),
    ``nangluc_sessions_started_total``, ``nangluc_sessions_finished_total``,
    ``nangluc_database_errors_total{kind}`` (busy, read-only, unavailable).
    With several worker processes, ``nangluc serve`` points
    ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start;
    each worker writes its counts there and ``/metrics`` on any worker
    reports the sum over all of them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_LOGGER = "nangluc.request"
#: Routes no handler matched share one label (bounded label values).
UNMATCHED = "unmatched"
#: Answer latencies (seconds): the goal is p99 <= 50 ms.
ANSWER_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ANSWER_ROUTE = "/api/v1/sessions/{session_id}/answers"


def configure_logging(level: str, *, request_log: bool) -> None:
    """JSON lines on stderr for the ``nangluc`` loggers (once per process).

    ``level`` applies to ``nangluc.service``; request logs are written at
    INFO when ``request_log`` is on, and not at all when it is off.
    """
    from pythonjsonlogger.json import JsonFormatter

    root = logging.getLogger("nangluc")
    if not any(getattr(h, "nangluc_json", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
        handler.nangluc_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.DEBUG)
    logging.getLogger("nangluc.service").setLevel(level.upper())
    logging.getLogger(REQUEST_LOGGER).setLevel(
        logging.INFO if request_log else logging.CRITICAL + 1
    )


def route_of(scope: Scope) -> str:
    """The route template of a request (no path parameters), or ``unmatched``."""
    return scope.get("path_template") or UNMATCHED  # type: ignore[return-value]


class Metrics:
    """What the service counts; this base counts nothing (``Settings.metrics`` off)."""

    enabled = False

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def started(self) -> None:
        pass

    def finished(self) -> None:
        pass

    def database_error(self, kind: str) -> None:
        pass


class PrometheusMetrics(Metrics):
    """The service's Prometheus metrics (see module docstring); one object per app."""

    enabled = True

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values live in files shared by the workers
        # and are collected at scrape time; otherwise in this app's registry
        # (a registry per app: tests build many apps in one process).
        self.registry = None if self.multiprocess else CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "nangluc_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "nangluc_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            ["method", "route"],
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "nangluc_answer_duration_seconds",
            "Time to answer POST .../answers (the hot path)",
            buckets=ANSWER_BUCKETS,
            registry=registry,
        )
        self.sessions_started = Counter(
            "nangluc_sessions_started", "Tests started", registry=registry
        )
        self.sessions_finished = Counter(
            "nangluc_sessions_finished", "Tests finished", registry=registry
        )
        self.database_errors = Counter(
            "nangluc_database_errors",
            "Requests refused because of the database, by kind",
            ["kind"],
            registry=registry,
        )
        for kind in ("busy", "read-only", "unavailable"):
            self.database_errors.labels(kind=kind)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.request_seconds.labels(method=method, route=route).observe(seconds)
        if route == ANSWER_ROUTE and method == "POST":
            self.answer_seconds.observe(seconds)

    def started(self) -> None:
        self.sessions_started.inc()

    def finished(self) -> None:
        self.sessions_finished.inc()

    def database_error(self, kind: str) -> None:
        self.database_errors.labels(kind=kind).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def request_observer(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """Wrap ``app``: one request log line and the request metrics per HTTP request."""
    logger = logging.getLogger(REQUEST_LOGGER)

    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        size = 0

        async def sending(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - start
            route = route_of(scope)
            metrics.observe_request(scope["method"], route, status, seconds)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "bytes": size,
                    },
                )

    return observed


def observe(metrics: Any) -> Any:
    """Litestar middleware factory for :func:`request_observer` with ``metrics``."""

    def middleware(app: ASGIApp) -> ASGIApp:
        return request_observer(app, metrics)

    return middleware
