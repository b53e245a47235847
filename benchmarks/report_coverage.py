"""Do the planner reports' 95% intervals cover the truth? (DESIGN §5, "Planner reports").

Groups ("wards") are drawn from populations unlike the test's prior: their
mean ability is one SD below it on average (each ward's mean uniform in
[-1.5, -0.5], SD in [0.7, 1.2]; the prior is mean 0, SD 1), and their sizes
range from 50 to 3,000 tests. Every simulee takes the real adaptive test (the
engine's simulator, the default citizen test on the shipped bank). Each
ward's release is built as the service builds it: one histogram of the
estimated overall score and one per area, with the ward table's discrete
Laplace noise at the default budget (OpenDP). The report's statistics
(:mod:`nangluc.service.statistics`) then estimate each level's share of the
overall score and of every area score, and the mean scores, with a measurement
model tabulated by simulating the test on other simulees.

The truth is each ward's *population* share (400,000 draws of its
population through the bank's score functions): the intervals are meant to
cover what the ward's people are like, not only the few who were tested.

Printed: coverage of the 95% intervals for the overall and area levels and
the means, by ward size; and how far two naive readings are from the truth
without any noise at all: counting each test's point classification (as the
old report did) and averaging each test's posterior level probabilities.

Run: ``python -m benchmarks.report_coverage [--wards N] [--epsilon E] [--seed S] [--bank FILE]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nangluc.engine import CITIZEN_TEST
from nangluc.engine.bank import ItemBank
from nangluc.engine.scoring import area_scores
from nangluc.items import load_bank
from nangluc.service import privacy, statistics
from nangluc.simulations import draw_population, run
from nangluc.simulations.measurement import MeasurementModel, measurement_model, observed_scores

Noise = Callable[[np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class CoverageStudy:
    """Per ward and measure: truth, estimates and intervals (arrays, ward x level)."""

    sizes: np.ndarray  # (W,)
    measures: tuple[str, ...]  # "overall", then area codes
    truth: np.ndarray  # (W, measures, levels) population shares
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mean_truth: np.ndarray  # (W, measures)
    mean_low: np.ndarray
    mean_high: np.ndarray
    reported: np.ndarray  # (W, measures) bool: precise enough to be shown
    naive: np.ndarray  # (W, levels) point classifications of the overall score, no noise
    posterior: np.ndarray  # (W, levels) mean posterior level probabilities, no noise
    finite_truth: np.ndarray  # (W, levels) the tested people's own overall shares

    @property
    def covered(self) -> np.ndarray:
        return (self.truth >= self.low - 1e-12) & (self.truth <= self.high + 1e-12)

    @property
    def mean_covered(self) -> np.ndarray:
        return (self.mean_truth >= self.mean_low - 1e-9) & (
            self.mean_truth <= self.mean_high + 1e-9
        )


def numpy_noise(rng: np.random.Generator) -> Noise:
    """Discrete Laplace noise from a seeded generator (tests): the same law as OpenDP's."""

    def noise(counts: np.ndarray, scale: float) -> np.ndarray:
        p = 1.0 - np.exp(-1.0 / scale)
        return counts + rng.geometric(p, counts.shape) - rng.geometric(p, counts.shape)

    return noise


def opendp_noise(counts: np.ndarray, scale: float) -> np.ndarray:
    return privacy.add_noise(counts, scale)


