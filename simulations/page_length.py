"""How long the citizen test takes, for the citizen page (issue #11).

The page tells a citizen how many questions and minutes to expect and shows
how far along they are. Those figures come from simulating the shipped test,
not from a guess typed into the page: this module runs simulees of DESIGN's
population through the default citizen test on the shipped bank and writes
``service/static/test-length.json``, which the page reads.

* ``questions``: median and 90th percentile of the number of questions;
* ``minutes``: the same for the time, **estimated** from what each simulee
  was asked: reading the question and its options (the bank's Vietnamese
  text, words per minute as below) plus a fixed time to choose and confirm.
  The service records when every answer arrives, so these assumptions can be
  replaced by measured times once citizens take the test;
* ``progress``: how much of the test a citizen has done, estimated from what
  the server knows mid-test: the number ``k`` of questions answered and how
  sure the level already is (the state's ``level_probability``: the test
  stops when it reaches 0.9, so it says how close the end is). For each ``k``
  and band of that probability, the mean share ``k / L`` of simulees there
  (``L`` their final length); those means shrink towards the middle (a
  mean over short and long tests), so they are mapped back, monotonically,
  so that simulees who are a given share of the way through see about that
  share on average. ``progress_check`` records how close that holds at a
  quarter, a half and three quarters of the way.

Run ``python -m nangluc.simulations.page_length`` after changing the bank or
the citizen test (a test checks that the file names the shipped ones).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from nangluc.engine import CITIZEN_TEST, TestConfig, cat, irt
from nangluc.simulations.population import DEFAULT_CORRELATION, draw_population

#: Reading speed assumed for older citizens and those new to the internet (words a minute).
WORDS_PER_MINUTE = 120
#: Time to choose an option and press "Continue" (seconds a question).
SECONDS_TO_ANSWER = 5.0
OUTPUT = Path(__file__).resolve().parents[1] / "service" / "static" / "test-length.json"
#: Bands of the level's probability for the progress table (the test stops at 0.9).
PROBABILITY_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 1.0)
#: A cell of the progress table needs this many simulees; sparser ones use the row's mean.
MIN_CELL = 20


def _simulate(bank, config, truth, rng):
    """Final lengths and, per step, each simulee's level probability (N, max + 1)."""
    n = truth.shape[0]
    batch = cat.start(bank, config, n, rng)
    probability = np.full((n, cat.capacity(config) + 1), np.nan)
    probability[:, 0] = batch.level_probability
    step = 0
    while not batch.finished.all():
        item = np.where(batch.finished, 0, batch.next_item)
        responses = irt.simulate_responses(bank, truth[np.arange(n), bank.area[item]], item, rng)
        going = ~batch.finished
        batch = cat.advance(bank, config, batch, responses, rng)
        step += 1
        probability[going, step] = batch.level_probability[going]
    return batch, probability


def _band(probability: np.ndarray) -> np.ndarray:
    edges = np.asarray(PROBABILITY_EDGES[1:-1])
    return np.searchsorted(edges, np.nan_to_num(probability, nan=0.0), side="right")


def _words(text) -> int:
    vi = text.get("vi", "") if isinstance(text, dict) else str(text or "")
    return len(vi.split())


def length_figures(
    document, config: TestConfig = CITIZEN_TEST, *, examinees: int = 10_000, seed: int = 2026
) -> dict:
    """The page's length, time and progress figures from a simulation (see the module docstring)."""
    bank = document.item_bank
    truth = draw_population(
        examinees, bank.n_areas, DEFAULT_CORRELATION, np.random.default_rng(seed)
    )
    batch, level_probability = _simulate(bank, config, truth, np.random.default_rng(seed + 1))
    length = batch.length.astype(int)
    words = np.array(
        [_words(r.text) + sum(_words(o) for o in r.options) for r in document.items], dtype=float
    )
    per_item = words / WORDS_PER_MINUTE * 60.0 + SECONDS_TO_ANSWER
    given = batch.items >= 0
    seconds = np.where(given, per_item[np.where(given, batch.items, 0)], 0.0).sum(axis=1)
    minutes = seconds / 60.0
    longest = int(cat.capacity(config))
    # Every state a simulee passed through while still going: k answered, length L.
    who = np.repeat(np.arange(examinees), length)
    k = np.concatenate([np.arange(n) for n in length])
    done = k / length[who]
    band = _band(level_probability[who, k])
    n_bands = len(PROBABILITY_EDGES) - 1
    raw = np.full((longest, n_bands), np.nan)
    row_mean = np.zeros(longest)
    for answered in range(longest):
        here = k == answered
        row_mean[answered] = done[here].mean() if here.any() else 1.0
        for b in range(n_bands):
            cell = here & (band == b)
            raw[answered, b] = done[cell].mean() if cell.sum() >= MIN_CELL else row_mean[answered]
    estimate = raw[k, band]
    # Means shrink to the middle; map them back so that, per simulee, those a
    # given share of the way through see about that share (monotone map
    # fitted on tenths of the way, each simulee weighing the same).
    weight = 1.0 / length[who]
    tenth = np.minimum((done * 10).astype(int), 9)
    truth_at = np.array(
        [np.average(done[tenth == j], weights=weight[tenth == j]) for j in range(10)]
    )
    shown_at = np.array(
        [np.average(estimate[tenth == j], weights=weight[tenth == j]) for j in range(10)]
    )
    # Anchored at nothing done, shown as nothing done.
    shown_at = np.maximum.accumulate(np.concatenate([[0.0], shown_at]))
    truth_at = np.concatenate([[0.0], truth_at])
    table = np.round(np.minimum(np.interp(raw, shown_at, truth_at), 0.95), 3)
    start_of = np.concatenate([[0], np.cumsum(length)[:-1]])
    check = {}
    for share in (0.25, 0.5, 0.75):
        at = start_of + np.minimum(np.round(share * length).astype(int), length - 1)
        shown = table[k[at], band[at]]
        check[str(share)] = {
            "mean_shown": round(float(shown.mean()), 3),
            "p10_shown": round(float(np.percentile(shown, 10)), 3),
            "p90_shown": round(float(np.percentile(shown, 90)), 3),
        }
    return {
        "generated_by": "python -m nangluc.simulations.page_length",
        "bank_version": bank.version,
        "config": config.name,
        "examinees": examinees,
        "seed": seed,
        "questions": {
            "median": int(np.median(length)),
            "p90": int(np.ceil(np.percentile(length, 90))),
            "min": int(length.min()),
            "max": longest,
        },
        "minutes": {
            "median": int(math.ceil(np.median(minutes))),
            "p90": int(math.ceil(np.percentile(minutes, 90))),
        },
        "assumptions": {
            "reading_words_per_minute": WORDS_PER_MINUTE,
            "seconds_to_answer": SECONDS_TO_ANSWER,
            "population": f"multivariate normal, mean 0, SD 1, correlation {DEFAULT_CORRELATION}",
        },
        "progress": {
            "probability_edges": list(PROBABILITY_EDGES),
            "by_answered": table.tolist(),
        },
        "progress_check": check,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examinees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    from nangluc.items import load_bank

    figures = length_figures(load_bank(), examinees=args.examinees, seed=args.seed)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    q, m, c = figures["questions"], figures["minutes"], figures["progress_check"]
    print(
        f"wrote {args.out}: questions median {q['median']}, 90% {q['p90']}, max {q['max']}; "
        f"minutes median {m['median']}, 90% {m['p90']}; the bar shows on average "
        + ", ".join(f"{v['mean_shown']:.2f} at {s} of the way" for s, v in c.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
