"""``POST /api/v1/score``: scoring a response pattern (issue #14, section 3), SQLite and PostgreSQL.

The evidence the issue asks for: on a full 173-item pattern the endpoint gives
the same scores as the adaptive engine's own scoring of the same answers,
to 1e-9.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from nangluc.engine import CITIZEN_TEST, answer_item, score_test, start_test
from nangluc.items import DEFAULT_BANK_PATH, load_bank
from nangluc.service.db import RESPONSE, SESSION
from nangluc.service.patterns import MAX_RESPONSES
from service_fixtures import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    DATABASES,
    app_client,
    bank_dict,
    database_url,
    fresh_client,
    fresh_database,
    run_to_end,
)

SHIPPED = load_bank()


@pytest.fixture(scope="module", params=DATABASES)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """An app on the shipped bank (173 items)."""
    directory = tmp_path_factory.mktemp("score")
    document = json.loads(Path(DEFAULT_BANK_PATH).read_text(encoding="utf-8"))
    with fresh_database(request.param, directory) as url, app_client(url, directory, document) as c:
        yield c


def _score(client: Any, answers: dict[str, int], **extra: Any) -> Any:
    body = {"responses": [{"item": i, "response": r} for i, r in answers.items()], **extra}
    return client.post("/api/v1/score", json=body)


def _stored(client: Any) -> tuple[int, int]:
    with client.app.state.db.engine.connect() as conn:
        sessions = conn.execute(sa.select(sa.func.count()).select_from(SESSION)).scalar_one()
        responses = conn.execute(sa.select(sa.func.count()).select_from(RESPONSE)).scalar_one()
    return sessions, responses


def _full_adaptive_test(options: dict[str, int]):
    """The citizen test's rules run adaptively through all 173 items, answering ``options``."""
    config = dataclasses.replace(
        CITIZEN_TEST,
        name="citizen-full",
        exposure=None,
        stopping=(),
        min_items=0,
        max_items=SHIPPED.item_bank.n_items,
        min_information=0.0,
    )
    bank = SHIPPED.item_bank
    state = start_test(bank, config, seed=5)
    while not state.finished:
        item = state.next_item
        state = answer_item(
            bank, config, state, item, SHIPPED.item(item).score_option(options[item])
        )
    return state, config


@pytest.mark.parametrize("seed", [0, 1])
def test_a_full_pattern_scores_as_the_adaptive_engine_to_1e_9(client: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bias = rng.uniform(0.2, 0.8)  # a different ability per seed
    options = {}
    for record in SHIPPED.items:
        n = len(record.options)
        right = record.key if record.key is not None else n - 1
        options[record.id] = right if rng.random() < bias else int(rng.integers(n))
    state, config = _full_adaptive_test(options)
    assert state.answered == 173 and set(state.administered) == set(options)
    engine = score_test(SHIPPED.item_bank, state, config)

    before = _stored(client)
    reply = _score(client, dict(reversed(list(options.items()))))  # order does not matter
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert _stored(client) == before  # nothing stored
    assert got["answered"] == 173 and got["stop_reason"] == "scored"
    assert got["bank_version"] == SHIPPED.version and got["test"] == {
        "name": "citizen",
        "version": "2",
    }

    def same(api: dict[str, Any], part) -> None:
        assert api["score"] == pytest.approx(part.score, abs=1e-9)
        assert api["se"] == pytest.approx(part.se, abs=1e-9)
        assert api["interval"] == pytest.approx(list(part.interval), abs=1e-9)
        assert api["level"] == part.level
        assert api["probability"] == pytest.approx(part.probability, abs=1e-9)
        assert [p["probability"] for p in api["level_probabilities"]] == pytest.approx(
            list(part.level_probabilities), abs=1e-9
        )

    same(got["overall"], engine.overall)
    assert [a["area"] for a in got["areas"]] == [a.area for a in engine.areas]
    for api_area, engine_area in zip(got["areas"], engine.areas, strict=True):
        same(api_area, engine_area)
        assert api_area["answered"] == engine_area.answered


def test_a_finished_session_and_its_pattern_give_the_same_result(client: Any) -> None:
    """The score endpoint and a session's result share one code path (and its shape)."""
    start = client.post("/api/v1/sessions", json={"language": "en"})
    session_id = start.json()["session_id"]
    run_to_end(client, session_id, start.json()["item"], np.random.default_rng(3))
    result = client.get(f"/api/v1/sessions/{session_id}/result").json()
    # The session's own answers, as option indices, from the state it stored.
    with client.app.state.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(RESPONSE.c.item_id, RESPONSE.c.response).where(
                RESPONSE.c.session_id == uuid.UUID(session_id)
            )
        ).all()
    scored = _score(client, {r.item_id: r.response for r in rows}, language="en").json()
    assert set(scored) == (set(result) - {"session_id"}) | {"bank_version", "test"}
    # The adaptive estimate was reached step by step: the same to rounding.
    for key in ("overall", "areas"):
        assert _close(scored[key], result[key]), (scored[key], result[key])
    for key in ("advice", "answered", "settled_by"):
        assert scored[key] == result[key]
    assert result["stop_reason"] != "scored" and scored["stop_reason"] == "scored"


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return abs(a - b) <= 1e-9
    return a == b


