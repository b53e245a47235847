"""A simulation study: designs run on the same simulees, with reference points.

Every design is reported next to two references computed on the same
simulees (the first ``reference_examinees`` of them):

* the accuracy of answering every operational item of the bank (the best a
  test from this bank can do with the design's estimator);
* the same test with items chosen at the true theta under the same stopping
  rules (a reference for item selection, not a bound: under EAP it can be
  less accurate than the test itself; it used to be called the oracle CAT).

Randomness: the population, and for each design its CAT, its true-theta run, the
full-bank responses and any Sympson–Hetter calibration, each come from their
own stream of one seed. All designs share the streams (common random numbers),
so differences between designs are not noise of the draws.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.simulations.core import (
    FullBankResult,
    SimulationResult,
    check_true_theta,
    full_bank_scores,
    run,
)
from nangluc.simulations.designs import Design
from nangluc.simulations.exposure import sympson_hetter_control

#: Simulees used for the reference points (true-theta selection costs as much as the CAT).
DEFAULT_REFERENCE_EXAMINEES = 10_000
#: Simulees (resampled from the population) used to derive Sympson–Hetter parameters.
SYMPSON_HETTER_EXAMINEES = 10_000

# Stream numbers under the study seed.
_POPULATION, _CAT, _ORACLE, _FULL_BANK, _EXPOSURE = range(5)


def stream(seed: int, purpose: int) -> np.random.Generator:
    """The random stream for one purpose of a study with ``seed``."""
    return np.random.default_rng([int(seed), purpose])


def population_stream(seed: int) -> np.random.Generator:
    """The stream that draws a study's simulees."""
    return stream(seed, _POPULATION)


@dataclass(frozen=True, eq=False)
class DesignResult:
    """One design of a study: its simulation, references and JSON summary."""

    design: Design
    result: SimulationResult
    true_theta_selection: SimulationResult | None
    full_bank: FullBankResult | None
    seconds: float
    summary: dict = field(repr=False)


def evaluate(
    bank: ItemBank,
    design: Design,
    true_theta: np.ndarray,
    seed: int,
    *,
    references: bool = True,
    reference_examinees: int = DEFAULT_REFERENCE_EXAMINEES,
    workers: int = 1,
    progress: bool = False,
) -> DesignResult:
    """Simulate one design on ``true_theta`` and compute its reference points.

    Parameters
    ----------
    bank : ItemBank
    design : Design
    true_theta : ndarray, shape (N, n_areas)
    seed : int
        Study seed (see the module docstring for the streams).
    references : bool
        Also run the full-bank and true-theta-selection references.
    reference_examinees : int
        Simulees (the first ones) used for the references.
    workers : int
        Processes for the simulation chunks.
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    DesignResult
    """
    started = time.perf_counter()
    theta = check_true_theta(bank, true_theta)
    if (
        isinstance(reference_examinees, bool)
        or not isinstance(reference_examinees, int)
        or reference_examinees < 1
    ):
        raise ValueError(
            f"reference_examinees must be an integer >= 1, got {reference_examinees!r}"
        )
    config = design.config
    exposure_control = None
    if design.sympson_hetter_rate is not None:
        rng = stream(seed, _EXPOSURE)
        size = min(SYMPSON_HETTER_EXAMINEES, theta.shape[0] * 2)
        sample = theta[rng.integers(0, theta.shape[0], size)]
        calibration = sympson_hetter_control(
            bank, config, sample, rng, max_rate=design.sympson_hetter_rate, workers=workers
        )
        config = calibration.config
        exposure_control = {
            "rule": "sympson-hetter",
            "max_rate": calibration.max_rate,
            "calibration_examinees": int(size),
            "max_exposure_by_iteration": [round(x, 4) for x in calibration.max_exposure],
        }
    result = run(bank, config, theta, stream(seed, _CAT), progress=progress, workers=workers)
    summary = dict(result.summary)
    summary["name"] = design.name
    if exposure_control:
        summary["exposure_control"] = exposure_control
    selected_at_truth = full = None
    if references:
        m = min(reference_examinees, theta.shape[0])
        subset = theta[:m]
        selected_at_truth = run(
            bank,
            config,
            subset,
            stream(seed, _ORACLE),
            true_theta_selection=True,
            progress=progress,
            workers=workers,
        )
        full = full_bank_scores(bank, config, subset, stream(seed, _FULL_BANK), progress=progress)
        summary["references"] = references_summary(result, selected_at_truth, full, m)
    seconds = time.perf_counter() - started
    summary["total_seconds"] = round(seconds, 3)
    return DesignResult(design, result, selected_at_truth, full, seconds, summary)


