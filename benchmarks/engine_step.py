"""Latency of one adaptive-test step for one session (DESIGN §5: p99 < 1 ms).

A step is what the service does per answer: :func:`nangluc.engine.answer_item` on the
stored state — record the response, update the area estimate, check the
stopping rules, choose the next item — on the shipped 173-item bank under the
default citizen test. Simulated citizens answer; only the step is timed.

Then the same step with a shadow test (content constraints and enemy items
solved as a mixed-integer program by HiGHS before each item): every area at
least 3 of 20 items, at least 2 attitude items, and ten pairs of enemy items.

Beside it, the same work in catsim (maximum-information selection plus its
numerical-search estimator, one examinee) on the bank's dichotomous
projection, as the peer's per-step time.

Run: ``python -m benchmarks.engine_step [--tests N]``
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from nangluc.engine import CITIZEN_TEST, Constraint, ShadowTest, answer_item, irt, start_test
from nangluc.items import load_bank


def time_nangluc(bank, n_tests: int, rng: np.random.Generator, config=CITIZEN_TEST) -> np.ndarray:
    times = []
    for seed in range(n_tests):
        truth = rng.multivariate_normal(np.zeros(bank.n_areas), 0.7 + 0.3 * np.eye(bank.n_areas))
        state = start_test(bank, config, seed=seed)
        while not state.finished:
            item = bank.index(state.next_item)
            response = int(
                irt.simulate_responses(
                    bank, truth[bank.area[item : item + 1]], np.array([item]), rng
                )[0]
            )
            t0 = time.perf_counter()
            state = answer_item(bank, config, state, state.next_item, response)
            times.append(time.perf_counter() - t0)
    return np.array(times)


def time_catsim(bank, n_tests: int, rng: np.random.Generator, length: int = 20) -> np.ndarray:
    from catsim.estimation import NumericalSearchEstimator
    from catsim.item_bank import ItemBank as CatsimBank
    from catsim.selection import MaxInfoSelector

    # catsim models dichotomous items only: use each item's first boundary.
    params = np.column_stack(
        [bank.discrimination, bank.thresholds[:, 0], bank.guessing, np.ones(bank.n_items)]
    )
    cat_bank = CatsimBank(params)
    selector, estimator = MaxInfoSelector(), NumericalSearchEstimator()
    times = []
    for _ in range(n_tests):
        truth = rng.normal()
        administered, responses, theta = [], [], 0.0
        for _ in range(length):
            t0 = time.perf_counter()
            item = selector.select(
                item_bank=cat_bank, administered_items=administered, est_theta=theta
            )
            if administered:
                theta = estimator.estimate(
                    item_bank=cat_bank,
                    administered_items=administered,
                    response_vector=responses,
                    est_theta=theta,
                )
            times.append(time.perf_counter() - t0)
            p = params[item, 2] + (1 - params[item, 2]) / (
                1 + np.exp(-params[item, 0] * (truth - params[item, 1]))
            )
            administered.append(int(item))
            responses.append(bool(rng.random() < p))
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tests", type=int, default=400, help="simulated tests to time (default 400)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # One session's arrays are tiny: BLAS threads only add wake-up latency, so
    # (like each service worker) run with one BLAS thread.
    threadpool_limits(1)
    bank = load_bank().item_bank
    rng = np.random.default_rng(args.seed)
    time_nangluc(bank, 5, rng)  # warm the per-bank tables and caches
    gc.collect()
    ours = time_nangluc(bank, args.tests, rng) * 1e3
    print(
        f"bank {bank.version}: {bank.n_items} items, config {CITIZEN_TEST.name}, {args.tests} tests, {ours.size} steps"
    )
    print(
        f"nangluc answer_item: p50 {np.percentile(ours, 50):.3f} ms, p99 {np.percentile(ours, 99):.3f} ms, max {ours.max():.3f} ms"
    )
    shadow = replace(
        CITIZEN_TEST,
        name="citizen-shadow",
        shadow=ShadowTest(
            length=20,
            constraints=(
                *(Constraint("area", code, minimum=3) for code in bank.area_codes),
                Constraint("kind", "attitude", minimum=2),
            ),
            enemies=tuple((bank.item_ids[i], bank.item_ids[i + 1]) for i in range(0, 160, 16)),
        ),
    )
    time_nangluc(bank, 2, rng, shadow)
    constrained = time_nangluc(bank, max(10, args.tests // 4), rng, shadow) * 1e3
    print(
        f"with a shadow test (HiGHS): p50 {np.percentile(constrained, 50):.3f} ms, "
        f"p99 {np.percentile(constrained, 99):.3f} ms, max {constrained.max():.3f} ms"
    )
    try:
        peer = time_catsim(bank, max(10, args.tests // 10), rng) * 1e3
    except ImportError:
        print("catsim not installed: no peer figure (pip install -e '.[bench]')")
    else:
        print(
            f"catsim select+estimate:  p50 {np.percentile(peer, 50):.3f} ms, p99 {np.percentile(peer, 99):.3f} ms "
            f"(median ratio {np.percentile(peer, 50) / np.percentile(ours, 50):.1f}x)"
        )
    print(f"engine step p99 {np.percentile(ours, 99):.2f} ms")


if __name__ == "__main__":
    main()
