"""Researcher endpoints end to end: stored responses -> calibration -> draft -> activation."""

# ruff: noqa: F811 - pytest fixtures are imported by name and used as arguments

from __future__ import annotations

import io
import uuid

import numpy as np
import sqlalchemy as sa

from nangluc import calibration, items
from nangluc.engine.irt import simulate_responses
from nangluc.service.db import RESPONSE, SESSION, utcnow
from service_fixtures import ADMIN_KEY, bank_dict, database_url, fresh_client  # noqa: F401

API = "/api/v1"
HEADERS = {"X-API-Key": ADMIN_KEY}


def _store_simulated_responses(client, n_people: int, seed: int = 0) -> None:
    """Finished sessions of simulees who answered every item (as if collected by the service)."""
    document = items.bank_from_dict(bank_dict())
    bank = document.item_bank
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, n_people)
    now = utcnow()
    session_rows, response_rows = [], []
    for person in range(n_people):
        session_id = uuid.uuid4()
        scores = simulate_responses(
            bank, np.full(bank.n_items, theta[person]), np.arange(bank.n_items), rng
        )
        session_rows.append(
            {
                "id": session_id,
                "bank_version": bank.version,
                "config": "citizen-v1",
                "language": "vi",
                "ward": f"ward-{person % 3}",
                "age_group": None,
                "status": "in_progress",
                "state": {},
                "answered": bank.n_items,
                "lock_version": bank.n_items,
                "created": now,
                "updated": now,
            }
        )
        for seq, (record, score) in enumerate(zip(document.items, scores, strict=True), start=1):
            if record.key is not None:  # the option chosen: the key, or another option
                option = record.key if score == 1 else (record.key + 1) % len(record.options)
            else:
                option = int(score)
            response_rows.append(
                {
                    "session_id": session_id,
                    "seq": seq,
                    "item_id": record.id,
                    "response": option,
                    "score": int(score),
                    "created": now,
                }
            )
    with client.app.state.db.transaction() as conn:
        conn.execute(SESSION.insert(), session_rows)
        conn.execute(RESPONSE.insert(), response_rows)


def test_calibration_creates_a_draft_that_can_be_activated(fresh_client) -> None:
    client = fresh_client
    _store_simulated_responses(client, 300)

    # The export is the calibration input format: the calibration reads it as is.
    csv_text = client.get(f"{API}/admin/responses.csv", headers=HEADERS).text
    data = calibration.read_responses(io.StringIO(csv_text), bank=items.bank_from_dict(bank_dict()))
    assert (data.n_respondents, data.n_responses) == (300, 300 * 40)

    reply = client.post(
        f"{API}/admin/calibrations",
        json={"model": "auto", "version": "svc-test-cal1"},
        headers=HEADERS,
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["bank"]["version"] == "svc-test-cal1"
    assert reply.headers["location"] == f"{API}/admin/banks/svc-test-cal1"  # 201: where it lives
    assert body["bank"]["status"] == "draft" and body["bank"]["parent"] == "svc-test-1"
    assert (body["respondents"], body["responses"]) == (300, 12_000)
    assert body["bank"]["items"] == 40
    assert {link["area"] for link in body["summary"]["linking"]} == {"1", "2", "3", "4", "5"}

    # The draft is stored, not active; new tests still start on the active version.
    banks = {
        b["version"]: b["status"] for b in client.get(f"{API}/admin/banks", headers=HEADERS).json()
    }
    assert banks == {"svc-test-1": "active", "svc-test-cal1": "draft"}
    assert client.get(f"{API}/framework").json()["bank_version"] == "svc-test-1"
    document = client.get(f"{API}/admin/banks/svc-test-cal1", headers=HEADERS).json()
    assert document["parent"] == "svc-test-1"
    original = {i["id"]: i for i in bank_dict()["items"]}
    # Fitted parameters, linked to the live scale: close to the generating ones.
    a_fit = np.array([i["a"] for i in document["items"]])
    a_true = np.array([original[i["id"]]["a"] for i in document["items"]])
    assert np.all(a_fit > 0) and np.median(np.abs(a_fit - a_true)) < 0.5
    b_pairs = np.array([(i["b"], original[i["id"]]["b"]) for i in document["items"] if "b" in i])
    assert np.corrcoef(b_pairs.T)[0, 1] > 0.8
    # Texts and keys come from the parent bank.
    assert all(i["text"] == original[i["id"]]["text"] for i in document["items"])

    # Same version again: 409, nothing stored.
    again = client.post(
        f"{API}/admin/calibrations", json={"version": "svc-test-cal1"}, headers=HEADERS
    )
    assert again.status_code == 409
    assert len(client.get(f"{API}/admin/banks", headers=HEADERS).json()) == 2

    # Activation: new tests run on the calibrated version.
    assert (
        client.post(f"{API}/admin/banks/svc-test-cal1/activate", headers=HEADERS).status_code == 200
    )
    started = client.post(f"{API}/sessions").json()
    with client.app.state.db.engine.connect() as conn:
        version = conn.execute(
            sa.select(SESSION.c.bank_version).where(
                SESSION.c.id == uuid.UUID(started["session_id"])
            )
        ).scalar_one()
    assert version == "svc-test-cal1"


def test_calibration_without_responses_is_422(fresh_client) -> None:
    reply = fresh_client.post(f"{API}/admin/calibrations", headers=HEADERS)
    assert reply.status_code == 422
    assert "no responses" in reply.json()["detail"]
    assert (
        fresh_client.post(
            f"{API}/admin/calibrations", json={"base_version": "nope"}, headers=HEADERS
        ).status_code
        == 404
    )
    assert (
        fresh_client.post(
            f"{API}/admin/calibrations", json={"model": "4pl"}, headers=HEADERS
        ).status_code
        == 400
    )
    assert len(fresh_client.get(f"{API}/admin/banks", headers=HEADERS).json()) == 1