def references_summary(
    result: SimulationResult, at_truth: SimulationResult, full: FullBankResult, m: int
) -> dict:
    """The reference points, and the design's figures on the same ``m`` simulees."""
    same_level = result.level[:m] == result.true_level[:m]
    mean_items = float(result.length[:m].mean())
    accuracy = float(same_level.mean())
    full_accuracy = full.summary["level_accuracy"]
    truth_items = at_truth.summary["mean_items"]
    return {
        "examinees": int(m),
        "full_bank": {
            k: full.summary[k] for k in ("items", "level_accuracy", "rmse", "bias", "theta_rmse")
        },
        "true_theta_selection": {
            "rule": "items chosen at the true theta, point information, no exposure control, "
            "same stopping; a reference for selection, not a bound",
            **{k: at_truth.summary[k] for k in ("mean_items", "rmse", "bias", "level_accuracy")},
        },
        "design_on_same_examinees": {
            "mean_items": round(mean_items, 4),
            "level_accuracy": round(accuracy, 4),
        },
        "length_vs_true_theta_selection": round(mean_items / truth_items, 4)
        if truth_items
        else None,
        "accuracy_vs_full_bank": round(accuracy / full_accuracy, 4) if full_accuracy else None,
    }


def run_designs(
    bank: ItemBank,
    designs: Sequence[Design],
    true_theta: np.ndarray,
    seed: int,
    *,
    references: bool = True,
    reference_examinees: int = DEFAULT_REFERENCE_EXAMINEES,
    workers: int = 1,
    progress: bool = False,
    dask: bool = False,
    scheduler: str | None = None,
    on_done: Callable[[DesignResult], object] | None = None,
) -> tuple[DesignResult, ...]:
    """Run several designs on the same simulees; in order of ``designs``.

    With ``dask`` each design is one task on a Dask cluster: a
    :class:`dask.distributed.LocalCluster` with one single-threaded worker
    per core, or the scheduler at ``scheduler`` (``tcp://host:8786``) when
    a grid outgrows one machine. Results are the same as without Dask.
    """
    if not designs:
        raise ValueError("no designs to run")
    names = [d.name for d in designs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"design names must be unique: {', '.join(duplicates)}")
    options = {"references": references, "reference_examinees": reference_examinees}
    if not dask:
        out = []
        for design in designs:
            done = evaluate(
                bank, design, true_theta, seed, workers=workers, progress=progress, **options
            )
            if on_done:
                on_done(done)
            out.append(done)
        return tuple(out)
    return _run_on_dask(
        bank, designs, true_theta, seed, options, workers, progress, scheduler, on_done
    )


def _run_on_dask(bank, designs, true_theta, seed, options, workers, progress, scheduler, on_done):
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        bank_future, theta_future = client.scatter([bank, np.asarray(true_theta)], broadcast=True)
        futures = {
            client.submit(
                evaluate, bank_future, design, theta_future, seed, pure=False, **options
            ): i
            for i, design in enumerate(designs)
        }
        results: list[DesignResult | None] = [None] * len(designs)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(designs), desc="designs", unit="design", leave=False)
        for future in as_completed(futures):
            done = future.result()
            results[futures[future]] = done
            if on_done:
                on_done(done)
            if bar:
                bar.update(1)
        if bar:
            bar.close()
        return tuple(results)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def with_name(design: Design, name: str) -> Design:
    """The same design under another name."""
    return dataclasses.replace(
        design, name=name, config=dataclasses.replace(design.config, name=name)
    )
