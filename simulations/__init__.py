"""Vectorized CAT simulations: accuracy, length and exposure of a test design.

Thousands of simulees advance in lockstep through :func:`nangluc.engine.cat.start` and
:func:`nangluc.engine.cat.advance`, the same step functions the service uses.

* :func:`draw_population` / :func:`read_population`: true abilities per area;
* :func:`run`: one design on those simulees -> :class:`SimulationResult`;
* :func:`full_bank_scores`: the accuracy of answering every item (reference);
* ``run(..., true_theta_selection=True)``: items chosen at the true theta (a
  reference for selection, not a bound);
* :func:`build_design` / :func:`read_grid`: test designs from flags or a grid
  file; :func:`evaluate` / :func:`run_designs`: designs with their reference
  points on the same simulees (optionally on Dask);
* :func:`sympson_hetter_control`: exposure-control parameters by simulation;
* :func:`replay`: recorded answers replayed through a test (post-hoc
  simulation), against each respondent's full-pattern score;
* :func:`nangluc.simulations.report.write_report`: Markdown report with PNG plots.
"""

from nangluc.simulations.banks import synthetic_bank
from nangluc.simulations.core import (
    DEFAULT_CHUNK_SIZE,
    FullBankResult,
    SimulationResult,
    check_true_theta,
    full_bank_scores,
    run,
    summarize,
    true_levels,
    true_theta_selection_config,
)
from nangluc.simulations.designs import Design, build_design, read_grid
from nangluc.simulations.exposure import SympsonHetterCalibration, sympson_hetter_control
from nangluc.simulations.population import DEFAULT_CORRELATION, draw_population, read_population
from nangluc.simulations.replay import ReplayResult, recorded_matrix, replay
from nangluc.simulations.study import DesignResult, evaluate, run_designs

__all__ = [
    "Design",
    "ReplayResult",
    "recorded_matrix",
    "replay",
    "DesignResult",
    "SympsonHetterCalibration",
    "build_design",
    "evaluate",
    "read_grid",
    "run_designs",
    "sympson_hetter_control",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CORRELATION",
    "FullBankResult",
    "SimulationResult",
    "check_true_theta",
    "draw_population",
    "full_bank_scores",
    "true_theta_selection_config",
    "read_population",
    "run",
    "summarize",
    "synthetic_bank",
    "true_levels",
]
