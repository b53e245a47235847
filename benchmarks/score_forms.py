"""Scoring paper forms in bulk: :func:`nangluc.engine.score_patterns` against one pattern at a time.

``nangluc score`` scores a survey's forms with ``score_patterns`` (the array
work done in blocks); before, it called ``score_responses`` once per
respondent, which the service's ``POST /api/v1/score`` still does for one
pattern. This times both on the same simulated forms (each respondent
answers a random ``--items`` of the shipped bank's items at random, leaving
one in ten blank) and checks that they agree: the same levels and settled
flags, every number within 1e-9.

The figure is the last line printed, e.g.::

    score forms: 20000 respondents in 2.1 s together, 15.0 s one by one (7.1x)

Run: ``python -m benchmarks.score_forms [--respondents 20000] [--items 40]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def simulate(bank, respondents: int, items: int, seed: int = 0) -> list[dict[str, int]]:
    """Response patterns: ``items`` random items each, one in ten left blank."""
    rng = np.random.default_rng(seed)
    patterns = []
    for _ in range(respondents):
        chosen = rng.choice(bank.n_items, size=items, replace=False)
        answered = chosen[rng.random(items) >= 0.1]
        patterns.append(
            {
                bank.item_ids[i]: int(rng.integers(int(bank.n_categories[i])))
                for i in answered.tolist()
            }
        )
    return patterns


def _numbers(result) -> list[float]:
    out = []
    for part in (result.overall, *result.areas):
        out += [part.score, part.se, *part.interval, part.probability, *part.level_probabilities]
    return out


def _labels(result) -> list:
    return [(part.level, part.settled) for part in (result.overall, *result.areas)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=40, help="items on each form")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from nangluc.engine import CITIZEN_TEST, score_patterns, score_responses
    from nangluc.items import load_bank

    threadpool_limits(1)
    bank = load_bank().item_bank
    if not 1 <= args.items <= bank.n_items or args.respondents < 1:
        parser.error(f"--items must be 1..{bank.n_items} and --respondents >= 1")
    patterns = simulate(bank, args.respondents, args.items, args.seed)
    score_patterns(bank, patterns[:50], config=CITIZEN_TEST)  # warm up: tables, caches
    begin = time.perf_counter()
    together = score_patterns(bank, patterns, config=CITIZEN_TEST)
    together_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    alone = [score_responses(bank, pattern, config=CITIZEN_TEST) for pattern in patterns]
    alone_seconds = time.perf_counter() - begin
    worst = 0.0
    for a, b in zip(together, alone, strict=True):
        if _labels(a) != _labels(b):
            raise SystemExit("score_patterns and score_responses disagree on a level")
        worst = max(worst, float(np.max(np.abs(np.subtract(_numbers(a), _numbers(b))))))
    if worst > 1e-9:
        raise SystemExit(f"score_patterns and score_responses differ by {worst:.2e}")
    print(
        f"{args.respondents} respondents of {args.items} items, citizen test; largest difference {worst:.1e}"
    )
    print(
        f"score forms: {args.respondents} respondents in {together_seconds:.1f} s together, "
        f"{alone_seconds:.1f} s one by one ({alone_seconds / together_seconds:.1f}x)"
    )


if __name__ == "__main__":
    main()
