"""Item fit (S-X²), local dependence (Q3) and drift in a calibration (issue 15)."""

from __future__ import annotations

import numpy as np

from nangluc.calibration import ResponseData, calibrate_bank
from nangluc.calibration.synthetic import bank_document, simulate_sparse
from nangluc.engine.bank import ItemBank
from nangluc.items import bank_from_dict


def _bank(n: int, seed: int) -> ItemBank:
    rng = np.random.default_rng(seed)
    return ItemBank.from_items(
        version="fit-1",
        item_ids=[f"1.1.{k:02d}" for k in range(n)],
        areas=["1"] * n,
        models=["2pl"] * n,
        discrimination=rng.uniform(0.9, 1.8, n),
        thresholds=[[rng.uniform(-1.2, 1.2)] for _ in range(n)],
    )


def test_a_dependent_pair_and_a_misfitting_item_are_found_and_a_fitting_bank_is_quiet():
    bank = _bank(16, 1)
    rng = np.random.default_rng(1)
    sim = simulate_sparse(bank, 3000, 16, rng)  # everyone answers all sixteen: one form
    response = sim.response.copy()
    # item 1 copies item 0 for half of the people (a shared stem, a giveaway)
    by_person = {(p, i): k for k, (p, i) in enumerate(zip(sim.person, sim.item, strict=True))}
    for p in range(0, 3000, 2):
        response[by_person[(p, 1)]] = response[by_person[(p, 0)]]
    # item 15 is right mostly in the middle of the scale: no logistic curve fits it
    odd = sim.item == 15
    middle = np.abs(sim.theta[sim.person[odd], 0]) < 0.8
    response[odd] = (rng.random(odd.sum()) < np.where(middle, 0.85, 0.2)).astype(response.dtype)
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], response
    )
    run = calibrate_bank(data, model="2pl")
    dependent = {d.item_id for d in run.diagnostics if d.code == "local_dependence"}
    assert dependent == {"1.1.00"}  # the pair (1.1.00, 1.1.01), reported on its first item
    misfit = {d.item_id for d in run.diagnostics if d.code == "misfit"}
    assert "1.1.15" in misfit
    rows = {r["id"]: r for r in run.items}
    assert rows["1.1.05"]["fit"]["df"] > 1 and 0 <= rows["1.1.05"]["fit"]["q"] <= 1

    clean = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], sim.response
    )
    quiet = calibrate_bank(clean, model="2pl")
    assert not [d for d in quiet.diagnostics if d.code in ("misfit", "local_dependence")]


def test_drift_against_the_current_bank_is_reported_with_its_z():
    bank = _bank(12, 2)
    current = bank_from_dict(bank_document(bank, version="fit-1"))
    moved = bank_document(bank, version="fit-truth")
    moved["items"][4]["b"] += 1.0  # the item became much harder
    truth = bank_from_dict(moved).item_bank
    sim = simulate_sparse(truth, 4000, 8, np.random.default_rng(2))
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], sim.response, bank=current
    )
    run = calibrate_bank(data, current=current, model="2pl")
    drift = [d for d in run.diagnostics if d.code == "drift"]
    assert [d.item_id for d in drift] == ["1.1.04"]
    row = next(r for r in run.items if r["id"] == "1.1.04")
    assert row["drift"]["delta_b"] > 0.6 and row["drift"]["z_b"] > 3
