"""Is the advice what the measurement supports? (issue #11)

Simulees drawn from DESIGN's population take the default citizen test on the
shipped bank; each gets the advice the API gives
(:func:`nangluc.engine.next_steps` on the test's posterior, as
:func:`nangluc.engine.advise` computes it). Against the simulees' TRUE
abilities:

* simulees whose result is at the top level in every area must get no
  remedial criterion: no next steps at all;
* for everyone else, the named next-step criteria should be within reach:
  the goal is that at least 80% of them have a probability of being met
  between 0.3 and 0.7 at the simulee's true ability (the learning zone).

Also printed: how often a named criterion is already met at the true ability
(p >= 0.7: it would have been remedial) and for simulees truly at the top in
every area, how many criteria they were given.

Run: ``python -m benchmarks.advice_quality [--examinees N] [--seed S]``
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from nangluc.engine import CITIZEN_TEST, next_steps
from nangluc.engine.advice import LEARNING_ZONE, success_probability
from nangluc.engine.tables import bank_tables
from nangluc.items import load_bank
from nangluc.simulations import draw_population, run


def final_loglik(bank, items: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Each simulee's per-area log-likelihood at the end of the test, (N, A, Q)."""
    tables = bank_tables(bank)
    n = items.shape[0]
    loglik = np.zeros((n, bank.n_areas, tables.quadrature.size))
    for column in range(items.shape[1]):
        item = items[:, column]
        given = item >= 0
        given[given] &= bank.operational[item[given]]
        rows = np.flatnonzero(given)
        loglik[rows, bank.area[item[rows]]] += tables.log_prob[item[rows], responses[rows, column]]
    return loglik


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examinees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    bank = load_bank().item_bank
    truth = draw_population(args.examinees, bank.n_areas, 0.7, np.random.default_rng(args.seed))
    result = run(
        bank, CITIZEN_TEST, truth, np.random.default_rng(args.seed + 1), workers=args.workers
    )
    posterior = CITIZEN_TEST.posterior.posterior(
        bank, final_loglik(bank, result.items, result.responses.astype(np.intp))
    )
    area_level = result.scores.area_level
    steps = next_steps(bank, posterior.weights, area_level, result.scores.overall_level)

    named = steps.items >= 0  # (N, A, S)
    rows, areas, _ = np.nonzero(named)
    item = steps.items[named]
    # Probability of meeting each named criterion at the simulee's true ability.
    true_theta = truth[rows, areas]
    order = np.argsort(true_theta)
    p_true = np.empty(item.size)
    chunk = 4096
    for lo in range(0, item.size, chunk):
        part = order[lo : lo + chunk]
        p_true[part] = success_probability(bank, true_theta[part])[np.arange(part.size), item[part]]
    in_zone = (p_true >= LEARNING_ZONE[0]) & (p_true <= LEARNING_ZONE[1])
    already = p_true >= LEARNING_ZONE[1]

    top_everywhere = np.all(area_level == 5, axis=1)
    criteria_at_top = int(named[top_everywhere].sum())
    true_top = np.all(result.true_scores.area_level == 5, axis=1)
    others = ~top_everywhere[rows]
    share = float(in_zone[others].mean()) if others.any() else float("nan")
    print(
        f"bank {bank.version}, {args.examinees:,} simulees of {CITIZEN_TEST.name}: "
        f"{named.sum(axis=2).mean():.2f} next steps per area on average, "
        f"{np.mean(named[:, :, 0]):.1%} of areas with at least one"
    )
    print(
        f"results at the top level in every area: {int(top_everywhere.sum()):,} simulees, "
        f"{criteria_at_top} criteria named; overall top level: "
        f"{int(steps.top_overall.sum()):,} simulees"
    )
    print(
        f"simulees truly at the top in every area: {int(true_top.sum()):,}, "
        f"{named[true_top].sum(axis=(1, 2)).mean() if true_top.any() else 0:.2f} criteria each on average"
    )
    print(
        f"named criteria (not top everywhere): {int(others.sum()):,}; probability of being met "
        f"at the true ability: in [0.3, 0.7] {share:.1%}, >= 0.7 (already met) "
        f"{float(already[others].mean()):.1%}, < 0.3 {float((p_true[others] < 0.3).mean()):.1%}"
    )
    print(
        f"advice: {criteria_at_top} remedial criteria for the {int(top_everywhere.sum())} all-top "
        f"results (goal 0); {share:.1%} of next steps within reach at the true ability (goal >= 80%)"
    )


if __name__ == "__main__":
    main()