def study(
    bank: ItemBank,
    model: MeasurementModel,
    *,
    wards: int,
    epsilon: float,
    rng: np.random.Generator,
    noise: Noise = opendp_noise,
    sizes: tuple[int, int] = (50, 3000),
    mean_range: tuple[float, float] = (-1.5, -0.5),
    sd_range: tuple[float, float] = (0.7, 1.2),
    truth_draws: int = 400_000,
) -> CoverageStudy:
    """Simulate ``wards`` wards, release them with noise and estimate their levels."""
    measures = ("overall", *model.areas)
    area_index = [bank.area_codes.index(code) for code in model.areas]
    table = privacy.table_noise("ward", epsilon, len(model.areas))
    levels = bank.scale.levels
    level_index = bank.scale.index
    n_levels = len(levels)
    lowers = [lv.lower for lv in levels]
    uppers = [lv.upper if i < n_levels - 1 else np.inf for i, lv in enumerate(levels)]
    size = np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1]), wards)).astype(int)
    truth = np.zeros((wards, len(measures), n_levels))
    mean_truth = np.zeros((wards, len(measures)))
    counts = np.zeros((len(measures), wards, statistics.OBSERVED_BINS))
    naive = np.zeros((wards, n_levels))
    posterior = np.zeros((wards, n_levels))
    finite = np.zeros((wards, n_levels))
    for w in range(wards):
        mean, sd = rng.uniform(*mean_range), rng.uniform(*sd_range)
        theta = draw_population(int(size[w]), bank.n_areas, 0.7, rng, mean=mean, sd=sd)
        result = run(bank, CITIZEN_TEST, theta, rng)
        overall, areas = observed_scores(bank, result.items, result.responses)
        estimated = [overall] + [areas[:, a] for a in area_index]
        for m, scores in enumerate(estimated):
            counts[m, w] = np.bincount(
                statistics.observed_bin(scores), minlength=statistics.OBSERVED_BINS
            )
        big = area_scores(
            bank, draw_population(truth_draws, bank.n_areas, 0.7, rng, mean=mean, sd=sd)
        )
        population = [big @ _weights(bank)] + [big[:, a] for a in area_index]
        for m, scores in enumerate(population):
            truth[w, m] = np.bincount(level_index(scores), minlength=n_levels) / scores.size
            mean_truth[w, m] = scores.mean()
        point = result.scores.overall_score
        naive[w] = np.bincount(level_index(point), minlength=n_levels) / point.size
        posterior[w] = result.level_probabilities.mean(axis=0)
        finite[w] = (
            np.bincount(level_index(result.true_scores.overall_score), minlength=n_levels)
            / point.size
        )
    estimate = np.zeros_like(truth)
    low, high = np.zeros_like(truth), np.zeros_like(truth)
    mean_low, mean_high = np.zeros_like(mean_truth), np.zeros_like(mean_truth)
    reported = np.zeros(mean_truth.shape, dtype=bool)
    anchor = None
    for m, measure in enumerate(measures):
        hist_noise = table.overall if measure == "overall" else table.area
        noisy = noise(counts[m].astype(np.int64), hist_noise.scale)
        fit = statistics.fit_matched(
            noisy, [model.kernel(measure)], hist_noise.variance, anchor=anchor
        )
        for k in range(n_levels):
            share = statistics.share_between(fit, lowers[k], uppers[k])
            estimate[:, m, k], low[:, m, k], high[:, m, k] = share.value, share.low, share.high
        reported[:, m] = statistics.precise_enough(noisy, hist_noise.variance)
        mean = statistics.mean_score(fit)
        mean_low[:, m], mean_high[:, m] = mean.low, mean.high
        if measure == "overall":
            anchor = mean.value  # the areas' kernels are read at the ward's level
    return CoverageStudy(
        sizes=size,
        measures=measures,
        truth=truth,
        estimate=estimate,
        low=low,
        high=high,
        mean_truth=mean_truth,
        mean_low=mean_low,
        mean_high=mean_high,
        reported=reported,
        naive=naive,
        posterior=posterior,
        finite_truth=finite,
    )


