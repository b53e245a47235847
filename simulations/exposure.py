"""Sympson–Hetter control parameters, derived by simulation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.config import TestConfig
from nangluc.engine.selection import (
    ConditionalSympsonHetter,
    SympsonHetter,
    update_sympson_hetter,
)
from nangluc.simulations.core import check_true_theta, run


@dataclass(frozen=True)
class SympsonHetterCalibration:
    """Result of :func:`sympson_hetter_control`.

    Attributes
    ----------
    control : tuple of float
        Probability that each item is given when selected.
    max_rate : float
        The target exposure rate.
    max_exposure : tuple of float
        Highest item exposure rate observed in each iteration (the first is
        without control); the last is with the final ``control``.
    config : TestConfig
        The input config with ``SympsonHetter(control)`` as exposure control.
    """

    control: tuple[float, ...]
    max_rate: float
    max_exposure: tuple[float, ...]
    config: TestConfig


def sympson_hetter_control(
    bank: ItemBank,
    config: TestConfig,
    true_theta: np.ndarray,
    rng: np.random.Generator,
    *,
    max_rate: float,
    iterations: int = 12,
    margin: float = 2.0,
    workers: int = 1,
) -> SympsonHetterCalibration:
    """Derive Sympson–Hetter control parameters by iterated simulation.

    Starts with every item always given when selected, simulates
    ``true_theta``, and updates the control parameters with
    :func:`nangluc.engine.selection.update_sympson_hetter` from the observed
    exposure rates, ``iterations`` times; a final run measures the result.
    The simulees should stand for the target population; :func:`nangluc.simulations.evaluate`
    resamples them from the study's simulees (with fresh responses).

    Parameters
    ----------
    bank, config, true_theta, rng
        As for :func:`nangluc.simulations.run`; ``config``'s own exposure control is
        replaced (a randomesque ``k`` of an existing Sympson–Hetter rule is kept).
    max_rate : float
        Target highest exposure rate in (0, 1].
    iterations : int
        Update steps (>= 1).
    margin : float
        The iterations aim at ``max_rate - margin * sqrt(max_rate (1 - max_rate) / N)``
        (N simulees): the sampling noise of the observed rates, so that the
        highest exposure on new test takers stays at or below ``max_rate``
        plus about 0.01 (measured in ``tests/test_simulations_exposure.py``).
    workers : int
        Processes for each simulation.

    Returns
    -------
    SympsonHetterCalibration
    """
    if not (isinstance(max_rate, int | float) and 0 < max_rate <= 1):
        raise ValueError(f"Sympson–Hetter max_rate must lie in (0, 1], got {max_rate!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    theta = check_true_theta(bank, true_theta)
    k = config.exposure.randomesque_k if isinstance(config.exposure, SympsonHetter) else 1
    # Each iteration sees exposure rates with sampling noise (SD sqrt(r (1 - r) / N)),
    # and the highest of many items near the cap sits about two SDs above it:
    # aim that far below the target so the cap holds on new test takers.
    aim = max(max_rate - margin * math.sqrt(max_rate * (1 - max_rate) / theta.shape[0]), 1e-3)
    control = np.ones(bank.n_items)
    observed = []
    current = config
    for step in range(iterations + 1):
        current = dataclasses.replace(
            config, exposure=SympsonHetter(control=tuple(control.tolist()), randomesque_k=k)
        )
        result = run(bank, current, theta, rng, workers=workers)
        observed.append(float(result.exposure[bank.operational].max()))
        if step < iterations:
            control = update_sympson_hetter(control, result.exposure, aim)
            # Items never administered keep full control (no evidence against them).
            control[~bank.operational] = 1.0
    return SympsonHetterCalibration(
        control=tuple(float(x) for x in control),
        max_rate=float(max_rate),
        max_exposure=tuple(observed),
        config=current,
    )


@dataclass(frozen=True)
class ConditionalSympsonHetterCalibration:
    """Result of :func:`conditional_sympson_hetter_control`.

    ``control`` has one row per ability stratum; ``max_exposure`` is, per
    iteration, the highest exposure rate of any item within any stratum.
    """

    control: tuple[tuple[float, ...], ...]
    cuts: tuple[float, ...]
    max_rate: float
    max_exposure: tuple[float, ...]
    config: TestConfig


def stratum_exposure(
    result, bank: ItemBank, stratum: np.ndarray, n_strata: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exposure rate of every item within each stratum (S, I) and the strata's sizes (S,)."""
    given = result.items >= 0
    rows = np.nonzero(given)[0]
    counts = np.zeros((n_strata, bank.n_items))
    np.add.at(counts, (stratum[rows], result.items[given]), 1.0)
    sizes = np.bincount(stratum, minlength=n_strata)
    return counts / np.maximum(sizes, 1)[:, None], sizes


def conditional_sympson_hetter_control(
    bank: ItemBank,
    config: TestConfig,
    true_theta: np.ndarray,
    rng: np.random.Generator,
    *,
    max_rate: float,
    cuts: tuple[float, ...] = (-1.0, 0.0, 1.0),
    iterations: int = 12,
    margin: float = 2.0,
    workers: int = 1,
) -> ConditionalSympsonHetterCalibration:
    """Derive conditional Sympson–Hetter control parameters by iterated simulation.

    As :func:`sympson_hetter_control`, with the simulees grouped by their true
    overall ability (mean of the area thetas) at ``cuts``; each stratum's
    control parameters are updated from the exposure rates within it, aiming
    below ``max_rate`` by ``margin`` SDs of that stratum's sampling noise.
    Strata with fewer than 100 simulees keep full control.
    """
    if not (isinstance(max_rate, int | float) and 0 < max_rate <= 1):
        raise ValueError(f"Sympson–Hetter max_rate must lie in (0, 1], got {max_rate!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    theta = check_true_theta(bank, true_theta)
    rule = ConditionalSympsonHetter(cuts=cuts)
    stratum = rule.stratum(theta)
    n_strata = len(rule.cuts) + 1
    sizes = np.bincount(stratum, minlength=n_strata)
    aim = np.maximum(
        max_rate - margin * np.sqrt(max_rate * (1 - max_rate) / np.maximum(sizes, 1)), 1e-3
    )
    control = np.ones((n_strata, bank.n_items))
    observed = []
    current = config
    for step in range(iterations + 1):
        current = dataclasses.replace(
            config,
            exposure=ConditionalSympsonHetter(cuts=rule.cuts, control=tuple(map(tuple, control))),
        )
        result = run(bank, current, theta, rng, workers=workers)
        rates, _ = stratum_exposure(result, bank, stratum, n_strata)
        observed.append(float(rates[sizes >= 100][:, bank.operational].max(initial=0.0)))
        if step < iterations:
            for s in range(n_strata):
                if sizes[s] >= 100:
                    control[s] = update_sympson_hetter(control[s], rates[s], float(aim[s]))
            control[:, ~bank.operational] = 1.0
    return ConditionalSympsonHetterCalibration(
        control=tuple(tuple(float(x) for x in row) for row in control),
        cuts=rule.cuts,
        max_rate=float(max_rate),
        max_exposure=tuple(observed),
        config=current,
    )
