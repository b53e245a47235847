"""The second framework served end to end (issue #14, §1): framework, tests, results, reports.

The household online-safety example (3 areas, 4 levels cut at 30/55/80, a
weighted overall rule) is served from a fresh database on SQLite and
PostgreSQL, the way a city would: its bank stored and activated. Reports
cover the active bank's framework and never mix the tests of two frameworks
in one distribution (see :mod:`nangluc.service.reports`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from nangluc import items
from nangluc.engine import CITIZEN_TEST
from nangluc.service import synthetic
from nangluc.service.db import BANK
from nangluc.simulations import draw_population
from service_fixtures import ADMIN_KEY, DATABASES, PLANNER_KEY, app_client, fresh_database

API = "/api/v1"
ADMIN = {"X-API-Key": ADMIN_KEY}
PLANNER = {"X-API-Key": PLANNER_KEY}
EXAMPLE = json.loads(items.HOUSEHOLD_SAFETY_BANK_PATH.read_text(encoding="utf-8"))
EXAMPLE_VERSION = EXAMPLE["version"]
DEFAULT_VERSION = items.load_bank().version
LEVELS_VI = ["Cần hỗ trợ", "Nắm cơ bản", "Vững vàng", "Làm chủ"]
IN_Q2 = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=DATABASES)
def served(request, tmp_path_factory):
    """An app serving the example bank from a fresh database (it is the bank stored first)."""
    directory: Path = tmp_path_factory.mktemp("household")
    with (
        fresh_database(request.param, directory) as url,
        app_client(url, directory, document=EXAMPLE, report_simulees=1500) as client,
    ):
        yield client


def test_framework_endpoint_gives_the_examples_areas_levels_and_rule(served):
    framework = served.get(f"{API}/framework").json()
    assert framework["bank_version"] == EXAMPLE_VERSION
    assert [a["code"] for a in framework["areas"]] == ["1", "2", "3"]
    assert [lv["level"] for lv in framework["levels"]] == [1, 2, 3, 4]
    assert [lv["name"]["vi"] for lv in framework["levels"]] == LEVELS_VI
    assert [(lv["lower"], lv["upper"]) for lv in framework["levels"]] == [
        (0, 30),
        (30, 55),
        (55, 80),
        (80, 100),
    ]
    assert framework["overall"] == {"rule": "weighted", "weights": {"1": 1.0, "2": 2.0, "3": 1.0}}
    assert framework["name"]["vi"] == "Khung an toàn số cho gia đình (ví dụ)"
    assert framework["basic_skills"] == []


def _take(client, rng: np.random.Generator, *, language: str = "vi") -> dict:
    started = client.post(f"{API}/sessions", json={"language": language})
    assert started.status_code == 201, started.text
    session = started.json()
    for _ in range(60):
        item = session["item"]
        if item is None:
            break
        reply = client.post(
            f"{API}/sessions/{session['session_id']}/answers",
            json={"item_id": item["id"], "response": int(rng.integers(len(item["options"])))},
        )
        assert reply.status_code == 200, reply.text
        session = reply.json()
    assert session["status"] == "finished"
    result = client.get(f"{API}/sessions/{session['session_id']}/result")
    assert result.status_code == 200, result.text
    return result.json()


def test_a_test_on_the_example_has_its_levels_areas_and_weighted_overall(served):
    result = _take(served, np.random.default_rng(3))
    assert [a["area"] for a in result["areas"]] == ["1", "2", "3"]
    for part in (result["overall"], *result["areas"]):
        assert part["level"] in (1, 2, 3, 4)
        assert part["level_name"] == LEVELS_VI[part["level"] - 1]
        assert [p["level"] for p in part["level_probabilities"]] == [1, 2, 3, 4]
        assert abs(sum(p["probability"] for p in part["level_probabilities"]) - 1) < 1e-9
        # The level is the band of the score under the example's cuts.
        assert part["level"] == 1 + sum(part["score"] >= cut for cut in (30, 55, 80))
    areas = {a["area"]: a["score"] for a in result["areas"]}
    weighted = (areas["1"] + 2 * areas["2"] + areas["3"]) / 4
    assert abs(result["overall"]["score"] - weighted) < 1e-9
    english = served.get(
        f"{API}/sessions/{result['session_id']}/result", params={"language": "en"}
    ).json()
    names = ["Needs support", "Aware", "Confident", "Leading"]
    assert english["overall"]["level_name"] == names[english["overall"]["level"] - 1]


def test_top_level_advice_names_the_examples_top_level(served):
    # Answering every question with the best option reaches the top level.
    session = served.post(f"{API}/sessions").json()
    while session["item"] is not None:
        item = session["item"]
        record = next(i for i in EXAMPLE["items"] if i["id"] == item["id"])
        best = record.get("key", len(item["options"]) - 1)
        session = served.post(
            f"{API}/sessions/{session['session_id']}/answers",
            json={"item_id": item["id"], "response": best},
        ).json()
    result = served.get(f"{API}/sessions/{session['session_id']}/result").json()
    assert result["overall"]["level"] == 4
    assert result["advice"]["top_overall"] is True
    assert "Làm chủ" in result["advice"]["message"]["vi"]
    assert "Nâng cao" not in result["advice"]["message"]["vi"]
    assert "Leading" in result["advice"]["message"]["en"]


def test_scoring_a_full_pattern_gives_the_examples_levels_as_the_engine(served):
    from nangluc.engine import score_responses

    rng = np.random.default_rng(9)
    doc = items.load_bank(items.HOUSEHOLD_SAFETY_BANK_PATH)
    answers = {item.id: int(rng.integers(len(item.options))) for item in doc.items}
    reply = served.post(
        f"{API}/score",
        json={"responses": [{"item": i, "response": r} for i, r in answers.items()]},
    )
    assert reply.status_code == 200, reply.text
    scored = reply.json()
    engine = score_responses(
        doc.item_bank,
        {i: doc.item(i).score_option(r) for i, r in answers.items()},
        config=CITIZEN_TEST,
    )
    assert abs(scored["overall"]["score"] - engine.overall.score) < 1e-9
    assert scored["overall"]["level"] == engine.overall.level
    assert scored["overall"]["level_name"] == LEVELS_VI[engine.overall.level - 1]
    assert [p["level"] for p in scored["overall"]["level_probabilities"]] == [1, 2, 3, 4]
    for got, want in zip(scored["areas"], engine.areas, strict=True):
        assert got["area"] == want.area and abs(got["score"] - want.score) < 1e-9


# ------------------------------------------------------------------ reports
@pytest.fixture(scope="module", params=DATABASES)
def two_frameworks(request, tmp_path_factory):
    """A service that ran the Đà Nẵng bank, then the example: tests of both in one quarter."""
    directory: Path = tmp_path_factory.mktemp("two")
    with (
        fresh_database(request.param, directory) as url,
        app_client(
            url,
            directory,
            document=items.load_bank().to_dict(),
            report_simulees=1500,
            # Little privacy noise, so that the counts tell 320 tests from 470.
            report_epsilon=20.0,
        ) as client,
    ):
        db = client.app.state.db
        rng = np.random.default_rng(17)
        counts = {DEFAULT_VERSION: 150, EXAMPLE_VERSION: 320}
        default = db.banks.get(DEFAULT_VERSION).bank
        rows, _ = synthetic.simulated_rows(
            default,
            CITIZEN_TEST,
            draw_population(counts[DEFAULT_VERSION], default.n_areas, 0.7, rng),
            rng,
            finished=IN_Q2,
            ward="Hải Châu",
        )
        synthetic.insert_rows(db.engine, rows)
        stored = client.post(f"{API}/admin/bank-files", json=EXAMPLE, headers=ADMIN)
        assert stored.status_code == 201, stored.text
        _activate(client, EXAMPLE_VERSION)
        example = db.banks.get(EXAMPLE_VERSION).bank
        rows, truth = synthetic.simulated_rows(
            example,
            CITIZEN_TEST,
            draw_population(counts[EXAMPLE_VERSION], example.n_areas, 0.7, rng),
            rng,
            finished=IN_Q2,
            ward="Hải Châu",
        )
        synthetic.insert_rows(db.engine, rows)
        # Releases start with the first stored bank: put both in the past quarter's start.
        with db.engine.begin() as conn:
            conn.execute(BANK.update().values(created=datetime(2026, 4, 2, tzinfo=UTC)))
        yield client, counts, truth


def _activate(client, version: str) -> None:
    reply = client.post(
        f"{API}/admin/banks/{version}/activate",
        json={"force": True, "reason": "switch frameworks (test)"},
        headers=ADMIN,
    )
    assert reply.status_code == 200, reply.text


def _report(client, **params) -> dict:
    reply = client.get(f"{API}/reports/levels", params=params, headers=PLANNER)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _tests_match(group: dict, expected: int) -> bool:
    sd = (group["tests"]["high"] - group["tests"]["low"]) / 3.92
    return abs(group["tests"]["value"] - expected) <= 4.5 * max(sd, 1.0)


def test_reports_cover_the_active_framework_only(two_frameworks):
    client, counts, truth = two_frameworks
    _activate(client, EXAMPLE_VERSION)
    report = _report(client, group_by="all", at_least=3)
    assert report["framework"]["bank_version"] == EXAMPLE_VERSION
    assert report["framework"]["bank_versions"] == [EXAMPLE_VERSION]
    assert report["framework"]["name"] == "Khung an toàn số cho gia đình (ví dụ)"
    assert [lv["level"] for lv in report["levels"]] == [1, 2, 3, 4]
    assert [lv["name"] for lv in report["levels"]] == LEVELS_VI
    assert [lv["lower"] for lv in report["levels"]] == [0, 30, 55, 80]
    city = report["groups"][0]
    assert city["shown"], city
    # Only the example's 320 tests are counted, not the 150 on the Đà Nẵng bank.
    assert _tests_match(city, counts[EXAMPLE_VERSION]), city["tests"]
    assert not _tests_match(city, counts[EXAMPLE_VERSION] + counts[DEFAULT_VERSION]), city["tests"]
    assert [lv["level"] for lv in city["levels"]] == [1, 2, 3, 4]
    assert abs(sum(lv["value"] for lv in city["levels"]) - 1) < 1e-3
    top = sum(lv["value"] for lv in city["levels"][2:])
    assert city["at_least"]["level"] == 3 and abs(city["at_least"]["value"] - top) < 2e-3
    # The true shares of the example's simulees under its own cuts lie near the estimates.
    true_shares = np.bincount(np.searchsorted([30, 55, 80], truth, side="right"), minlength=4)
    true_shares = true_shares / truth.size
    for level, share in zip(city["levels"], true_shares, strict=True):
        assert level["low"] - 0.1 <= share <= level["high"] + 0.1, (level, share)
    # An area of the example's framework, by its code.
    area = _report(client, group_by="all", measure="2")
    assert area["measure"] == {
        "kind": "area",
        "code": "2",
        "name": "Phòng tránh lừa đảo trực tuyến",
    }
    assert len(area["groups"][0]["levels"]) == 4
    # A level code of another framework is refused, naming the field and the codes.
    reply = client.get(f"{API}/reports/levels", params={"at_least": 5}, headers=PLANNER)
    assert reply.status_code == 404
    assert "at_least must be a level code of the framework (1, 2, 3, 4)" in reply.text
    # The CSV export carries the example's level names.
    csv_reply = client.get(f"{API}/reports/levels.csv", headers=PLANNER)
    assert csv_reply.status_code == 200
    rows = list(csv.DictReader(io.StringIO(csv_reply.text.lstrip("\ufeff"))))
    assert [r["level_name"] for r in rows if r["group"] == "all"] == LEVELS_VI

    # Back on the Đà Nẵng bank: its five levels and only its own tests.
    _activate(client, DEFAULT_VERSION)
    try:
        report = _report(client, group_by="all")
        assert report["framework"]["bank_versions"] == [DEFAULT_VERSION]
        assert [lv["level"] for lv in report["levels"]] == [1, 2, 3, 4, 5]
        city = report["groups"][0]
        assert _tests_match(city, counts[DEFAULT_VERSION]), city["tests"]
        assert [lv["level"] for lv in city["levels"]] == [1, 2, 3, 4, 5]
    finally:
        _activate(client, EXAMPLE_VERSION)


def test_changing_framework_passes_the_go_live_gate_only_when_forced(two_frameworks):
    client, _, _ = two_frameworks
    _activate(client, EXAMPLE_VERSION)
    reply = client.post(f"{API}/admin/banks/{DEFAULT_VERSION}/activate", headers=ADMIN)
    assert reply.status_code == 409, reply.text
    body = reply.json()
    assert "other levels or another overall rule" in body["detail"]
    assert (
        "4 levels from 0/30/55/80, overall weighted -> 5 levels from 0/20/40/60/80"
        in (body["detail"])
    )
    framework = client.get(f"{API}/framework").json()
    assert framework["bank_version"] == EXAMPLE_VERSION  # nothing changed
