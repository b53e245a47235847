"""The HTTP API through Litestar's test client, on SQLite and PostgreSQL."""

# ruff: noqa: F811 - pytest fixtures are imported by name and used as arguments

from __future__ import annotations

import csv
import io
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

from nangluc.service import research
from nangluc.service.db import RESPONSE, SESSION
from service_fixtures import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    app_client,
    bank_dict,
    client,
    database_url,
    fresh_client,
    run_to_end,
)

API = "/api/v1"
ITEM_KEYS = {"id", "area", "competence", "kind", "text", "options"}


def _stored(client, session_id: str) -> tuple[int, int, int]:
    """(stored answers, lock version, answered count) of one session."""
    engine = client.app.state.db.engine
    sid = uuid.UUID(session_id)
    with engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).select_from(RESPONSE).where(RESPONSE.c.session_id == sid)
        ).scalar_one()
        lock, answered = conn.execute(
            sa.select(SESSION.c.lock_version, SESSION.c.answered).where(SESSION.c.id == sid)
        ).one()
    return n, lock, answered


def _count_sessions(client) -> int:
    with client.app.state.db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(SESSION)).scalar_one()


def _start(client, **body) -> dict:
    reply = client.post(f"{API}/sessions", json=body) if body else client.post(f"{API}/sessions")
    assert reply.status_code == 201, reply.text
    return reply.json()


def _answer(client, session_id: str, item_id: str, response: int):
    return client.post(
        f"{API}/sessions/{session_id}/answers", json={"item_id": item_id, "response": response}
    )


