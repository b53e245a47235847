"""The go-live gate in the service (issue 15): no bad bank reaches citizens unnoticed.

The issue's finding: 48 respondents produced a draft with error-level
diagnostics (items jumping from a = 1.24 to 9.08 on 5-37 answers), and
``POST /admin/banks/{v}/activate`` put it live at once.
"""

# ruff: noqa: F811 - pytest fixtures are imported by name and used as arguments

from __future__ import annotations

import pytest
from test_service_calibration import _store_simulated_responses

from nangluc.service.db import RESPONSE
from nangluc.service.settings import hash_key
from service_fixtures import ADMIN_KEY, app_client, bank_dict, database_url  # noqa: F401

API = "/api/v1"
HEADERS = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def fresh_client(database_url, tmp_path):
    # a smaller gate simulation than the service's default (3,000) keeps the tests quick
    with app_client(database_url, tmp_path, gate_simulees=1000, gate_tolerance=0.03) as client:
        yield client


def _banks(client) -> dict[str, str]:
    return {
        b["version"]: b["status"] for b in client.get(f"{API}/admin/banks", headers=HEADERS).json()
    }


def test_48_respondents_cannot_put_wild_parameters_live(fresh_client) -> None:
    client = fresh_client
    _store_simulated_responses(client, 48, seed=3)
    original = {item["id"]: item for item in bank_dict()["items"]}

    # Default settings: no new estimate rests on 200 responses, so every item
    # keeps its live parameters; the version is clean and may go live.
    reply = client.post(f"{API}/admin/calibrations", json={"version": "cal-48"}, headers=HEADERS)
    assert reply.status_code == 201, reply.text
    document = client.get(f"{API}/admin/banks/cal-48", headers=HEADERS).json()
    assert document["status"] == "calibrated"
    for item in document["items"]:
        assert item["a"] == original[item["id"]]["a"]

    # Plain maximum likelihood on every response, as the issue ran it, on data
    # where one keyed item was scored against its key: a draft with an
    # error-level finding, which the gate refuses.
    flipped = next(i for i in original.values() if i.get("key") is not None)["id"]
    with client.app.state.db.transaction() as conn:
        conn.execute(
            RESPONSE.update()
            .where(RESPONSE.c.item_id == flipped)
            .values(score=1 - RESPONSE.c.score)
        )
    reply = client.post(
        f"{API}/admin/calibrations",
        json={"version": "cal-48-ml", "prior": "none", "min_responses": 1},
        headers=HEADERS,
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["bank"]["document_status"] == "draft"
    assert body["summary"]["diagnostics"]["error"] > 0
    assert any(
        f["code"] == "reversed" and f["item_id"] == flipped for f in body["summary"]["findings"]
    )
    refused = client.post(f"{API}/admin/banks/cal-48-ml/activate", headers=HEADERS)
    assert refused.status_code == 409, refused.text
    gate = refused.json()["gate"]
    assert gate["passed"] is False and gate["errors"]
    assert "error-level diagnostic" in refused.json()["detail"]
    assert gate["candidate"]["level_accuracy"] is not None and gate["current"]["mean_items"] > 0
    assert _banks(client)["cal-48-ml"] == "draft"  # nothing changed
    assert client.get(f"{API}/framework").json()["bank_version"] == "svc-test-1"

    # force needs a reason
    reply = client.post(
        f"{API}/admin/banks/cal-48-ml/activate", json={"force": True}, headers=HEADERS
    )
    assert reply.status_code == 422 and "reason" in reply.json()["detail"]
    assert _banks(client)["cal-48-ml"] == "draft"

    # the clean version passes the gate
    reply = client.post(f"{API}/admin/banks/cal-48/activate", headers=HEADERS)
    assert reply.status_code == 200, reply.text
    out = reply.json()
    assert out["status"] == "active" and out["gate"]["passed"] and not out["forced"]
    assert abs(out["gate"]["accuracy_difference"]) <= 0.03 and out["gate"]["simulees"] == 1000

    # override, with a reason: recorded
    reply = client.post(
        f"{API}/admin/banks/cal-48-ml/activate",
        json={"force": True, "reason": "trial in one ward, approved by the board"},
        headers=HEADERS,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["forced"] is True
    assert _banks(client) == {"svc-test-1": "retired", "cal-48": "retired", "cal-48-ml": "active"}

    log = client.get(f"{API}/admin/activations", headers=HEADERS).json()
    assert [(e["version"], e["outcome"], e["forced"]) for e in log] == [
        ("cal-48-ml", "activated", True),
        ("cal-48", "activated", False),
        ("cal-48-ml", "refused", False),
    ]
    assert log[0]["reason"] == "trial in one ward, approved by the board"
    assert log[0]["previous"] == "cal-48" and log[0]["gate"]["passed"] is False
    assert all(e["actor"] == "key:" + hash_key(ADMIN_KEY)[:12] for e in log)
    assert ADMIN_KEY not in str(log)
    assert client.get(f"{API}/admin/activations").status_code == 401


def test_three_calibrations_in_the_same_second_get_three_versions(fresh_client) -> None:
    client = fresh_client
    _store_simulated_responses(client, 40, seed=4)
    codes, versions = [], set()
    for _ in range(3):
        reply = client.post(f"{API}/admin/calibrations", headers=HEADERS)
        codes.append(reply.status_code)
        versions.add(reply.json()["bank"]["version"])
    assert codes == [201, 201, 201] and len(versions) == 3


def test_a_bank_file_can_be_stored_and_goes_through_the_gate(fresh_client) -> None:
    client = fresh_client
    document = bank_dict("svc-test-2", seed=0)
    # a version that keeps only one operational item per area: a much shorter test
    seen: set[str] = set()
    for item in document["items"]:
        if item["area"] in seen:
            item["status"] = "pretest"
        seen.add(item["area"])
    reply = client.post(f"{API}/admin/bank-files", json=document, headers=HEADERS)
    assert reply.status_code == 201, reply.text
    assert reply.json()["status"] == "draft"
    assert client.post(f"{API}/admin/bank-files", json=document, headers=HEADERS).status_code == 409
    bad = client.post(f"{API}/admin/bank-files", json={"items": []}, headers=HEADERS)
    assert bad.status_code == 422
    refused = client.post(f"{API}/admin/banks/svc-test-2/activate", headers=HEADERS)
    assert refused.status_code == 409, refused.text
    gate = refused.json()["gate"]
    assert not gate["errors"]  # no diagnostics: the simulation refused it
    assert gate["accuracy_difference"] < -0.03
    assert "accuracy drops" in refused.json()["detail"]
