"""Accuracy and length of the default citizen test (DESIGN §5, "Test length").

Simulees' area abilities are drawn from DESIGN's default population
(multivariate normal, mean 0, SD 1, inter-area correlation 0.7). The same
simulees take, on the shipped bank:

* the default citizen test (:data:`nangluc.engine.CITIZEN_TEST`);
* every operational item of the bank (the reference accuracy), scored with the
  same estimator;
* the same test with items chosen at the true abilities (a reference for item
  selection, not a bound: under EAP it can be less accurate than the test);
* optionally the alternatives that were compared when the default was chosen
  (``--compare``).

``--bank FILE`` runs the same comparison on another bank (a calibrated one,
say): the accuracy any test can reach is set by the bank's information, which
the all-items line shows.

Run: ``python -m benchmarks.citizen_test [--bank FILE] [--examinees N] [--seed S] [--compare]``
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from nangluc.engine import (
    CITIZEN_TEST,
    EAP,
    AreaMinimum,
    KindBalance,
    LevelDecided,
    LevelProbability,
    MaximumInformation,
    OverallStandardError,
)
from nangluc.items import load_bank
from nangluc.simulations import draw_population, full_bank_scores, run

ALTERNATIVES = {
    "independent areas (EAP per area)": replace(
        CITIZEN_TEST, name="alt-independent", estimator=EAP()
    ),
    "kind balance K/S/A as in the bank": replace(
        CITIZEN_TEST, name="alt-kind-balance", content=(AreaMinimum(1), KindBalance())
    ),
    "maximum information selector": replace(
        CITIZEN_TEST, name="alt-mfi", selector=MaximumInformation()
    ),
    "stop at P(level) >= 0.95": replace(
        CITIZEN_TEST, name="alt-p95", stopping=(LevelProbability(0.95),)
    ),
    "stop when 95% interval in one band": replace(
        CITIZEN_TEST, name="alt-interval", stopping=(LevelDecided(),)
    ),
    "stop at overall SE <= 4": replace(
        CITIZEN_TEST, name="alt-se4", stopping=(OverallStandardError(4.0),)
    ),
}


def line(name: str, summary: dict) -> str:
    return (
        f"{name:38s} accuracy {summary['level_accuracy']:.3f}  mean items {summary['mean_items']:5.1f}  "
        f"max {summary['max_items']:2d}  overall RMSE {summary['rmse']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default=None, help="bank file (default: the shipped bank)")
    parser.add_argument("--examinees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--correlation", type=float, default=0.7)
    parser.add_argument(
        "--compare", action="store_true", help="also run the alternatives considered"
    )
    args = parser.parse_args()

    bank = load_bank(args.bank).item_bank
    rng = np.random.default_rng(args.seed)
    truth = draw_population(args.examinees, bank.n_areas, args.correlation, rng)
    print(
        f"bank {bank.version} ({bank.n_items} items), {args.examinees} simulees, correlation {args.correlation}"
    )

    test = run(bank, CITIZEN_TEST, truth, np.random.default_rng(args.seed + 1))
    full = full_bank_scores(bank, CITIZEN_TEST, truth, np.random.default_rng(args.seed + 2))
    oracle = run(
        bank, CITIZEN_TEST, truth, np.random.default_rng(args.seed + 3), true_theta_selection=True
    )
    summary = test.summary
    summary["max_items"] = int(test.length.max())
    oracle.summary["max_items"] = int(oracle.length.max())
    print(line(f"citizen test ({CITIZEN_TEST.name})", summary))
    print(line("items chosen at the true theta", oracle.summary))
    print(
        f"{'all ' + str(full.summary['items']) + ' items':38s} accuracy {full.summary['level_accuracy']:.3f}  overall RMSE {full.summary['rmse']:.2f}"
    )
    if args.compare:
        for name, config in ALTERNATIVES.items():
            alt = run(bank, config, truth, np.random.default_rng(args.seed + 1))
            alt.summary["max_items"] = int(alt.length.max())
            print(line(name, alt.summary))

    accuracy = summary["level_accuracy"]
    relative = accuracy / full.summary["level_accuracy"]
    length_ratio = summary["mean_items"] / oracle.summary["mean_items"]
    print(
        f"citizen test: level accuracy {accuracy:.3f} with {summary['mean_items']:.1f} items on average "
        f"(max {summary['max_items']}); all items {full.summary['level_accuracy']:.3f} ({relative:.1%} of it); "
        f"true-theta selection {oracle.summary['mean_items']:.1f} items ({length_ratio:.2f}x); "
        f"max exposure {test.exposure.max():.2f}, overlap {summary['overlap']:.2f}"
    )


if __name__ == "__main__":
    main()
