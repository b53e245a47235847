"""Vectorized CAT simulations: accuracy, length and exposure of a test design.

Thousands of simulees advance in lockstep through :func:`engine.cat.start` and
:func:`engine.cat.advance`, the same step functions the service uses.

* :func:`draw_population` / :func:`read_population`: true abilities per area;
* :func:`run`: one design on those simulees -> :class:`SimulationResult`;
* :func:`full_bank_scores`: the accuracy of answering every item (reference);
* ``run(..., oracle=True)``: an oracle CAT choosing items with the true theta.
"""

from simulations.banks import synthetic_bank
from simulations.core import (
    DEFAULT_CHUNK_SIZE,
    FullBankResult,
    SimulationResult,
    check_true_theta,
    full_bank_scores,
    oracle_config,
    run,
    summarize,
    true_levels,
)
from simulations.population import DEFAULT_CORRELATION, draw_population, read_population

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CORRELATION",
    "FullBankResult",
    "SimulationResult",
    "check_true_theta",
    "draw_population",
    "full_bank_scores",
    "oracle_config",
    "read_population",
    "run",
    "summarize",
    "synthetic_bank",
    "true_levels",
]
