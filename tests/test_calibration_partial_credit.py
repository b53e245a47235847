"""Calibration of generalized partial credit items: recovery and the mirt package's optimum."""

from __future__ import annotations

import numpy as np
import pytest

from nangluc.calibration import Priors, ResponseData, calibrate_bank
from nangluc.calibration.synthetic import simulate_sparse
from nangluc.engine import irt
from nangluc.engine.bank import ItemBank


def gpcm_bank(rng, n_items: int, n_categories: int = 4) -> ItemBank:
    return ItemBank.from_items(
        version="truth",
        item_ids=[f"1.1.{i:03d}" for i in range(n_items)],
        areas=["1"] * n_items,
        models=["gpcm"] * n_items,
        discrimination=rng.uniform(0.7, 1.8, n_items),
        # step parameters in no order: reversals are part of the model
        thresholds=[list(rng.normal(0.0, 1.0, n_categories - 1)) for _ in range(n_items)],
    )


def fitted(run, bank) -> tuple[np.ndarray, np.ndarray]:
    items = {item["id"]: item for item in run.document["items"]}
    assert all(items[i]["model"] == "gpcm" for i in bank.item_ids)
    a = np.array([items[i]["a"] for i in bank.item_ids])
    steps = np.array([items[i]["thresholds"] for i in bank.item_ids])
    return a, steps


def marginal_loglik(a, steps, matrix) -> float:
    """log L of a complete (persons x items) matrix under N(0, 1), on a fine grid."""
    grid = np.linspace(-8, 8, 641)
    weight = np.exp(-0.5 * grid**2)
    weight /= weight.sum()
    n_items = matrix.shape[1]
    probs = irt.category_probabilities(
        grid, a, steps, np.zeros(n_items), np.ones(n_items, dtype=bool)
    )  # (Q, I, K)
    log_p = np.log(probs[:, np.arange(n_items)[None, :], matrix])  # (Q, persons, items)
    per_person = log_p.sum(axis=2) + np.log(weight)[:, None]
    top = per_person.max(axis=0)
    return float(np.sum(top + np.log(np.exp(per_person - top).sum(axis=0))))


@pytest.fixture(scope="module")
def gpcm_data():
    rng = np.random.default_rng(31)
    bank = gpcm_bank(rng, 10)
    sim = simulate_sparse(bank, 2500, 10, rng)  # everyone answers everything
    names = np.array([f"p{p}" for p in range(sim.theta.shape[0])])
    data = ResponseData.from_arrays(
        names[sim.person], np.array(bank.item_ids)[sim.item], sim.response
    )
    matrix = np.zeros((sim.theta.shape[0], bank.n_items), dtype=int)
    matrix[sim.person, sim.item] = sim.response
    run = calibrate_bank(data, model="gpcm", priors=Priors.none(), tol=1e-6)
    return bank, matrix, run


def test_gpcm_parameters_are_recovered(gpcm_data):
    bank, _, run = gpcm_data
    a, steps = fitted(run, bank)
    assert np.sqrt(np.mean((a - bank.discrimination) ** 2)) < 0.12
    assert np.sqrt(np.mean((steps - bank.thresholds) ** 2)) < 0.15
    assert run.fit.converged


def test_gpcm_reaches_the_mirt_packages_optimum(gpcm_data):
    mirt = pytest.importorskip("mirt")
    bank, matrix, run = gpcm_data
    a, steps = fitted(run, bank)
    ours = marginal_loglik(a, steps, matrix)
    theirs_fit = mirt.fit_mirt(
        matrix, model="GPCM", n_quadpts=61, tol=1e-6, max_iter=2000,
        compute_standard_errors=False,
    )  # fmt: skip
    model = theirs_fit.model
    theirs = marginal_loglik(np.asarray(model.discrimination), np.asarray(model.steps), matrix)
    # The same maximum of the same likelihood: within 0.05, and ours not lower.
    assert abs(ours - theirs) <= 0.05 or ours > theirs
    assert ours >= theirs - 0.05
    np.testing.assert_allclose(a, model.discrimination, atol=0.02)


