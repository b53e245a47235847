"""Do results state how sure they are truthfully? (issue #11, DESIGN §4)

1. **Probability calibration.** Simulees drawn from DESIGN's population
   (multivariate normal, mean 0, SD 1, inter-area correlation 0.7) take a test
   on the shipped bank; each result states the posterior probability that its
   overall level is right. In bins of 0.05 of the stated probability, the
   share whose level was right should match the stated probability: the goal
   is ``|stated - observed| <= 0.03`` in every bin with ``n >= 200``. Run for
   the default citizen test and for each per-area estimator combined with a
   level-probability stop (``nangluc simulate --estimator eap|map|mle
   --stop-level-probability 0.9``). A bin's observed share has a binomial SE of
   ``sqrt(p (1 - p) / n)`` (0.035 at p = 0.5, n = 200), so the tolerance is a
   statistical statement: the table shows each bin's SE and z-score, and the
   default size (200,000 simulees a design) keeps most bins' SE near 0.01.

2. **Settled.** Among 10,000 simulees of the default test, the share whose
   result (``nangluc.engine.score_test`` on the finished test's state, what
   the API and the page show) is *not settled* against the share whose test
   did not stop because the level reached the threshold (its stopping rule).

Run: ``python -m benchmarks.result_calibration [--examinees N] [--designs default,eap,map,mle]``
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from nangluc.engine import CITIZEN_TEST, TestState, score_test
from nangluc.items import load_bank
from nangluc.simulations import draw_population, run
from nangluc.simulations.designs import build_design

DESIGNS = {
    "default": {},
    "eap": {"estimator": "eap", "stop_level_probability": 0.9},
    "map": {"estimator": "map", "stop_level_probability": 0.9},
    "mle": {"estimator": "mle", "stop_level_probability": 0.9},
}
TOLERANCE = 0.03
MIN_BIN = 200


def calibration_table(name: str, bins: list[dict]) -> float:
    """Print the bins; return the worst |stated - observed| over bins with n >= MIN_BIN.

    Also prints a goodness-of-fit test over those bins: if the stated
    probabilities are true, the sum of the squared z-scores is chi-square with
    one degree of freedom per bin (a small p-value would mean miscalibration
    beyond sampling noise).
    """
    from scipy.stats import chi2

    print(f"\n{name}: stated probability of the overall level against how often it was right")
    print(f"{'stated':>8} {'observed':>9} {'n':>8} {'diff':>8} {'SE':>7} {'z':>6}")
    worst = 0.0
    z_squared, judged_bins = 0.0, 0
    for b in bins:
        se = math.sqrt(max(b["stated"] * (1 - b["stated"]), 1e-12) / b["n"])
        diff = b["observed"] - b["stated"]
        judged = b["n"] >= MIN_BIN
        if judged:
            worst = max(worst, abs(diff))
            z_squared += (diff / se) ** 2
            judged_bins += 1
        flag = "" if not judged else ("  ok" if abs(diff) <= TOLERANCE else "  OUTSIDE ±0.03")
        print(
            f"{b['stated']:8.3f} {b['observed']:9.3f} {b['n']:8d} {diff:+8.3f} {se:7.3f} "
            f"{diff / se:+6.1f}{flag}"
        )
    if judged_bins:
        print(
            f"chi-square {z_squared:.1f} over {judged_bins} bins with n >= {MIN_BIN}: "
            f"p = {chi2.sf(z_squared, judged_bins):.2f} (calibrated within sampling noise if not small)"
        )
    return worst


def settled_check(bank, examinees: int, seed: int, workers: int) -> tuple[float, float]:
    """(share not settled as score_test shows it, share whose test did not stop at the threshold)."""
    truth = draw_population(examinees, bank.n_areas, 0.7, np.random.default_rng(seed))
    result = run(bank, CITIZEN_TEST, truth, np.random.default_rng(seed + 1), workers=workers)
    shown = np.empty(examinees, dtype=bool)
    for k in range(examinees):
        n = int(result.administered[k])
        state = TestState(
            bank_version=bank.version,
            config=CITIZEN_TEST.name,
            seed=k,
            administered=tuple(bank.item_ids[i] for i in result.items[k, :n]),
            responses=tuple(int(r) for r in result.responses[k, :n]),
            next_item=None,
            finished=True,
            stop_reason=str(result.stop_reason[k]),
            theta=tuple(result.theta[k]),
            se=tuple(result.theta_se[k]),
            correlation=tuple(map(tuple, result.theta_corr[k])),
        )
        shown[k] = score_test(bank, state, CITIZEN_TEST).overall.settled
    not_reached = result.stop_reason != "level_probable"
    return float(np.mean(~shown)), float(np.mean(not_reached))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examinees", type=int, default=200_000, help="simulees per design")
    parser.add_argument(
        "--designs", default="default,eap", help="comma-separated: " + ",".join(DESIGNS)
    )
    parser.add_argument("--settled-examinees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    names = [d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = sorted(set(names) - set(DESIGNS))
    if unknown:
        parser.error(f"unknown design(s) {', '.join(unknown)}; known: {', '.join(DESIGNS)}")

    bank = load_bank().item_bank
    print(f"bank {bank.version}, {args.examinees:,} simulees per design, {args.workers} workers")
    worst = {}
    for offset, name in enumerate(names):
        design = build_design(DESIGNS[name])
        truth = draw_population(
            args.examinees, bank.n_areas, 0.7, np.random.default_rng(args.seed + offset)
        )
        started = time.perf_counter()
        result = run(
            bank, design.config, truth, np.random.default_rng(args.seed + 100), workers=args.workers
        )
        s = result.summary
        print(
            f"\n{name} ({design.name}): {time.perf_counter() - started:.0f} s, mean items "
            f"{s['mean_items']:.1f}, level accuracy {s['level_accuracy']:.4f}, mean stated "
            f"probability {s['mean_stated_probability']:.4f}, settled {s['settled']:.4f}"
        )
        worst[name] = calibration_table(name, s["probability_calibration"])

    not_settled, not_reached = settled_check(
        bank, args.settled_examinees, args.seed + 1000, args.workers
    )
    print(
        f"\n{args.settled_examinees:,} simulees of the default test: not settled (score_test) "
        f"{not_settled:.2%}, did not stop at the threshold {not_reached:.2%}"
    )
    print(
        "worst |stated - observed| in bins with n >= 200: "
        + ", ".join(f"{name} {value:.3f}" for name, value in worst.items())
        + f" (goal <= {TOLERANCE}); not settled vs not at threshold: "
        f"{100 * abs(not_settled - not_reached):.2f} points apart (goal <= 0.5)"
    )


if __name__ == "__main__":
    main()
