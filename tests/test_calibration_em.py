"""The EM building blocks: kernel derivatives, the E-step, the quadrature rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nangluc.calibration import kernels, mml
from nangluc.engine import irt


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(0.3, 3.0),
    d=st.lists(st.floats(-3, 3), min_size=1, max_size=4, unique=True),
    gamma=st.floats(-3, 0),
    three=st.booleans(),
)
def test_kernel_derivatives_match_finite_differences(a, d, gamma, three):
    theta = np.linspace(-4, 4, 9)
    if three:
        family, params = kernels.THREEPL, np.array([[a, d[0], gamma]])
    else:
        family, params = kernels.GRADED, np.array([[a, *sorted(d, reverse=True)]])
    prob, dprob = kernels.probabilities_and_derivatives(family, params, theta)
    np.testing.assert_allclose(prob.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(prob >= 0)
    for j in range(params.shape[1]):
        step = np.zeros_like(params)
        step[0, j] = 1e-6
        up, _ = kernels.probabilities_and_derivatives(family, params + step, theta)
        down, _ = kernels.probabilities_and_derivatives(family, params - step, theta)
        np.testing.assert_allclose(dprob[..., j], (up - down) / 2e-6, atol=1e-6)


def test_kernels_agree_with_the_engine_parameterisation():
    theta = np.linspace(-3, 3, 7)
    a, b, c = np.array([1.3, 0.8]), np.array([[0.4], [-0.2]]), np.array([0.2, 0.1])
    ours, _ = kernels.probabilities_and_derivatives(
        kernels.THREEPL, kernels.from_irt(kernels.THREEPL, a, b, c), theta
    )
    engine = irt.category_probabilities(theta, a, b, c)
    np.testing.assert_allclose(ours, engine.transpose(1, 0, 2), atol=1e-10)
    back = kernels.to_irt(kernels.THREEPL, kernels.from_irt(kernels.THREEPL, a, b, c))
    np.testing.assert_allclose(back["a"], a)
    np.testing.assert_allclose(back["b"], b)
    np.testing.assert_allclose(back["c"], c)


def test_e_step_survives_long_unlikely_patterns():
    # one unit answers 80 easy items all wrong: its likelihood underflows float32
    n = 80
    items = mml.ScaleItems(
        family=(kernels.GRADED,) * n,
        n_categories=np.full(n, 2),
        fixed=np.zeros(n, dtype=bool),
        start=[np.array([2.5, 4.0])] * n,
    )
    unit = np.concatenate([np.zeros(n, int), np.ones(n, int)])
    item = np.concatenate([np.arange(n), np.arange(n)])
    response = np.concatenate([np.zeros(n, int), np.ones(n, int)])
    scale = mml._Scale(unit, item, response, items)
    theta = mml.quadrature(21, 5.0)
    table = scale.log_table(items.start, theta)
    log_prior = -0.5 * theta**2
    log_prior -= np.log(np.exp(log_prior).sum())
    like, total, loglik, counts, mass = scale.e_step(table, log_prior)
    assert np.isfinite(loglik) and np.all(np.isfinite(counts)) and np.all(total > 0)
    # posterior mass of each unit sums to one
    np.testing.assert_allclose(mass.sum(), 2.0, rtol=1e-5)
    exact = np.log(np.exp(table[scale.offsets[:n]].sum(axis=0) + log_prior).sum())
    assert (
        abs(
            loglik
            - exact
            - np.log(np.exp(table[scale.offsets[:n] + 1].sum(axis=0) + log_prior).sum())
        )
        < 1e-3
    )


def test_grid_gets_finer_for_longer_patterns():
    short = mml.grid_for(np.full(100, 4), estimate_latent=False)
    long = mml.grid_for(np.full(100, 40), estimate_latent=False)
    assert short[0] == -5 and short[-1] == 5 and long.size > short.size
    assert np.diff(long).max() < 1.4 / np.sqrt(1 + 0.5 * 40) + 1e-9
    assert mml.grid_for(np.full(10, 4), estimate_latent=True)[-1] == 6
    assert mml.grid_for(np.full(10, 4), estimate_latent=False, n_points=11).size == 11