@pytest.mark.parametrize(
    ("model", "categories", "mirt_model"), [("1pl", 2, "2PL"), ("pcm", 4, "GPCM")]
)
def test_shared_slope_models_reach_the_mirt_packages_optimum(model, categories, mirt_model):
    """1PL and PCM items share one slope: mirt's 2PL/GPCM with tied discriminations."""
    rng = np.random.default_rng(5 + categories)
    n = 12
    bank = ItemBank.from_items(
        version="truth",
        item_ids=[f"1.1.{i:03d}" for i in range(n)],
        areas=["1"] * n,
        models=[model] * n,
        discrimination=[1.4] * n,
        thresholds=[list(rng.normal(0.0, 1.0, categories - 1)) for _ in range(n)],
    )
    sim = simulate_sparse(bank, 2500, n, rng)
    names = np.array([f"p{p}" for p in range(sim.theta.shape[0])])
    data = ResponseData.from_arrays(
        names[sim.person], np.array(bank.item_ids)[sim.item], sim.response
    )
    matrix = np.zeros((sim.theta.shape[0], n), dtype=int)
    matrix[sim.person, sim.item] = sim.response
    run = calibrate_bank(data, model=model, priors=Priors.none(), tol=1e-6)
    items = {item["id"]: item for item in run.document["items"]}
    assert all(items[i]["model"] == model for i in bank.item_ids)
    a = np.array([items[i]["a"] for i in bank.item_ids])
    steps = np.array([items[i].get("thresholds", [items[i].get("b")]) for i in bank.item_ids])
    assert np.all(a == a[0]) and abs(a[0] - 1.4) < 0.1  # one shared slope, recovered
    assert 0 < items[bank.item_ids[0]]["se"]["a"] < 0.1
    assert np.sqrt(np.mean((steps - bank.thresholds) ** 2)) < 0.15
    mirt = pytest.importorskip("mirt")
    fit = mirt.fit_mirt(
        matrix, model=mirt_model, n_quadpts=61, tol=1e-6, max_iter=2000,
        compute_standard_errors=False, constraints=[{"parameter": "discrimination"}],
    )  # fmt: skip
    m = fit.model
    theirs_steps = np.asarray(m.steps) if categories > 2 else np.asarray(m.difficulty)[:, None]
    ours = marginal_loglik(a, steps, matrix)
    theirs = marginal_loglik(np.asarray(m.discrimination, dtype=float), theirs_steps, matrix)
    assert ours >= theirs - 0.05
    assert a[0] == pytest.approx(float(m.discrimination[0]), abs=0.005)


def test_auto_keeps_1pl_and_pcm_items_and_only_they_share_a_slope():
    rng = np.random.default_rng(9)
    models = ["1pl", "2pl", "pcm", "1pl", "2pl", "pcm"] * 2
    bank = ItemBank.from_items(
        version="truth",
        item_ids=[f"1.1.{i:03d}" for i in range(12)],
        areas=["1"] * 12,
        models=models,
        discrimination=[1.2 if m in ("1pl", "pcm") else 1.8 for m in models],
        thresholds=[list(rng.normal(0, 1, 3 if m == "pcm" else 1)) for m in models],
    )
    sim = simulate_sparse(bank, 2000, 12, rng)
    names = np.array([f"p{p}" for p in range(sim.theta.shape[0])])
    data = ResponseData.from_arrays(
        names[sim.person], np.array(bank.item_ids)[sim.item], sim.response
    )
    from nangluc.calibration.synthetic import bank_document
    from nangluc.items import bank_from_dict

    current = bank_from_dict(bank_document(bank, version="live-1"))
    data = ResponseData.from_arrays(
        names[sim.person], np.array(bank.item_ids)[sim.item], sim.response, bank=current
    )
    run = calibrate_bank(data, model="auto", current=current, priors=Priors.none())
    items = {item["id"]: item for item in run.document["items"]}
    # auto keeps each item's model; the 1PL and PCM items share one slope, the 2PL items do not.
    assert [items[i]["model"] for i in bank.item_ids] == models
    shared = [items[i]["a"] for i, m in zip(bank.item_ids, models, strict=True) if m != "2pl"]
    free = [items[i]["a"] for i, m in zip(bank.item_ids, models, strict=True) if m == "2pl"]
    assert len(set(shared)) == 1 and len(set(free)) == len(free)
    assert abs(shared[0] - 1.2) < 0.15
