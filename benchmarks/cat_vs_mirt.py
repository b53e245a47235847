"""The same adaptive test in nangluc and in the `mirt` Python package's CAT engine.

Rules, identical in both: one scale of 2PL items (a ~ U(0.8, 2.2),
b ~ N(0, 1.2)), maximum Fisher information at the current estimate, EAP with
a N(0, 1) prior on 61 quadrature points over [-6, 6] (enough for an accurate
posterior SD), stop when the SE is <= 0.3 or after 30 items, at least one
item. Simulees' abilities are N(0, 1). mirt runs its fastest path for these
rules (``run_batch_simulation``: its Rust backend or lock-step simulation),
nangluc all simulees in one lockstep batch.

Printed: mean length, RMSE and bias of theta, and the CPU time per simulee
of each; lengths and RMSEs should agree within the noise of the draws (the
standard errors of the means are printed), and the last line is how many
times faster nangluc is per simulee.

Run: ``python -m benchmarks.cat_vs_mirt [--items N] [--simulees N] [--seed S]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nangluc.engine import EAP, MaximumInformation, TestConfig
from nangluc.engine.bank import ItemBank
from nangluc.engine.stopping import ThetaStandardError
from nangluc.simulations import run

SE_TARGET = 0.3
MAX_ITEMS = 30
QUADRATURE_POINTS = 61
BOUNDS = (-6.0, 6.0)


def figures(theta: np.ndarray, estimate: np.ndarray, length: np.ndarray) -> dict:
    error = estimate - theta
    return {
        "mean_items": float(length.mean()),
        "items_se": float(length.std() / np.sqrt(length.size)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        # Delta-method SE of the RMSE from the SE of the mean squared error.
        "rmse_se": float(np.std(error**2) / np.sqrt(error.size) / (2 * np.sqrt(np.mean(error**2)))),
        "bias": float(error.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--simulees", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from mirt.cat import CATEngine
    from mirt.models import TwoParameterLogistic

    rng = np.random.default_rng(args.seed)
    a = rng.uniform(0.8, 2.2, args.items)
    b = rng.normal(0.0, 1.2, args.items)
    theta = rng.normal(0.0, 1.0, args.simulees)

    bank = ItemBank.from_items(
        version="cat-vs-mirt",
        item_ids=[f"i{j:03d}" for j in range(args.items)],
        areas=["1"] * args.items,
        models=["2pl"] * args.items,
        discrimination=a,
        thresholds=[[x] for x in b],
    )
    config = TestConfig(
        name="mfi-eap-se0.3",
        estimator=EAP(),
        selector=MaximumInformation(),
        stopping=(ThetaStandardError(SE_TARGET),),
        min_items=1,
        max_items=MAX_ITEMS,
        min_information=0.0,
    )
    run(bank, config, theta[:50, None], np.random.default_rng(0))  # tables built, code warm
    cpu = time.process_time()
    ours = run(bank, config, theta[:, None], np.random.default_rng(args.seed + 1))
    ours_cpu = time.process_time() - cpu

    model = TwoParameterLogistic(n_items=args.items)
    model.set_parameters(discrimination=a, difficulty=b)
    # The parameters are given, not fitted; the engine only checks this flag.
    model._is_fitted = True
    engine = CATEngine(
        model,
        item_selection="MFI",
        scoring_method="EAP",
        se_threshold=SE_TARGET,
        max_items=MAX_ITEMS,
        min_items=1,
        n_quadpts=QUADRATURE_POINTS,
        theta_bounds=BOUNDS,
        seed=args.seed + 2,
    )
    engine.run_batch_simulation(theta[:50])  # warm
    cpu = time.process_time()
    results = engine.run_batch_simulation(theta)
    mirt_cpu = time.process_time() - cpu
    mirt_estimate = np.array([r.theta for r in results])
    mirt_length = np.array([r.n_items_administered for r in results])

    mine = figures(theta, ours.theta[:, 0], ours.length)
    theirs = figures(theta, mirt_estimate, mirt_length)
    print(f"{args.items} 2PL items, {args.simulees} simulees, MFI + EAP ({QUADRATURE_POINTS} points), "
          f"stop at SE <= {SE_TARGET} or {MAX_ITEMS} items")  # fmt: skip
    for name, f, seconds in (("nangluc", mine, ours_cpu), ("mirt", theirs, mirt_cpu)):
        print(
            f"{name:8s} mean items {f['mean_items']:6.2f} ± {f['items_se']:.2f}  RMSE "
            f"{f['rmse']:.4f} ± {f['rmse_se']:.4f}  bias {f['bias']:+.4f}  CPU "
            f"{1e6 * seconds / args.simulees:8.1f} µs per simulee"
        )
    length_diff = abs(mine["mean_items"] - theirs["mean_items"]) / np.hypot(
        mine["items_se"], theirs["items_se"]
    )
    rmse_diff = abs(mine["rmse"] - theirs["rmse"]) / np.hypot(mine["rmse_se"], theirs["rmse_se"])
    print(f"differences: length {length_diff:.1f} SE, RMSE {rmse_diff:.1f} SE")
    print(f"nangluc is {mirt_cpu / ours_cpu:.1f}x faster per simulee (CPU time)")


if __name__ == "__main__":
    main()