def _weights(bank: ItemBank) -> np.ndarray:
    from nangluc.engine.tables import bank_tables

    return bank_tables(bank).scored_area_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default=None, help="bank file (default: the shipped bank)")
    parser.add_argument("--wards", type=int, default=60, help="simulated wards (default 60)")
    parser.add_argument(
        "--epsilon", type=float, default=privacy.DEFAULT_EPSILON, help="privacy budget per test"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--model-simulees", type=int, default=40_000, help="simulees of the measurement model"
    )
    args = parser.parse_args()
    bank = load_bank(args.bank).item_bank
    started = time.perf_counter()
    model = measurement_model(bank, CITIZEN_TEST, simulees=args.model_simulees, seed=args.seed + 1)
    print(f"measurement model: {model.simulees:,} simulees, {time.perf_counter() - started:.1f} s")
    rng = np.random.default_rng(args.seed)
    result = study(bank, model, wards=args.wards, epsilon=args.epsilon, rng=rng)
    print(
        f"{args.wards} wards, {int(result.sizes.sum()):,} simulated tests, ε = {args.epsilon} per "
        f"test (ward table), {time.perf_counter() - started:.1f} s in all"
    )
    covered = result.covered
    shown = np.broadcast_to(result.reported[:, :, None], covered.shape)
    print(
        "\ncoverage of the 95% intervals among the figures shown (share of wards x levels whose "
        "interval holds the truth); figures withheld as too noisy in brackets"
    )
    for m, measure in enumerate(result.measures):
        name = "overall score" if measure == "overall" else f"area {measure}"
        rows = result.reported[:, m]
        level_cov = covered[rows, m].mean() if rows.any() else float("nan")
        mean_cov = result.mean_covered[rows, m].mean() if rows.any() else float("nan")
        print(
            f"  {name:14s} levels {level_cov:6.1%}   mean score {mean_cov:6.1%}   "
            f"[{1 - rows.mean():5.1%} of wards withheld]"
        )
    edges = [0, 150, 500, 1500, 10**9]
    print("  by ward size (all measures shown):")
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (result.sizes >= lo) & (result.sizes < hi)
        if inside.any():
            label = f"{lo}-{hi - 1}" if hi < 10**9 else f">= {lo}"
            part = shown[inside]
            print(
                f"    {label:>10s} tests: {covered[inside][part].mean():6.1%} "
                f"({int(inside.sum())} wards, {part.mean():.0%} of their figures shown)"
            )
    print(f"  all figures, withheld ones included: {covered.mean():.1%}")
    truth = result.truth[:, 0]
    model_error = np.abs(result.estimate[:, 0] - truth)
    naive_error = np.abs(result.naive - truth)
    posterior_error = np.abs(result.posterior - truth)
    n = result.sizes[:, None]
    naive_se = np.sqrt(result.naive * (1 - result.naive) / n)
    naive_covered = naive_error <= 1.959964 * naive_se + 1e-12
    print("\noverall level shares against the population, mean absolute error (points of share)")
    print(f"  these reports (with privacy noise)           {100 * model_error.mean():5.2f}")
    print(f"  counting point classifications (no noise)    {100 * naive_error.mean():5.2f}")
    print(f"  averaging posterior probabilities (no noise) {100 * posterior_error.mean():5.2f}")
    large = result.sizes >= 1500
    if large.any():
        print(
            f"  wards of >= 1,500 tests: these reports {100 * model_error[large].mean():.2f}, "
            f"counting {100 * naive_error[large].mean():.2f}, "
            f"posteriors {100 * posterior_error[large].mean():.2f}"
        )
    bias_naive = (result.naive - truth).mean(axis=0)
    print(
        "  mean signed error of counting, by level: "
        + ", ".join(
            f"{lv.name_vi} {100 * b:+.2f}"
            for lv, b in zip(bank.scale.levels, bias_naive, strict=True)
        )
    )
    print(
        f"  binomial 95% intervals around the counted shares cover the truth {naive_covered.mean():.1%} "
        f"of the time ({naive_covered[large].mean():.1%} for wards of >= 1,500 tests)"
        if large.any()
        else f"  binomial 95% intervals around the counted shares cover the truth "
        f"{naive_covered.mean():.1%} of the time"
    )
    print(
        f"\ncoverage: {covered[shown].mean():.1%} of {int(shown.sum()):,} wards x measures x levels "
        f"shown ({1 - shown.mean():.0%} withheld as too noisy); overall score levels "
        f"{covered[:, 0][shown[:, 0]].mean():.1%}; goal >= 93%"
    )


if __name__ == "__main__":
    main()
