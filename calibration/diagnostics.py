"""Item diagnostics a researcher expects from a calibration.

Findings are reported, never silently fixed: an item whose parameters the
data cannot identify keeps its live parameters (or is left out) and the
finding says so.

Codes: ``few_responses``, ``unused_category``, ``negative_discrimination``,
``low_discrimination``, ``at_bound``, ``misfit``, ``not_converged``,
``no_responses``.

Item fit is the RMSD between the item's "observed" pseudo-proportions on the
quadrature grid (expected counts from persons' posteriors, which works for
sparse adaptive data where sum scores do not exist) and the model curve,
weighted by the posterior distribution of the item's respondents (the
statistic used in PISA since 2015; flagged above 0.12). For graded items it
is computed on the expected item score divided by the maximum score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nangluc.calibration import kernels


@dataclass(frozen=True)
class Diagnostic:
    """One finding: ``item_id`` (None for the whole calibration), code, severity, message."""

    item_id: str | None
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return {
            "item_id": self.item_id,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"item {self.item_id}: " if self.item_id else ""
        return f"{self.severity}: {where}{self.message} [{self.code}]"


def item_fit_rmsd(
    family: str, params: np.ndarray, expected_counts: np.ndarray, theta: np.ndarray
) -> float:
    """RMSD item fit from expected counts (K x Q) at the estimates.

    Parameters
    ----------
    family : {"graded", "3pl"}
    params : ndarray
        Slope-intercept parameters of the item.
    expected_counts : ndarray, shape (K, Q)
        Posterior-expected responses per category and quadrature point.
    theta : ndarray, shape (Q,)

    Returns
    -------
    float
        Root mean squared difference between observed and model expected
        score (as a fraction of the maximum score), weighted over the grid.
    """
    prob, _ = kernels.probabilities_and_derivatives(family, params[None, :], theta)
    prob = prob[0]  # (Q, K)
    n_q = expected_counts.sum(axis=0)
    total = n_q.sum()
    if total <= 0:
        return float("nan")
    k = prob.shape[1]
    scores = np.arange(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(n_q > 0, (scores @ expected_counts) / n_q, 0.0)
    model = prob @ scores
    weight = n_q / total
    return float(np.sqrt(weight @ (observed - model) ** 2) / (k - 1))
