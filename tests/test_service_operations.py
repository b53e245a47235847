"""What an operator runs on: readiness, request logs and Prometheus metrics, on a real server.

- ``/api/v1/health`` is liveness (no database); ``/api/v1/ready`` checks the
  database and its schema, and says 503 when either is not ready.
- Request logs are JSON lines with the route template: no session id, ward,
  answer or result appears in the server's output.
- ``/metrics`` (``NANGLUC_METRICS=1``) counts requests by route and status,
  answer latency, sessions started and finished and database errors, summed
  over both workers of ``nangluc serve --workers 2``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from service_fixtures import (
    ADMIN_KEY,
    ServerProcess,
    bank_dict,
    fresh_database,
    run_to_end,
    write_bank,
)

API = "/api/v1"


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 if absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        if not re.fullmatch(re.escape(name) + r"(\{.*\})?", sample):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', sample))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


@pytest.mark.slow
def test_logs_metrics_and_readiness_with_two_workers(tmp_path: Path) -> None:
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    env = {"NANGLUC_METRICS": "1", "NANGLUC_ADMIN_KEY": ADMIN_KEY}
    ward = "Phường Nhật Ký Riêng"
    with (
        fresh_database("sqlite", tmp_path) as url,
        ServerProcess(
            url, bank, env=env, workers=2, args=("--log-level", "info", "--access-log")
        ) as server,
    ):
        sessions = []
        for k in range(4):  # a new connection each: both workers serve some
            with httpx.Client(base_url=server.base, timeout=30) as http:
                started = http.post(API + "/sessions", json={"ward": ward})
                assert started.status_code == 201, started.text
                started = started.json()
                rng = np.random.default_rng(k)
                answers = run_to_end(http, started["session_id"], started["item"], rng)
                result = http.get(f"{API}/sessions/{started['session_id']}/result").json()
                sessions.append((started["session_id"], answers, result))
        with httpx.Client(base_url=server.base, timeout=30) as http:
            assert http.get(API + "/health").json()["status"] == "ok"
            ready = http.get(API + "/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
            assert http.get("/no/such/page").status_code == 404
            assert http.head(API + "/health").status_code == 200  # logged and counted as HEAD
            # Scrape until both workers' counts are in (each scrape lands on one worker,
            # which reads the counts of all of them).
            texts = [http.get("/metrics") for _ in range(6)]
        for reply in texts:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/plain")
            text = reply.text
            assert _metric(text, "nangluc_sessions_started_total") == 4
            assert _metric(text, "nangluc_sessions_finished_total") == 4
            answers = sum(n for _, n, _ in sessions)
            assert _metric(text, "nangluc_answer_duration_seconds_count") == answers
            assert (
                _metric(
                    text,
                    "nangluc_http_requests_total",
                    method="POST",
                    route="/api/v1/sessions/{session_id}/answers",
                    status="200",
                )
                == answers
            )
            assert (
                _metric(text, "nangluc_http_requests_total", route="unmatched", status="404") >= 1
            )
            assert "nangluc_database_errors_total" in text
            head = {"method": "HEAD", "route": "/api/v1/health", "status": "200"}
            assert _metric(text, "nangluc_http_requests_total", **head) == 1
        server.stop()
        output = server.output()

    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "nangluc.request"]
    assert len(requests) >= 4 * 10
    routes = {line["route"] for line in requests}
    assert "/api/v1/sessions/{session_id}/answers" in routes
    assert any(r["method"] == "HEAD" and r["route"] == "/api/v1/health" for r in requests)
    assert all({"method", "route", "status", "duration_ms"} <= set(line) for line in requests)
    # Nothing that identifies a session, and nothing it said or got, in the log.
    for session_id, _, result in sessions:
        assert session_id not in output and session_id.replace("-", "") not in output
        assert f'"score": {result["overall"]["score"]}' not in output
    assert ward not in output and json.dumps(ward)[1:-1] not in output


def test_readiness_says_503_when_the_database_is_not_ready(tmp_path: Path) -> None:
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    database = tmp_path / "ready.db"
    with ServerProcess(f"sqlite:///{database}", bank) as server:
        assert httpx.get(server.base + API + "/ready", timeout=10).status_code == 200
        import sqlite3

        with sqlite3.connect(database) as conn:  # as if an older release's schema were restored
            conn.execute("UPDATE alembic_version SET version_num = '0001_initial'")
        reply = httpx.get(server.base + API + "/ready", timeout=10)
        assert reply.status_code == 503, reply.text
        assert "nangluc db upgrade" in reply.json()["detail"]
        assert reply.headers["retry-after"]
        assert httpx.get(server.base + API + "/health", timeout=10).status_code == 200
        assert httpx.get(server.base + "/metrics", timeout=10).status_code == 404  # off by default
