"""Parameter recovery on seeded synthetic data, dense and sparse; girth as the cross-check."""

from __future__ import annotations

import girth
import numpy as np
import pytest

from nangluc.calibration import ResponseData, calibrate_bank
from nangluc.calibration.synthetic import simulate_sparse
from nangluc.engine.bank import ItemBank


def make_bank(rng, n_items, *, models, n_areas=1, n_categories=4):
    ids, areas, thresholds, guessing = [], [], [], []
    a = rng.uniform(0.8, 2.0, n_items)
    for i in range(n_items):
        area = str(1 + i % n_areas)
        ids.append(f"{area}.1.{i:03d}")
        areas.append(area)
        model = models[i % len(models)]
        if model == "grm":
            thresholds.append(
                sorted(rng.uniform(-1.8, 1.8, n_categories - 1) + np.arange(n_categories - 1) * 0.3)
            )
        else:
            thresholds.append([rng.uniform(-1.8, 1.8)])
        guessing.append(0.2 if model == "3pl" else 0.0)
    return ItemBank.from_items(
        version="truth",
        item_ids=ids,
        areas=areas,
        models=[models[i % len(models)] for i in range(n_items)],
        discrimination=a,
        thresholds=thresholds,
        guessing=guessing,
    )


def to_data(bank, sim) -> ResponseData:
    names = np.array([f"p{p}" for p in range(sim.theta.shape[0])])
    return ResponseData.from_arrays(
        names[sim.person], np.array(bank.item_ids)[sim.item], sim.response
    )


def estimates(run, bank):
    items = {item["id"]: item for item in run.document["items"]}
    a = np.array([items[i]["a"] for i in bank.item_ids])
    t = [np.array(items[i].get("thresholds", [items[i].get("b")])) for i in bank.item_ids]
    return a, t, items


def rmse(x, y):
    return float(np.sqrt(np.mean((np.asarray(x) - np.asarray(y)) ** 2)))


def test_dense_2pl_recovers_and_matches_girth():
    rng = np.random.default_rng(11)
    bank = make_bank(rng, 15, models=["2pl"])
    sim = simulate_sparse(bank, 3000, 15, rng)  # everyone answers everything: dense
    run = calibrate_bank(to_data(bank, sim), model="2pl")
    a, t, _ = estimates(run, bank)
    b = np.array([x[0] for x in t])
    assert rmse(a, bank.discrimination) < 0.1
    assert rmse(b, bank.thresholds[:, 0]) < 0.1
    matrix = np.zeros((bank.n_items, sim.theta.shape[0]), dtype=int)
    matrix[sim.item, sim.person] = sim.response
    ref = girth.twopl_mml(matrix)
    np.testing.assert_allclose(a, ref["Discrimination"], atol=0.06)
    np.testing.assert_allclose(b, ref["Difficulty"], atol=0.06)


def test_dense_grm_matches_girth():
    rng = np.random.default_rng(12)
    bank = make_bank(rng, 8, models=["grm"], n_categories=4)
    sim = simulate_sparse(bank, 2500, 8, rng)
    run = calibrate_bank(to_data(bank, sim), model="grm")
    a, t, _ = estimates(run, bank)
    truth = bank.thresholds[:, :3]
    assert rmse(a, bank.discrimination) < 0.12
    assert rmse(np.array(t), truth) < 0.12
    matrix = np.zeros((bank.n_items, sim.theta.shape[0]), dtype=int)
    matrix[sim.item, sim.person] = sim.response + 1  # girth's graded data start at 1
    ref = girth.grm_mml(matrix)
    np.testing.assert_allclose(a, ref["Discrimination"], atol=0.08)
    np.testing.assert_allclose(np.array(t), ref["Difficulty"][:, :3], atol=0.08)


def test_sparse_2pl_at_least_as_good_as_girth():
    rng = np.random.default_rng(13)
    bank = make_bank(rng, 30, models=["2pl"])
    sim = simulate_sparse(bank, 4000, 10, rng)
    run = calibrate_bank(to_data(bank, sim), model="2pl")
    a, t, _ = estimates(run, bank)
    b = np.array([x[0] for x in t])
    matrix = np.full((bank.n_items, sim.theta.shape[0]), girth.INVALID_RESPONSE, dtype=int)
    matrix[sim.item, sim.person] = sim.response
    ref = girth.twopl_mml(matrix)
    ours_a, ours_b = rmse(a, bank.discrimination), rmse(b, bank.thresholds[:, 0])
    girth_a, girth_b = (
        rmse(ref["Discrimination"], bank.discrimination),
        rmse(ref["Difficulty"], bank.thresholds[:, 0]),
    )
    assert ours_a <= girth_a * 1.05 + 0.01
    assert ours_b <= girth_b * 1.05 + 0.01
    assert ours_a < 0.2 and ours_b < 0.2  # about 1,300 responses per item


@pytest.fixture(scope="module")
def mixed_sparse():
    rng = np.random.default_rng(14)
    bank = make_bank(rng, 36, models=["2pl", "grm", "3pl"], n_areas=3)
    sim = simulate_sparse(bank, 30000, 12, rng, correlation=0.6)
    from nangluc.calibration.synthetic import bank_document
    from nangluc.items import bank_from_dict

    current = bank_from_dict(bank_document(bank))
    run = calibrate_bank(to_data(bank, sim), model="auto", current=current)
    return bank, sim, run


def test_sparse_mixed_format_recovery(mixed_sparse):
    bank, _, run = mixed_sparse
    a, t, items = estimates(run, bank)
    assert run.fit.converged
    assert [items[i]["model"] for i in bank.item_ids[:3]] == ["2pl", "grm", "3pl"]
    # 3PL slopes are much less precise (SE ~0.15-0.3 here): checked through
    # their standard errors below; 2PL and graded items directly.
    two = np.array([items[i]["model"] != "3pl" for i in bank.item_ids])
    assert rmse(a[two], bank.discrimination[two]) < 0.12
    locations = np.array([x.mean() for x in t])
    truth = np.array(
        [bank.thresholds[i, : bank.n_categories[i] - 1].mean() for i in range(bank.n_items)]
    )
    assert rmse(locations[two], truth[two]) < 0.12
    assert rmse(locations, truth) < 0.25
    c = np.array([items[i]["c"] for i in bank.item_ids if items[i]["model"] == "3pl"])
    assert np.all(np.abs(c - 0.2) < 0.1)


def test_standard_errors_are_calibrated(mixed_sparse):
    bank, _, run = mixed_sparse
    a, _, items = estimates(run, bank)
    se = np.array([items[i]["se"]["a"] for i in bank.item_ids])
    z = (a - bank.discrimination) / se
    # estimates scatter around the truth as their standard errors say
    assert 0.6 < np.sqrt(np.mean(z**2)) < 1.5


def test_inter_area_correlation_is_disattenuated(mixed_sparse):
    _, _, run = mixed_sparse
    matrix = np.array(run.correlation["matrix"], dtype=float)
    off = matrix[np.triu_indices(3, 1)]
    assert np.all(np.abs(off - 0.6) < 0.08)
    assert run.correlation["n"][0][1] > 1000


def test_linking_to_the_truth_scale_is_identity(mixed_sparse):
    _, _, run = mixed_sparse
    assert len(run.linking) == 3
    for linking in run.linking:
        assert abs(linking.A - 1.0) < 0.08
        assert abs(linking.B) < 0.08
        assert linking.method == "stocking-lord"
