"""Calibration against girth and the mirt Python package on the same sparse data.

Run: ``python -m benchmarks.calibration_vs_girth [--persons N] [--per-person K] [--seed S]``.

50,000 simulees each answer 20 of 173 dichotomous 2PL items (one scale;
discriminations and locations taken from the shipped bank), missing
responses absent. The same data go to

* nangluc: ``calibrate_bank(model="2pl")`` (EM with standard errors and
  diagnostics; the data already read into ``ResponseData``);
* girth: ``girth.twopl_mml`` on the items x persons matrix with missing
  responses tagged ``INVALID_RESPONSE`` (girth's missing-data convention);
* mirt: ``mirt.fit_mirt(model="2PL")`` on the persons x items matrix with
  missing responses coded -1 (its defaults, standard errors included).

Each fit runs once, on the same machine, in this process; the time is the
fitting call only. Parameter recovery is the RMSE of a and b against the
generating values. Target (DESIGN §5): >= 20x faster than girth with RMSE at
least as good, and not slower than mirt.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nangluc.calibration import ResponseData, calibrate_bank
from nangluc.calibration.synthetic import simulate_sparse
from nangluc.engine.bank import ItemBank
from nangluc.items import load_bank


def truth_bank() -> ItemBank:
    """173 2PL items on one scale with the shipped bank's a and mean thresholds."""
    doc = load_bank()
    a = np.array([r.a for r in doc.items])
    b = np.array([float(np.mean(r.thresholds)) for r in doc.items])
    ids = [f"i{k:03d}" for k in range(a.size)]
    return ItemBank.from_items(
        version="bench",
        item_ids=ids,
        areas=["1"] * a.size,
        models=["2pl"] * a.size,
        discrimination=a,
        thresholds=[[x] for x in b],
    )


def rmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(estimate, dtype=float) - truth) ** 2)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--per-person", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-mirt", action="store_true")
    args = parser.parse_args(argv)

    bank = truth_bank()
    a_true, b_true = bank.discrimination, bank.thresholds[:, 0]
    sim = simulate_sparse(bank, args.persons, args.per_person, np.random.default_rng(args.seed))
    n_items = bank.n_items
    print(
        f"{args.persons:,} simulees x {args.per_person} of {n_items} items ({sim.person.size:,} responses)"
    )

    data = ResponseData.from_arrays(
        np.array([f"r{p}" for p in range(args.persons)])[sim.person],
        np.array(bank.item_ids)[sim.item],
        sim.response,
    )
    order = np.array([data.item_ids.index(i) for i in bank.item_ids])
    started = time.perf_counter()
    run = calibrate_bank(data, model="2pl")
    ours_s = time.perf_counter() - started
    fitted = {item["id"]: item for item in run.document["items"]}
    ours_a = np.array([fitted[i]["a"] for i in np.array(data.item_ids)[order]])
    ours_b = np.array([fitted[i]["b"] for i in np.array(data.item_ids)[order]])
    print(
        f"nangluc: {ours_s:.2f} s, {run.fit.iterations} E-steps, converged {run.fit.converged}; "
        f"RMSE a {rmse(ours_a, a_true):.4f}, b {rmse(ours_b, b_true):.4f}",
        flush=True,
    )

    import girth

    matrix = np.full((n_items, args.persons), girth.INVALID_RESPONSE, dtype=int)
    matrix[sim.item, sim.person] = sim.response
    started = time.perf_counter()
    result = girth.twopl_mml(matrix)
    girth_s = time.perf_counter() - started
    girth_a, girth_b = result["Discrimination"], result["Difficulty"]
    print(
        f"girth:   {girth_s:.2f} s; RMSE a {rmse(girth_a, a_true):.4f}, b {rmse(girth_b, b_true):.4f}",
        flush=True,
    )

    mirt_text = "mirt: skipped"
    if not args.skip_mirt:
        import mirt

        persons = np.full((args.persons, n_items), -1, dtype=int)
        persons[sim.person, sim.item] = sim.response
        started = time.perf_counter()
        fit = mirt.fit_mirt(persons, model="2PL")
        mirt_s = time.perf_counter() - started
        mirt_a = fit.model.parameters["discrimination"].reshape(-1)
        mirt_b = fit.model.parameters["difficulty"].reshape(-1)
        print(
            f"mirt:    {mirt_s:.2f} s; RMSE a {rmse(mirt_a, a_true):.4f}, b {rmse(mirt_b, b_true):.4f}"
        )
        mirt_text = (
            f"mirt {mirt_s:.2f} s ({mirt_s / ours_s:.1f}x slower than ours), RMSE a {rmse(mirt_a, a_true):.4f}, "
            f"b {rmse(mirt_b, b_true):.4f}"
        )
    print(
        f"calibration vs girth: {girth_s / ours_s:.1f}x faster (ours {ours_s:.2f} s, girth {girth_s:.1f} s); "
        f"RMSE a {rmse(ours_a, a_true):.4f} vs {rmse(girth_a, a_true):.4f}; "
        f"b {rmse(ours_b, b_true):.4f} vs {rmse(girth_b, b_true):.4f}; {mirt_text}"
    )


if __name__ == "__main__":
    main()
