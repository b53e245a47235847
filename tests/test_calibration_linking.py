"""Linking to the live scale, fixed-parameter (online) calibration, diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from nangluc.calibration import ResponseData, calibrate_bank, online_calibrate
from nangluc.calibration.linking import link, transform
from nangluc.calibration.synthetic import bank_document, simulate_sparse
from nangluc.engine.bank import ItemBank
from nangluc.items import bank_from_dict


def truth_bank(rng, n_items=24, *, pretest=0):
    models = ["2pl", "grm", "3pl"]
    thresholds = []
    for i in range(n_items):
        if models[i % 3] == "grm":
            thresholds.append(sorted(rng.uniform(-1.5, 1.5, 2) + [0.0, 0.4]))
        else:
            thresholds.append([rng.uniform(-1.5, 1.5)])
    operational = [i >= pretest for i in range(n_items)]
    return ItemBank.from_items(
        version="truth",
        item_ids=[f"1.1.{i:02d}" for i in range(n_items)],
        areas=["1"] * n_items,
        models=[models[i % 3] for i in range(n_items)],
        discrimination=rng.uniform(0.9, 1.8, n_items),
        thresholds=thresholds,
        guessing=[0.2 if models[i % 3] == "3pl" else 0.0 for i in range(n_items)],
        operational=operational,
    )


def to_data(bank, sim) -> ResponseData:
    names = np.array([f"p{p}" for p in range(sim.theta.shape[0])])
    return ResponseData.from_arrays(
        names[sim.person], np.array(bank.item_ids)[sim.item], sim.response
    )


def rescaled_document(bank: ItemBank, A: float, B: float, version: str) -> dict:
    """The bank on a live scale theta_live = A * theta + B."""
    doc = bank_document(bank, version=version)
    for item in doc["items"]:
        item["a"] = item["a"] / A
        if "b" in item:
            item["b"] = A * item["b"] + B
        else:
            item["thresholds"] = [A * t + B for t in item["thresholds"]]
    return doc


@pytest.mark.parametrize("method", ["stocking-lord", "haebara"])
def test_link_recovers_known_constants(method):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.8, 2.0, 10)
    t = np.sort(rng.normal(size=(10, 2)), axis=1)
    t[:4, 1] = np.inf  # dichotomous items among graded ones
    c = np.where(np.arange(10) < 2, 0.2, 0.0)
    live_a, live_t = transform(a, t, 1.4, -0.3)
    result = link(
        "1", tuple(f"i{k}" for k in range(10)), (a, t, c), (live_a, live_t, c), method=method
    )
    assert abs(result.A - 1.4) < 1e-4
    assert abs(result.B + 0.3) < 1e-4
    assert result.method == method


def test_link_errors():
    with pytest.raises(ValueError, match="unknown linking method"):
        link(
            "1",
            ("x",),
            (np.ones(1), np.zeros((1, 1)), np.zeros(1)),
            (np.ones(1), np.zeros((1, 1)), np.zeros(1)),
            method="mean-mean",
        )
    with pytest.raises(ValueError, match="no anchor"):
        link(
            "1",
            (),
            (np.ones(1), np.zeros((1, 1)), np.zeros(1)),
            (np.ones(1), np.zeros((1, 1)), np.zeros(1)),
        )


def test_calibration_is_linked_to_a_shifted_live_scale():
    rng = np.random.default_rng(2)
    bank = truth_bank(rng)
    sim = simulate_sparse(bank, 12000, 10, rng)
    current = bank_from_dict(rescaled_document(bank, 1.3, 0.5, "live-1"))
    run = calibrate_bank(to_data(bank, sim), current=current, model="auto")
    (linking,) = run.linking
    assert abs(linking.A - 1.3) < 0.1
    assert abs(linking.B - 0.5) < 0.1
    assert run.latent["1"]["mean"] == pytest.approx(linking.B)
    assert run.latent["1"]["sd"] == pytest.approx(linking.A)
    doc = run.document
    assert doc["parent"] == "live-1" and doc["status"] == "calibrated"
    new = {item["id"]: item for item in doc["items"]}
    live = {item.id: item for item in current.items}
    locations = [
        np.mean(new[i].get("thresholds", [new[i].get("b")])) - np.mean(live[i].thresholds)
        for i in new
    ]
    assert np.sqrt(np.mean(np.square(locations))) < 0.2
    assert doc["metadata"]["calibration"]["linking"][0]["A"] == pytest.approx(linking.A)
    bank_from_dict(doc)  # a valid bank document


def test_named_anchors_are_used():
    rng = np.random.default_rng(3)
    bank = truth_bank(rng)
    sim = simulate_sparse(bank, 6000, 10, rng)
    current = bank_from_dict(bank_document(bank, version="live-2"))
    anchors = ["1.1.00", "1.1.01", "1.1.03", "1.1.04"]
    run = calibrate_bank(
        to_data(bank, sim), current=current, anchors=anchors, linking_method="haebara"
    )
    assert run.linking[0].anchors == tuple(anchors)
    assert run.linking[0].method == "haebara"
    with pytest.raises(ValueError, match="not in bank"):
        calibrate_bank(to_data(bank, sim), current=current, anchors=["9.9.99"])


def test_online_calibration_fixes_operational_items_and_estimates_latent():
    rng = np.random.default_rng(4)
    bank = truth_bank(rng, 27, pretest=6)
    sim = simulate_sparse(bank, 15000, 10, rng)
    # the sample's abilities are N(0.4, 1.2^2) on the live scale
    theta = 0.4 + 1.2 * sim.theta[:, 0]
    response = _responses(bank, theta[sim.person], sim.item, rng)
    data = ResponseData.from_arrays(
        np.array([f"p{p}" for p in sim.person]), np.array(bank.item_ids)[sim.item], response
    )
    current = bank_from_dict(bank_document(bank, version="live-3"))
    run = online_calibrate(data, current)
    assert run.linking == ()
    assert run.latent["1"]["mean"] == pytest.approx(0.4, abs=0.06)
    assert run.latent["1"]["sd"] == pytest.approx(1.2, abs=0.08)
    new = {item["id"]: item for item in run.document["items"]}
    live = {item.id: item for item in current.items}
    for item_id in bank.item_ids[6:]:  # operational: unchanged, no standard errors
        assert new[item_id]["a"] == pytest.approx(live[item_id].a)
    pre = bank.item_ids[:6]
    a = np.array([new[i]["a"] for i in pre])
    assert np.sqrt(np.mean((a - bank.discrimination[:6]) ** 2)) < 0.3
    assert all("se" in new[i] and new[i]["status"] == "pretest" for i in pre)


def _responses(bank, theta, items, rng):
    from nangluc.engine import irt

    return irt.simulate_responses(bank, theta, items, rng)


def test_diagnostics_are_reported_not_fixed():
    rng = np.random.default_rng(5)
    # item 0 measures the opposite way; item 1 never uses its top category;
    # item 2 has very few responses
    ids = [f"1.1.{k:02d}" for k in range(12)]
    models = ["2pl"] * 12
    models[1] = "grm"
    bank = ItemBank.from_items(
        version="t",
        item_ids=ids,
        areas=["1"] * 12,
        models=models,
        discrimination=rng.uniform(1.0, 1.8, 12),
        thresholds=[[rng.uniform(-1, 1)] if m == "2pl" else [-0.5, 0.5, 9.0] for m in models],
    )
    sim = simulate_sparse(bank, 4000, 8, rng)
    response = sim.response.copy()
    flip = sim.item == 0
    response[flip] = 1 - response[flip]
    keep = (sim.item != 2) | (sim.person < 150)
    names = np.array([f"p{p}" for p in range(4000)])
    current = bank_from_dict(bank_document(bank, version="live-4"))
    data = ResponseData.from_arrays(
        names[sim.person][keep], np.array(ids)[sim.item][keep], response[keep], bank=current
    )
    run = calibrate_bank(data, current=current)
    codes = {(d.item_id, d.code): d for d in run.diagnostics}
    assert codes[("1.1.00", "reversed")].severity == "error"
    assert "Reverse its key" in codes[("1.1.00", "reversed")].message
    assert ("1.1.01", "unused_category") in codes
    assert ("1.1.02", "few_responses") in codes
    assert run.document["status"] == "draft"  # errors: not publishable as calibrated
    new = {item["id"]: item for item in run.document["items"]}
    live = {item.id: item for item in current.items}
    # the reversed item does not go live: its estimate is written as pretest, with the reason
    assert new["1.1.00"]["status"] == "pretest"
    assert "runs against its area" in new["1.1.00"]["status_reason"]
    # too few responses: the live item keeps its current parameters and status
    assert new["1.1.02"]["a"] == pytest.approx(live["1.1.02"].a)
    assert new["1.1.02"]["status"] == "operational"
    assert new["1.1.01"]["thresholds"] == pytest.approx(list(live["1.1.01"].thresholds))
    reported = run.document["metadata"]["calibration"]["diagnostics"]
    assert {"item_id": "1.1.00", "code": "reversed", "severity": "error"}.items() <= next(
        d for d in reported if d["item_id"] == "1.1.00"
    ).items()