def test_health_and_openapi(client) -> None:
    assert client.get(f"{API}/health").json()["status"] == "ok"
    schema = client.get("/schema/openapi.json").json()
    assert f"{API}/sessions/{{session_id}}/answers" in schema["paths"]
    assert schema["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"


def test_framework_lists_areas_competences_levels(client) -> None:
    body = client.get(f"{API}/framework").json()
    assert [a["code"] for a in body["areas"]] == ["1", "2", "3", "4", "5"]
    assert len(body["competences"]) == 17
    assert body["areas"][3]["name"] == {"vi": "Bảo vệ và an toàn", "en": "Safety and protection"}
    assert [(lv["lower"], lv["upper"]) for lv in body["levels"]] == [
        (0, 20),
        (20, 40),
        (40, 60),
        (60, 80),
        (80, 100),
    ]
    assert body["levels"][0]["name"]["vi"] == "Bắt đầu"
    assert [lv["level"] for lv in body["levels"]] == [1, 2, 3, 4, 5]
    assert body["levels"][2]["name"] == {"vi": "Khá", "en": "Intermediate"}


def test_full_test_to_result(client) -> None:
    started = _start(client, language="en", ward="Hải Châu", age_group="65+")
    assert started["status"] == "in_progress" and started["answered"] == 0
    session_id = started["session_id"]
    sent = run_to_end(client, session_id, started["item"], np.random.default_rng(1))
    state = client.get(f"{API}/sessions/{session_id}").json()
    assert state == {
        "session_id": session_id,
        "status": "finished",
        "answered": sent,
        "max_items": 40,
        "language": "en",
        "item": None,
        "progress": 1.0,
        # Without a test's name, the city's default test: the citizen test.
        "test": {"name": "citizen", "version": "2"},
    }
    result = client.get(f"{API}/sessions/{session_id}/result").json()
    assert result["answered"] == sent
    assert result["test"] == {"name": "citizen", "version": "2"}
    assert set(result["overall"]) == {
        "score",
        "se",
        "interval",
        "level",
        "level_name",
        "probability",
        "level_probabilities",
        "settled",
    }
    assert result["stop_reason"] in {"level_probable", "max_items", "no_item_left"}
    assert result["settled_by"] == [{"rule": "LevelProbability", "threshold": 0.9}]
    assert [a["area"] for a in result["areas"]] == ["1", "2", "3", "4", "5"]
    assert result["areas"][0]["name"] == "Information and data"
    scores = [a["score"] for a in result["areas"]]
    assert result["overall"]["score"] == pytest.approx(np.mean(scores))
    assert all(0 <= s <= 100 and a["se"] > 0 for s, a in zip(scores, result["areas"], strict=True))
    bands = [0, 20, 40, 60, 80]
    for part in (result["overall"], *result["areas"]):
        # The framework's code (1..5) of the score's band.
        assert part["level"] == int(np.searchsorted(bands, part["score"], side="right"))
        assert part["interval"][0] <= part["interval"][1]
        assert [p["level"] for p in part["level_probabilities"]] == [1, 2, 3, 4, 5]
        assert sum(p["probability"] for p in part["level_probabilities"]) == pytest.approx(1.0)
        assert part["probability"] == pytest.approx(
            part["level_probabilities"][part["level"] - 1]["probability"]
        )
    # Names follow the asked language.
    vi = client.get(f"{API}/sessions/{session_id}/result", params={"language": "vi"}).json()
    assert vi["areas"][0]["name"] == "Thông tin và dữ liệu"
    assert _stored(client, session_id) == (sent, sent, sent)


def test_items_never_carry_key_or_parameters(client) -> None:
    started = _start(client, language="en")
    item, session_id = started["item"], started["session_id"]
    rng = np.random.default_rng(2)
    seen = 0
    while item is not None:
        assert set(item) == ITEM_KEYS
        assert item["text"].startswith("Question") and all(
            o.startswith(("Option", "Level")) for o in item["options"]
        )
        reply = _answer(
            client, session_id, item["id"], int(rng.integers(len(item["options"])))
        ).json()
        assert set(reply) == {
            "session_id",
            "status",
            "answered",
            "max_items",
            "item",
            "progress",
            "test",
        }
        # The test bank is not the one the progress table was simulated on.
        assert reply["progress"] is None or reply["status"] == "finished"
        item = reply["item"]
        seen += 1
    vi_item = _start(client)["item"]
    assert set(vi_item) == ITEM_KEYS and vi_item["text"].startswith("Câu hỏi")
    assert seen > 0


def test_retry_returns_same_reply_and_stores_nothing(client) -> None:
    started = _start(client)
    session_id, item = started["session_id"], started["item"]
    first = _answer(client, session_id, item["id"], 1)
    assert first.status_code == 200
    before = _stored(client, session_id)
    retry = _answer(client, session_id, item["id"], 1)
    assert retry.status_code == 200 and retry.json() == first.json()
    assert _stored(client, session_id) == before == (1, 1, 1)
    # The same item with another response is a conflict, not a retry.
    changed = _answer(client, session_id, item["id"], 2)
    assert changed.status_code == 409 and "already answered" in changed.json()["detail"]
    assert _stored(client, session_id) == before


def test_wrong_item_is_409_and_nothing_stored(client) -> None:
    started = _start(client)
    session_id, item = started["session_id"], started["item"]
    other = "1.t00" if item["id"] != "1.t00" else "1.t01"
    for item_id in (other, "no-such-item"):
        reply = _answer(client, session_id, item_id, 0)
        assert reply.status_code == 409
        assert reply.json() == {"detail": reply.json()["detail"], "status_code": 409}
        assert "not the current item" in reply.json()["detail"]
    assert _stored(client, session_id) == (0, 0, 0)


def test_response_out_of_range_is_422_and_nothing_stored(client) -> None:
    started = _start(client)
    session_id, item = started["session_id"], started["item"]
    for response in (len(item["options"]), 10**9, 10**30):
        reply = _answer(client, session_id, item["id"], response)
        assert reply.status_code == 422, reply.text
        assert reply.json()["status_code"] == 422 and item["id"] in reply.json()["detail"]
    # A negative index breaks the schema (minimum 0): a malformed request.
    reply = _answer(client, session_id, item["id"], -1)
    assert reply.status_code == 400 and ">= 0" in reply.json()["detail"], reply.text
    assert _stored(client, session_id) == (0, 0, 0)
    assert client.get(f"{API}/sessions/{session_id}").json()["item"] == item


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"item_id": "1.t00"}',
        b'{"item_id": "1.t00", "response": "one"}',
        b'{"item_id": "1.t00", "response": 1.5}',
        b'{"item_id": "1.t00", "response": 1.0}',
        b'{"item_id": "1.t00", "response": "1"}',
        b'{"item_id": "1.t00", "response": true}',
        b'{"item_id": 5, "response": 1}',
        b'{"item_id": "1.t00", "response": 1, "name": "Nguyen Van A"}',
        b"[]",
    ],
)
def test_malformed_answer_is_400(client, body: bytes) -> None:
    session_id = _start(client)["session_id"]
    reply = client.post(
        f"{API}/sessions/{session_id}/answers",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["status_code"] == 400 and reply.json()["detail"]
    assert _stored(client, session_id) == (0, 0, 0)


def test_start_body_is_validated_and_never_takes_identity(client) -> None:
    before = _count_sessions(client)
    for body in (
        {"name": "Nguyễn Văn A"},
        {"id_number": "012345678901"},
        {"language": "fr"},
        {"age_group": "1950-03-02"},
        {"ward": ""},
        {"ward": "x" * 101},
        {"ward": "bad\x00ward"},
    ):
        reply = client.post(f"{API}/sessions", json=body)
        assert reply.status_code == 400, (body, reply.text)
    assert _count_sessions(client) == before
    assert _start(client, ward="Sơn Trà", age_group="45-54")["status"] == "in_progress"


def test_unknown_session_is_404(client) -> None:
    missing = str(uuid.uuid4())
    for reply in (
        client.get(f"{API}/sessions/{missing}"),
        client.get(f"{API}/sessions/{missing}/result"),
        _answer(client, missing, "1.t00", 0),
    ):
        assert reply.status_code == 404
        assert reply.json() == {"detail": f"session {missing} does not exist", "status_code": 404}
    assert client.get(f"{API}/sessions/not-a-uuid").status_code in (400, 404)


def test_result_before_finishing_is_409(client) -> None:
    session_id = _start(client)["session_id"]
    reply = client.get(f"{API}/sessions/{session_id}/result")
    assert reply.status_code == 409 and "not finished" in reply.json()["detail"]


def test_answer_after_finishing_is_409(client) -> None:
    started = _start(client)
    run_to_end(client, started["session_id"], started["item"], np.random.default_rng(3))
    stored = _stored(client, started["session_id"])
    # Not an item of the bank, so never the last one answered (that would be a retry, 200).
    reply = _answer(client, started["session_id"], "9.none", 0)
    assert reply.status_code == 409 and "finished" in reply.json()["detail"]
    assert _stored(client, started["session_id"]) == stored


def test_oversized_body_is_413(client) -> None:
    session_id = _start(client)["session_id"]
    big = b'{"item_id": "' + b"x" * 70_000 + b'", "response": 0}'
    reply = client.post(
        f"{API}/sessions/{session_id}/answers",
        content=big,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 413
    assert reply.json()["status_code"] == 413


def test_session_resumes_with_same_item(client) -> None:
    started = _start(client, language="en")
    session_id, item = started["session_id"], started["item"]
    reply = _answer(client, session_id, item["id"], 0).json()
    again = client.get(f"{API}/sessions/{session_id}").json()
    assert again["item"] == reply["item"] and again["answered"] == 1 and again["language"] == "en"
    assert (
        client.get(f"{API}/sessions/{session_id}", params={"language": "vi"})
        .json()["item"]["text"]
        .startswith("Câu hỏi")
    )


def _finish_tests(client, people) -> list[dict]:
    rng = np.random.default_rng(4)
    results = []
    for ward, age in people:
        body = {k: v for k, v in (("ward", ward), ("age_group", age)) if v is not None}
        started = _start(client, **body)
        run_to_end(client, started["session_id"], started["item"], rng)
        results.append(client.get(f"{API}/sessions/{started['session_id']}/result").json())
    return results


def test_finished_tests_store_the_bins_planner_releases_count(database_url, tmp_path) -> None:
    from nangluc.service.db import SESSION
    from nangluc.service.statistics import encode_bins, observed_scores

    people = [("Hải Châu", "25-34"), ("Sơn Trà", "65+")]
    with app_client(database_url, tmp_path) as client:
        results = _finish_tests(client, people)
        db = client.app.state.db
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(SESSION.c.id, SESSION.c.state, SESSION.c.report_bins, SESSION.c.ward)
            ).all()
            bank = db.banks.get(db.banks.active_version(conn)).bank
    stored = {str(r.id): r for r in rows}
    for result, (ward, _) in zip(results, people, strict=True):
        row = stored[result["session_id"]]
        assert row.ward == ward
        items = bank.indices(row.state["administered"])
        overall, areas = observed_scores(bank, items[None], np.array(row.state["responses"])[None])
        # One digit for the overall score and one per area, from the area's own answers.
        assert row.report_bins == encode_bins(overall[0], areas[0])
        assert len(row.report_bins) == 1 + len(result["areas"])


def test_admin_endpoints_refuse_without_valid_key(fresh_client) -> None:
    client = fresh_client
    endpoints = [
        ("get", f"{API}/admin/responses.csv"),
        ("get", f"{API}/admin/banks"),
        ("get", f"{API}/admin/banks/svc-test-1"),
        ("post", f"{API}/admin/banks/svc-test-1/activate"),
        ("post", f"{API}/admin/calibrations"),
    ]
    for method, url in endpoints:
        missing = getattr(client, method)(url)
        assert missing.status_code == 401, url
        assert "X-API-Key" in missing.json()["detail"]
        wrong = getattr(client, method)(url, headers={"X-API-Key": ADMIN_KEY + "x"})
        assert wrong.status_code == 403, url
    # Ids no bank can have are refused before they reach the database (PostgreSQL refuses NUL).
    for bad in ("a%00b", "%20x", "x" * 65):
        assert (
            client.get(f"{API}/admin/banks/{bad}", headers={"X-API-Key": ADMIN_KEY}).status_code
            == 400
        )
        reply = client.post(f"{API}/admin/banks/{bad}/activate", headers={"X-API-Key": ADMIN_KEY})
        assert reply.status_code == 400
    ok = client.get(f"{API}/admin/banks", headers={"X-API-Key": ADMIN_KEY})
    assert ok.status_code == 200
    assert [(b["version"], b["status"], b["items"]) for b in ok.json()] == [
        ("svc-test-1", "active", 40)
    ]


def test_only_key_hashes_are_kept(client) -> None:
    settings = client.app.state.settings
    assert ADMIN_KEY not in repr(settings) and ADMIN_KEY not in settings.admin_key_hashes
    assert all(len(h) == 64 for h in settings.admin_key_hashes)


def test_responses_csv_is_the_calibration_input(client) -> None:
    rng = np.random.default_rng(5)
    started = _start(client, ward="Liên Chiểu", age_group="35-44")
    sent = run_to_end(client, started["session_id"], started["item"], rng)
    partial = _start(client)
    _answer(client, partial["session_id"], partial["item"]["id"], 3)

    reply = client.get(f"{API}/admin/responses.csv", headers={"X-API-Key": ADMIN_KEY})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert list(rows[0])[:3] == ["respondent_id", "item_id", "response"]
    # Respondents are pseudonyms: no session id appears in the export.
    assert started["session_id"] not in reply.text and partial["session_id"] not in reply.text
    assert started["session_id"].replace("-", "") not in reply.text
    db = client.app.state.db
    with db.engine.connect() as conn:
        key = research.respondent_key(conn)
    pseudonym = {
        research.respondent_id(key, uuid.UUID(s["session_id"])): s["session_id"]
        for s in (started, partial)
    }
    rows = [
        r for r in rows if r["respondent_id"] in pseudonym
    ]  # the module's other tests share the database
    assert len(rows) == sent + 1
    first = [r for r in rows if pseudonym[r["respondent_id"]] == started["session_id"]]
    assert [int(r["seq"]) for r in first] == list(range(1, sent + 1))
    assert {r["ward"] for r in first} == {"Liên Chiểu"} and {r["age_group"] for r in first} == {
        "35-44"
    }
    # response is the scored category: 1 exactly when a keyed item's key was chosen.
    bank = {item["id"]: item for item in bank_dict()["items"]}
    for r in rows:
        item = bank[r["item_id"]]
        option = int(r["option"])
        expected = int(option == item["key"]) if "key" in item else option
        assert int(r["response"]) == expected


def test_activation_and_sessions_keep_their_bank(fresh_client) -> None:
    client = fresh_client
    from nangluc.service import research

    db = client.app.state.db
    # A second version, stored as a draft (as a calibration would).
    document = bank_dict("svc-test-2", shift=1.5)
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bank_version (version, parent, status, document, created) VALUES "
                "(:v, :p, 'draft', :d, :c)"
            ),
            {
                "v": "svc-test-2",
                "p": "svc-test-1",
                "d": __import__("json").dumps(document),
                "c": "2026-01-01",
            },
        )
    old = _start(client)
    headers = {"X-API-Key": ADMIN_KEY}
    assert client.post(f"{API}/admin/banks/nope/activate", headers=headers).status_code == 404
    reply = client.post(f"{API}/admin/banks/svc-test-2/activate", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "active" and reply.json()["parent"] == "svc-test-1"
    statuses = {
        b["version"]: b["status"] for b in client.get(f"{API}/admin/banks", headers=headers).json()
    }
    assert statuses == {"svc-test-1": "retired", "svc-test-2": "active"}
    # Activating the active version again changes nothing.
    assert (
        client.post(f"{API}/admin/banks/svc-test-2/activate", headers=headers).json()["status"]
        == "active"
    )
    assert client.get(f"{API}/framework").json()["bank_version"] == "svc-test-2"

    new = _start(client)
    rng = np.random.default_rng(6)
    run_to_end(client, old["session_id"], old["item"], rng)
    run_to_end(client, new["session_id"], new["item"], rng)
    with db.engine.connect() as conn:
        versions = dict(conn.execute(sa.select(SESSION.c.id, SESSION.c.bank_version)).all())
    assert versions == {
        uuid.UUID(old["session_id"]): "svc-test-1",
        uuid.UUID(new["session_id"]): "svc-test-2",
    }
    document_back = client.get(f"{API}/admin/banks/svc-test-2", headers=headers).json()
    assert document_back["version"] == "svc-test-2" and len(document_back["items"]) == 40
    assert research.list_banks(db)[0]["version"] in ("svc-test-1", "svc-test-2")