def test_a_partial_pattern_is_scored_in_the_asked_language(client: Any) -> None:
    first = SHIPPED.items[0]
    reply = _score(client, {first.id: first.key if first.key is not None else 0}, language="en")
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert got["answered"] == 1
    assert got["overall"]["level_name"] in {
        "Beginning",
        "Basic",
        "Intermediate",
        "High",
        "Advanced",
    }
    assert len(got["areas"]) == 5 and sum(a["answered"] for a in got["areas"]) == 1
    assert got["advice"]["message"]
    assert "session_id" not in got


def test_a_keyed_item_is_scored_by_its_key(client: Any) -> None:
    keyed = next(r for r in SHIPPED.items if r.key is not None)
    wrong = (keyed.key + 1) % len(keyed.options)
    right_reply = _score(client, {keyed.id: keyed.key}).json()
    wrong_reply = _score(client, {keyed.id: wrong}).json()
    assert right_reply["overall"]["score"] > wrong_reply["overall"]["score"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"responses": []}, "responses"),
        ({"responses": [{"item": "9.9.99", "response": 0}]}, "responses[0].item"),
        (
            {
                "responses": [
                    {"item": SHIPPED.items[0].id, "response": 0},
                    {"item": SHIPPED.items[1].id, "response": 0},
                    {"item": SHIPPED.items[0].id, "response": 1},
                ]
            },
            "responses[2].item",
        ),
        ({"responses": [{"item": SHIPPED.items[0].id, "response": 17}]}, "responses[0].response"),
        ({"responses": [{"item": SHIPPED.items[0].id, "response": -1}]}, "responses[0].response"),
    ],
)
def test_bad_patterns_are_422_naming_the_entry(client: Any, body: dict, field: str) -> None:
    before = _stored(client)
    reply = client.post("/api/v1/score", json=body)
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert detail.startswith(field + ":"), detail
    assert "Traceback" not in reply.text
    assert _stored(client) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"responses": [{"item": "1.1.01"}]},
        {"responses": [{"item": "1.1.01", "response": "1"}]},
        {"responses": [{"item": "1.1.01", "response": 1.0}]},
        {"responses": [{"item": "1.1.01", "response": 1, "session_id": "x"}]},
        {"responses": [{"item": "1.1.01", "response": 1}], "bank": "bad version!"},
        {"responses": [{"item": "1.1.01", "response": 1}], "language": "fr"},
        {"responses": [{"item": f"x{i}", "response": 0} for i in range(MAX_RESPONSES + 1)]},
    ],
)
def test_malformed_bodies_are_400(client: Any, body: dict) -> None:
    reply = client.post("/api/v1/score", json=body)
    assert reply.status_code == 400, reply.text
    assert "Traceback" not in reply.text


