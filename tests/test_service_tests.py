"""Test definitions in the service: admin endpoints, the gate, named sessions, fixed forms.

Runs on SQLite and PostgreSQL. The small service bank has eight items per
area (ids such as ``4.t00``).
"""

# ruff: noqa: F811 - pytest fixtures are imported by name and used as arguments
from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from nangluc.service.db import SESSION
from service_fixtures import (  # noqa: F401 - database_url is a fixture
    ADMIN_KEY,
    DATABASES,
    app_client,
    bank_dict,
    database_url,
    fresh_database,
    run_to_end,
)

API = "/api/v1"
HEADERS = {"X-API-Key": ADMIN_KEY}

SAFETY = {
    "name": "an-toan",
    "version": "1",
    "title": {"vi": "Kiểm tra nhanh: an toàn trên mạng", "en": "Quick check: online safety"},
    "intended_use": {"vi": "Cho chiến dịch an toàn trên mạng.", "en": "For safety campaigns."},
    "areas": ["4"],
    "rules": {"max_items": 5, "min_items": 2, "exposure": "randomesque:2"},
}
FORM_ITEMS = ["4.t00", "5.t01", "4.t02", "5.t03"]
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
def client(request, tmp_path_factory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp("tests")
    with (
        fresh_database(request.param, directory) as url,
        app_client(url, directory, gate_simulees=600) as test_client,
    ):
        test_client.database_url = url
        yield test_client


def _add(client, document: dict[str, Any]):
    return client.post(f"{API}/admin/test-definitions", json=document, headers=HEADERS)


def _activate(client, name: str, version: str, **body: Any):
    return client.post(
        f"{API}/admin/tests/{name}/{version}/activate", json=body or None, headers=HEADERS
    )


def _named(document: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(document), "name": name, **changes}


def test_the_citizen_test_is_the_default_and_the_schema_is_served(client) -> None:
    tests = client.get(f"{API}/tests").json()
    assert tests[0]["name"] == "citizen" and tests[0]["default"] is True
    assert tests[0]["version"] == "2" and tests[0]["kind"] == "adaptive"
    assert tests[0]["title"] == "Đánh giá năng lực số của công dân"
    assert client.get(f"{API}/tests", params={"language": "en"}).json()[0]["title"] == (
        "Citizens' digital competence self-assessment"
    )
    schema = client.get(f"{API}/schemas/test-definition")
    assert schema.status_code == 200
    assert schema.json()["title"] == "nangluc test definition"
    assert schema.headers["content-type"].startswith("application/schema+json")


def test_admin_endpoints_need_a_key(client) -> None:
    assert client.post(f"{API}/admin/test-definitions", json=SAFETY).status_code == 401
    assert client.get(f"{API}/admin/tests", headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.post(f"{API}/admin/tests/citizen/2/activate").status_code == 401


def test_bad_definitions_are_422_naming_the_field_and_store_nothing(client) -> None:
    bad = _named(SAFETY, "bad-one", rules={"max_items": "ten"})
    reply = _add(client, bad)
    assert reply.status_code == 422
    assert 'rules.max_items: must be an integer >= 1, got \\"ten\\"' in reply.text or (
        'rules.max_items: must be an integer >= 1, got "ten"' in reply.json()["detail"]
    )
    assert "Traceback" not in reply.text
    listed = client.get(f"{API}/admin/tests", headers=HEADERS).json()
    assert "bad-one" not in {t["name"] for t in listed}
    # Invalid JSON is 400.
    raw = client.post(
        f"{API}/admin/test-definitions",
        content=b"{not json",
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert raw.status_code == 400


def test_store_activate_and_take_a_one_area_test(client) -> None:
    document = _named(SAFETY, "an-toan")
    stored = _add(client, document)
    assert stored.status_code == 201, stored.text
    assert stored.json()["status"] == "draft" and stored.json()["max_items"] == 5
    # A stored version never changes.
    changed = _named(SAFETY, "an-toan", rules={"max_items": 8})
    assert _add(client, changed).status_code == 409
    # A draft cannot be started.
    assert client.post(f"{API}/sessions", json={"test": "an-toan"}).status_code == 404
    activated = _activate(client, "an-toan", "1")
    assert activated.status_code == 200, activated.text
    out = activated.json()
    assert out["status"] == "active" and out["gate"]["passed"] is True
    figures = out["gate"]["candidate"]
    assert 0 < figures["level_accuracy"] <= 1 and 2 <= figures["mean_items"] <= 5
    assert out["simulated"]["mean_items"] == figures["mean_items"]
    listed = {t["name"]: t for t in client.get(f"{API}/tests").json()}
    assert listed["an-toan"]["areas"] == ["4"] and listed["an-toan"]["max_items"] == 5
    assert listed["an-toan"]["mean_items"] == figures["mean_items"]
    assert listed["an-toan"]["default"] is False
    log = client.get(f"{API}/admin/activations", headers=HEADERS).json()
    assert log[0]["kind"] == "test" and log[0]["version"] == "an-toan@1"

    started = client.post(f"{API}/sessions", json={"test": "an-toan", "language": "en"}).json()
    assert started["test"] == {"name": "an-toan", "version": "1"}
    assert started["max_items"] == 5 and started["item"]["area"] == "4"
    session_id = started["session_id"]
    item, seen = started["item"], []
    rng = np.random.default_rng(4)
    while item is not None:
        seen.append(item["area"])
        reply = client.post(
            f"{API}/sessions/{session_id}/answers",
            json={"item_id": item["id"], "response": int(rng.integers(len(item["options"])))},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["test"] == {"name": "an-toan", "version": "1"}
        item = reply.json()["item"]
    assert set(seen) == {"4"} and 2 <= len(seen) <= 5
    result = client.get(f"{API}/sessions/{session_id}/result").json()
    assert result["test"] == {"name": "an-toan", "version": "1"}
    assert [a["area"] for a in result["areas"]] == ["4"]
    assert result["overall"]["score"] == pytest.approx(result["areas"][0]["score"])
    assert result["overall"]["level"] == result["areas"][0]["level"]
    with sa.create_engine(client.database_url).connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT test_name, test_version, config, area_scores FROM test_session "
                "WHERE id = :id"
            ),
            {
                "id": session_id
                if "postgresql" in client.database_url
                else session_id.replace("-", "")
            },
        ).one()
    assert (row.test_name, row.test_version, row.config) == ("an-toan", "1", "an-toan@1")
    # Researchers' export says which test each answer came from.
    export = client.get(f"{API}/admin/responses.csv", headers=HEADERS).text.splitlines()
    assert export[0].endswith(",seq,test,test_version")
    assert sum(line.endswith(",an-toan,1") for line in export) == len(seen)


def test_unknown_test_is_404_naming_it(client) -> None:
    reply = client.post(f"{API}/sessions", json={"test": "khong-co"})
    assert reply.status_code == 404
    assert "khong-co" in reply.json()["detail"]
    assert client.post(f"{API}/sessions", json={"test": "Bad Name"}).status_code == 400


def test_a_session_finishes_under_the_version_it_started_with(client) -> None:
    assert _add(client, _named(SAFETY, "giu-ban")).status_code == 201
    assert _activate(client, "giu-ban", "1").status_code == 200
    started = client.post(f"{API}/sessions", json={"test": "giu-ban"}).json()
    # A longer version 2 goes live while the session is in progress.
    longer = _named(SAFETY, "giu-ban", version="2", rules={"max_items": 8, "min_items": 8})
    assert _add(client, longer).status_code == 201
    assert _activate(client, "giu-ban", "2").status_code == 200
    sent = run_to_end(client, started["session_id"], started["item"], np.random.default_rng(1))
    assert sent <= 5
    result = client.get(f"{API}/sessions/{started['session_id']}/result").json()
    assert result["test"] == {"name": "giu-ban", "version": "1"}
    fresh = client.post(f"{API}/sessions", json={"test": "giu-ban"}).json()
    assert fresh["test"] == {"name": "giu-ban", "version": "2"} and fresh["max_items"] == 8
    versions = {
        t["version"]: t["status"]
        for t in client.get(f"{API}/admin/tests", headers=HEADERS).json()
        if t["name"] == "giu-ban"
    }
    assert versions == {"1": "retired", "2": "active"}


def test_a_fixed_form_is_served_in_order_to_the_end(client) -> None:
    assert _add(client, FORM).status_code == 201
    out = _activate(client, "phieu", "1").json()
    assert out["gate"]["candidate"]["mean_items"] == len(FORM_ITEMS)
    started = client.post(f"{API}/sessions", json={"test": "phieu"}).json()
    assert started["language"] == "vi" and started["max_items"] == len(FORM_ITEMS)
    session_id, item, given, progress = started["session_id"], started["item"], [], []
    while item is not None:
        given.append(item["id"])
        reply = client.post(
            f"{API}/sessions/{session_id}/answers", json={"item_id": item["id"], "response": 0}
        ).json()
        progress.append(reply["progress"])
        item = reply["item"]
    assert given == FORM_ITEMS
    # A form's length is known: progress is exact.
    assert progress == [1 / 4, 2 / 4, 3 / 4, 1.0]
    result = client.get(f"{API}/sessions/{session_id}/result").json()
    assert result["stop_reason"] == "max_items" and result["answered"] == 4
    assert [a["area"] for a in result["areas"]] == ["4", "5"]
    # The form is offered in Vietnamese only.
    english = client.post(f"{API}/sessions", json={"test": "phieu", "language": "en"})
    assert english.status_code == 422 and "offered in vi" in english.json()["detail"]


def test_a_form_with_an_item_the_bank_lacks_is_refused_at_activation(client) -> None:
    document = _named(FORM, "phieu-sai", form={"items": ["4.t00", "9.t99"]})
    assert _add(client, document).status_code == 201
    reply = _activate(client, "phieu-sai", "1")
    assert reply.status_code == 409
    assert 'form.items[1]: item \\"9.t99\\"' in reply.text or '"9.t99"' in reply.json()["detail"]


def test_the_gate_refuses_a_worse_version_with_its_figures(client) -> None:
    assert (
        _add(client, _named(SAFETY, "cong", rules={"max_items": 10, "min_items": 10})).status_code
        == 201
    )
    assert _activate(client, "cong", "1").status_code == 200
    worse = _named(SAFETY, "cong", version="2", rules={"max_items": 1, "min_items": 1})
    assert _add(client, worse).status_code == 201
    refused = _activate(client, "cong", "2")
    assert refused.status_code == 409
    gate = refused.json()["gate"]
    assert gate["passed"] is False
    assert gate["candidate"]["mean_items"] == 1
    assert gate["current"]["level_accuracy"] > gate["candidate"]["level_accuracy"] + 0.02
    assert "did not pass the go-live gate" in refused.json()["detail"]
    listed = {t["name"]: t["version"] for t in client.get(f"{API}/tests").json()}
    assert listed["cong"] == "1"
    assert _activate(client, "cong", "2", force=True).status_code == 422  # no reason
    forced = _activate(client, "cong", "2", force=True, reason="một câu cho buổi trình diễn")
    assert forced.status_code == 200 and forced.json()["forced"] is True
    log = client.get(f"{API}/admin/activations", headers=HEADERS).json()
    assert [(e["version"], e["outcome"]) for e in log[:2]] == [
        ("cong@2", "activated"),
        ("cong@2", "refused"),
    ]


def test_the_default_test_is_an_activation_setting(client) -> None:
    assert _add(client, _named(SAFETY, "mac-dinh")).status_code == 201
    reply = _activate(client, "mac-dinh", "1", default=True)
    assert reply.status_code == 200 and reply.json()["default"] is True
    try:
        started = client.post(f"{API}/sessions", json={}).json()
        assert started["test"] == {"name": "mac-dinh", "version": "1"}
        assert client.get(f"{API}/tests").json()[0]["name"] == "mac-dinh"
    finally:
        back = _activate(client, "citizen", "2", default=True)
        assert back.status_code == 200 and back.json()["gate"] is None
    assert client.post(f"{API}/sessions").json()["test"] == {"name": "citizen", "version": "2"}


def test_sympson_hetter_rules_get_their_parameters_at_activation(client) -> None:
    rules = {"max_items": 4, "min_items": 4, "exposure": "sympson-hetter:0.6"}
    assert _add(client, _named(SAFETY, "sh", rules=rules)).status_code == 201
    activated = _activate(client, "sh", "1")
    assert activated.status_code == 200, activated.text
    with sa.create_engine(client.database_url).connect() as conn:
        derived = conn.execute(
            sa.text("SELECT derived FROM test_definition WHERE name = 'sh' AND version = '1'")
        ).scalar_one()
    derived = derived if isinstance(derived, dict) else json.loads(derived)
    (control,) = derived["exposure"].values()
    # One control parameter per item of area 4 (the test's areas), each a probability.
    assert sorted(item for item, _ in control) == [f"4.t{k:02d}" for k in range(8)]
    assert all(0 <= k <= 1 for _, k in control) and min(k for _, k in control) < 1
    started = client.post(f"{API}/sessions", json={"test": "sh"})
    assert started.status_code == 201 and started.json()["item"]["area"] == "4"


def test_a_bank_that_would_stop_an_active_test_is_refused(client) -> None:
    # A form that follows the active bank, and a new bank version without one of its items.
    document = _named(FORM, "theo-ngan-hang", form={"items": ["4.t00", "4.t07"]})
    assert _add(client, document).status_code == 201
    assert _activate(client, "theo-ngan-hang", "1").status_code == 200
    smaller = bank_dict("svc-test-small", per_area=4)
    assert client.post(f"{API}/admin/bank-files", json=smaller, headers=HEADERS).status_code == 201
    refused = client.post(f"{API}/admin/banks/svc-test-small/activate", headers=HEADERS)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "would stop active tests" in detail
    assert (
        'test theo-ngan-hang@1: form.items[1]: item "4.t07" is not in bank svc-test-small' in detail
    )
    banks = {
        b["version"]: b["status"] for b in client.get(f"{API}/admin/banks", headers=HEADERS).json()
    }
    assert banks["svc-test-small"] == "draft"
    # The test still runs on the active bank.
    assert client.post(f"{API}/sessions", json={"test": "theo-ngan-hang"}).status_code == 201


def test_a_new_bank_derives_the_exposure_control_of_active_tests(database_url, tmp_path) -> None:
    # A Sympson-Hetter test that follows the active bank goes on running on a new version.
    with app_client(database_url, tmp_path, gate_simulees=400) as client:
        rules = {"max_items": 3, "min_items": 3, "exposure": "sympson-hetter:0.6"}
        assert _add(client, _named(SAFETY, "sh-theo", rules=rules)).status_code == 201
        assert _activate(client, "sh-theo", "1").status_code == 200
        new = bank_dict("svc-test-2", seed=3)
        assert client.post(f"{API}/admin/bank-files", json=new, headers=HEADERS).status_code == 201
        done = client.post(f"{API}/admin/banks/svc-test-2/activate", headers=HEADERS)
        assert done.status_code == 200, done.text
        with sa.create_engine(database_url).connect() as conn:
            derived = conn.execute(
                sa.text("SELECT derived FROM test_definition WHERE name = 'sh-theo'")
            ).scalar_one()
        derived = derived if isinstance(derived, dict) else json.loads(derived)
        assert set(derived["exposure"]) == {"svc-test-1", "svc-test-2"}
        started = client.post(f"{API}/sessions", json={"test": "sh-theo"}).json()
        assert started["item"]["area"] == "4"
        with sa.create_engine(database_url).connect() as conn:
            bank = conn.execute(
                sa.text("SELECT bank_version FROM test_session WHERE test_name = 'sh-theo'")
            ).scalar_one()
        assert bank == "svc-test-2"


def test_a_start_looks_its_test_up_in_one_query_and_a_pinned_bank_holds(
    database_url, tmp_path
) -> None:
    # Pinned to the first bank version, a test stays on it when another goes live;
    # the default test follows the active bank. Each start reads what it needs
    # (default test, active version, active bank) with one query.
    with app_client(database_url, tmp_path, gate_simulees=400) as client:
        assert _add(client, _named(SAFETY, "ghim", bank="svc-test-1")).status_code == 201
        assert _activate(client, "ghim", "1").status_code == 200
        new = bank_dict("svc-test-2", seed=3)
        assert client.post(f"{API}/admin/bank-files", json=new, headers=HEADERS).status_code == 201
        done = client.post(f"{API}/admin/banks/svc-test-2/activate", headers=HEADERS)
        assert done.status_code == 200, done.text

        statements: list[str] = []

        def seen(conn, cursor, statement, parameters, context, executemany) -> None:
            statements.append(statement.split(None, 1)[0].upper())

        engine = client.app.state.db.engine
        for test in ("ghim", None):  # the first start of a test builds its rules once
            reply = client.post(f"{API}/sessions", json={"test": test} if test else {})
            assert reply.status_code == 201
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            started = {}
            for test in ("ghim", None):
                statements.clear()
                reply = client.post(f"{API}/sessions", json={"test": test} if test else {})
                assert reply.status_code == 201, reply.text
                started[test] = reply.json()
                assert [s for s in statements if s in ("SELECT", "INSERT")] == ["SELECT", "INSERT"]
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        assert started["ghim"]["test"] == {"name": "ghim", "version": "1"}
        assert started[None]["test"] == {"name": "citizen", "version": "2"}
        with sa.create_engine(database_url).connect() as conn:
            banks = set(
                conn.execute(sa.text("SELECT test_name, bank_version FROM test_session")).all()
            )
        assert banks == {("ghim", "svc-test-1"), ("citizen", "svc-test-2")}
        # Both finish, and their results are stored with the finishing answer.
        for test, body in started.items():
            run_to_end(client, body["session_id"], body["item"], np.random.default_rng(2))
            result = client.get(f"{API}/sessions/{body['session_id']}/result")
            assert result.status_code == 200 and result.json()["test"]["name"] == (
                test or "citizen"
            )
        with sa.create_engine(database_url).connect() as conn:
            ids = [uuid.UUID(body["session_id"]) for body in started.values()]
            stored = conn.execute(
                sa.select(SESSION.c.status, SESSION.c.overall_level).where(SESSION.c.id.in_(ids))
            ).all()
        assert [row.status for row in stored] == ["finished", "finished"]
        assert all(row.overall_level is not None for row in stored)


def test_a_start_without_an_active_version_or_bank_says_which(database_url, tmp_path) -> None:
    # What the one-query lookup does not find, the step-by-step lookup names.
    with app_client(database_url, tmp_path, gate_simulees=400) as client:
        assert _add(client, _named(SAFETY, "nhap")).status_code == 201  # stored, never activated
        reply = client.post(f"{API}/sessions", json={"test": "nhap"})
        assert reply.status_code == 404
        assert reply.json()["detail"] == "test 'nhap' has no active version"
        with sa.create_engine(database_url).begin() as conn:
            conn.execute(sa.text("UPDATE bank_version SET status = 'retired'"))
        for body in ({}, {"test": "citizen"}):
            reply = client.post(f"{API}/sessions", json=body)
            assert reply.status_code == 409, reply.text
            assert reply.json()["detail"] == "no bank version is active"
