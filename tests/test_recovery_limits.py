"""The information matrices behind benchmarks.recovery_limits' Cramér–Rao bound."""

import numpy as np
import pytest
from scipy.special import expit

from benchmarks.recovery_limits import information_3pl, information_grm


def _two_pl(a: float, b: float) -> np.ndarray:
    """Fisher information of (a, b) for a 2PL item, theta ~ N(0, 1), by brute-force integration."""
    x = np.linspace(-9, 9, 20001)
    density = np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
    p = expit(a * (x - b))
    gradient = np.stack([p * (1 - p) * (x - b), -p * (1 - p) * a])
    integrand = np.einsum("iq,jq,q->ijq", gradient, gradient, density / (p * (1 - p)))
    return np.trapezoid(integrand, x, axis=-1)


@pytest.mark.parametrize(("a", "b"), [(1.0, 0.0), (1.7, -2.0), (0.6, 1.5)])
def test_graded_item_with_two_categories_is_a_2pl(a, b):
    np.testing.assert_allclose(
        information_grm(a, np.array([b])), _two_pl(a, b), rtol=1e-6, atol=1e-12
    )


@pytest.mark.parametrize(("a", "b"), [(1.2, -1.0), (2.0, 0.5)])
def test_3pl_without_guessing_is_a_2pl(a, b):
    np.testing.assert_allclose(
        information_3pl(a, b, 0.0, free_c=False), _two_pl(a, b), rtol=1e-6, atol=1e-12
    )


def test_guessing_costs_information_about_an_easy_item():
    """A free c makes b of an easy 3PL item far less certain than a known c (the bound's point)."""
    free = np.linalg.inv(information_3pl(1.5, -2.0, 0.25, free_c=True))
    known = np.linalg.inv(information_3pl(1.5, -2.0, 0.25, free_c=False))
    assert free[1, 1] > 4 * known[1, 1]