def test_an_oversized_body_is_413(client: Any) -> None:
    padding = "x" * 70_000
    reply = client.post("/api/v1/score", json={"responses": [{"item": padding, "response": 0}]})
    assert reply.status_code == 413


def test_only_live_bank_versions_can_be_named(client: Any) -> None:
    item = SHIPPED.items[0]
    live = _score(client, {item.id: 0}, bank=SHIPPED.version)
    assert live.status_code == 200 and live.json()["bank_version"] == SHIPPED.version
    unknown = _score(client, {item.id: 0}, bank="no-such-version")
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("bank:")


def test_a_draft_bank_is_not_scored_against(fresh_client) -> None:  # noqa: F811
    """Drafts are not public: scoring answers 404, as for a version that does not exist."""
    stored = fresh_client.post(
        "/api/v1/admin/bank-files",
        json=bank_dict("draft-1", per_area=4),
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert stored.status_code == 201, stored.text
    reply = _score(fresh_client, {"1.t00": 0}, bank="draft-1")
    assert reply.status_code == 404
    assert reply.json()["detail"] == "bank: there is no live bank version 'draft-1'"
    assert _score(fresh_client, {"1.t00": 0}).status_code == 200  # the active bank


def test_scoring_reveals_nothing_stored(fresh_client) -> None:  # noqa: F811
    """The same pattern scores the same before and after citizens took tests (no data is read)."""
    pattern = {"1.t00": 1, "2.t01": 0, "3.t03": 2}
    before = _score(fresh_client, pattern).json()
    for seed in range(2):
        start = fresh_client.post("/api/v1/sessions", json={}).json()
        run_to_end(fresh_client, start["session_id"], start["item"], np.random.default_rng(seed))
    assert _stored(fresh_client)[0] == 2
    after = _score(fresh_client, pattern).json()
    assert after == before


def test_the_export_scored_by_the_command_gives_each_session_its_result(
    client: Any, tmp_path: Path
) -> None:
    """``responses.csv`` (the researchers' export) is a valid ``nangluc score`` input."""
    from click.testing import CliRunner

    from nangluc.cli import main
    from nangluc.service import research

    start = client.post("/api/v1/sessions", json={}).json()
    run_to_end(client, start["session_id"], start["item"], np.random.default_rng(11))
    result = client.get(f"/api/v1/sessions/{start['session_id']}/result").json()
    export = client.get("/api/v1/admin/responses.csv", headers={"X-API-Key": ADMIN_KEY})
    assert export.status_code == 200
    (tmp_path / "responses.csv").write_text(export.text, encoding="utf-8")
    done = CliRunner().invoke(
        main,
        ["score", str(tmp_path / "responses.csv"), "--bank", str(DEFAULT_BANK_PATH)],
    )
    assert done.exit_code == 0, done.output
    with client.app.state.db.engine.connect() as conn:
        pseudonym = research.respondent_id(
            research.respondent_key(conn), uuid.UUID(start["session_id"])
        )
    import csv
    import io

    (row,) = [
        r for r in csv.DictReader(io.StringIO(done.stdout)) if r["respondent_id"] == pseudonym
    ]
    assert float(row["overall_score"]) == pytest.approx(result["overall"]["score"], abs=1e-4)
    assert int(row["overall_level"]) == result["overall"]["level"]
    for area in result["areas"]:
        assert float(row[f"area_{area['area']}_score"]) == pytest.approx(area["score"], abs=1e-4)


# ------------------------------------------------------------- named tests --

SAFETY = {
    "name": "an-toan",
    "version": "1",
    "title": {"vi": "Kiểm tra nhanh: an toàn trên mạng"},
    "intended_use": {"vi": "Cho chiến dịch an toàn trên mạng."},
    "languages": ["vi"],
    "areas": ["4"],
    "rules": {"max_items": 5, "min_items": 2, "exposure": "randomesque:2"},
}
FORM_ITEMS = ["4.t00", "5.t01", "4.t02", "5.t03", "4.t03", "5.t00"]
FORM = {
    "name": "phieu",
    "version": "1",
    "title": {"vi": "Phiếu trước và sau lớp học"},
    "intended_use": {"vi": "Cho lớp tập huấn."},
    "languages": ["vi"],
    "areas": ["4", "5"],
    "form": {"items": FORM_ITEMS},
}


@pytest.fixture(scope="module", params=DATABASES)
def tests_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The small service bank with a one-area test and a fixed form, both live."""
    directory = tmp_path_factory.mktemp("score-tests")
    headers = {"X-API-Key": ADMIN_KEY}
    with (
        fresh_database(request.param, directory) as url,
        app_client(url, directory, gate_simulees=300) as c,
    ):
        for document in (SAFETY, FORM):
            assert (
                c.post("/api/v1/admin/test-definitions", json=document, headers=headers).status_code
                == 201
            )
            name, version = document["name"], document["version"]
            activated = c.post(f"/api/v1/admin/tests/{name}/{version}/activate", headers=headers)
            assert activated.status_code == 200, activated.text
        draft = {**SAFETY, "version": "2"}
        assert (
            c.post("/api/v1/admin/test-definitions", json=draft, headers=headers).status_code == 201
        )
        yield c


def test_a_one_area_test_scores_its_area_only(tests_client: Any) -> None:
    reply = _score(tests_client, {"4.t00": 1, "4.t01": 0}, test="an-toan")
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert got["test"] == {"name": "an-toan", "version": "1"}
    assert [a["area"] for a in got["areas"]] == ["4"]
    outside = _score(tests_client, {"4.t00": 1, "5.t01": 0}, test="an-toan")
    assert outside.status_code == 422
    assert outside.json()["detail"] == (
        "responses[1].item: '5.t01' is not an item of test an-toan (bank svc-test-1)"
    )


def test_a_fixed_form_scores_as_its_session_does(tests_client: Any) -> None:
    start = tests_client.post("/api/v1/sessions", json={"test": "phieu"}).json()
    session_id, item = start["session_id"], start["item"]
    options: dict[str, int] = {}
    while item is not None:
        options[item["id"]] = len(options) % len(item["options"])
        item = tests_client.post(
            f"/api/v1/sessions/{session_id}/answers",
            json={"item_id": item["id"], "response": options[item["id"]]},
        ).json()["item"]
    assert list(options) == FORM_ITEMS
    result = tests_client.get(f"/api/v1/sessions/{session_id}/result").json()
    scored = _score(tests_client, options, test="phieu").json()
    assert scored["test"] == result["test"] == {"name": "phieu", "version": "1"}
    for key in ("overall", "areas"):
        assert _close(scored[key], result[key]), (scored[key], result[key])
    assert scored["advice"] == result["advice"]
    # Part of the form is scored too; an item off the form is named.
    part = _score(tests_client, dict(list(options.items())[:2]), test="phieu")
    assert part.status_code == 200 and part.json()["answered"] == 2
    off = _score(tests_client, {"4.t00": 0, "4.t05": 1}, test="phieu")
    assert off.status_code == 422
    assert off.json()["detail"].startswith(
        "responses[1].item: '4.t05' is not an item of test phieu"
    )


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"test": "nope"}, "test: there is no test named 'nope'"),
        ({"test": "an-toan", "test_version": "2"}, "test_version: test 'an-toan' has no live"),
        ({"test": "an-toan", "test_version": "9"}, "test_version: test 'an-toan' has no live"),
        ({"test": "an-toan", "bank": "nope"}, "bank: there is no live bank version 'nope'"),
    ],
)
def test_unknown_or_unpublished_tests_are_404(tests_client: Any, extra: dict, detail: str) -> None:
    reply = _score(tests_client, {"4.t00": 1}, **extra)
    assert reply.status_code == 404, reply.text
    assert reply.json()["detail"].startswith(detail)


def test_a_version_needs_its_test(tests_client: Any) -> None:
    reply = _score(tests_client, {"4.t00": 1}, test_version="1")
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith("test_version:")
