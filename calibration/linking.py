"""Linking a new calibration to the live scale through common (anchor) items.

A separate calibration fixes its latent scale at N(0, 1); the live bank's
scale is whatever earlier calibrations made it. The two differ by a linear
transformation ``theta_live = A * theta_new + B``, under which item
parameters become ``a / A``, ``A * b + B`` and ``c`` (unchanged). The
characteristic-curve methods find (A, B) from the anchors:

* Stocking & Lord (1983): least squares between the anchors' test
  characteristic curves (sum of expected scores);
* Haebara (1980): least squares between every anchor's category
  probabilities, summed over items.

Both are evaluated on a grid of live-scale abilities weighted by N(0, 1)
(the "old-scale" criterion of Kolen & Brennan 2014, §6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from nangluc.engine import irt

METHODS = ("stocking-lord", "haebara")


@dataclass(frozen=True)
class Linking:
    """Linking constants of one area: ``theta_live = A * theta_new + B``."""

    area: str
    method: str
    A: float
    B: float
    anchors: tuple[str, ...]
    criterion: float

    def to_dict(self) -> dict:
        return {
            "area": self.area,
            "method": self.method,
            "A": self.A,
            "B": self.B,
            "anchors": list(self.anchors),
            "criterion": self.criterion,
        }


def _grid() -> tuple[np.ndarray, np.ndarray]:
    theta = np.linspace(-4.0, 4.0, 41)
    weight = np.exp(-0.5 * theta**2)
    return theta, weight / weight.sum()


def transform(
    a: np.ndarray, thresholds: np.ndarray, A: float, B: float
) -> tuple[np.ndarray, np.ndarray]:
    """Item parameters on the live scale (``+inf`` padding is kept)."""
    return np.asarray(a) / A, A * np.asarray(thresholds) + B


def link(
    area: str,
    anchors: tuple[str, ...],
    new: tuple[np.ndarray, np.ndarray, np.ndarray],
    live: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    method: str = "stocking-lord",
    partial_credit: tuple[np.ndarray, np.ndarray] | None = None,
) -> Linking:
    """Find the linking constants from anchor parameters.

    Parameters
    ----------
    area : str
        Area code (reported).
    anchors : tuple of str
        Anchor item ids (reported).
    new, live : tuple of arrays
        ``(a, thresholds, c)`` of the anchors in the new calibration and in
        the live bank; ``thresholds`` is (n, K-1), ``+inf`` padded.
    method : {"stocking-lord", "haebara"}
    partial_credit : (ndarray, ndarray) of bool, optional
        Which anchors are GPCM/PCM items in the new calibration and in the
        live bank (None: none is).

    Returns
    -------
    Linking
    """
    if method not in METHODS:
        raise ValueError(
            f"unknown linking method {method!r} (expected one of {', '.join(METHODS)})"
        )
    if not anchors:
        raise ValueError(f"area {area}: no anchor items to link with")
    theta, weight = _grid()
    a_new, t_new, c_new = (np.asarray(x, dtype=float) for x in new)
    a_live, t_live, c_live = (np.asarray(x, dtype=float) for x in live)
    pc_new, pc_live = partial_credit if partial_credit is not None else (None, None)
    if method == "stocking-lord":
        target = irt.expected_score(theta, a_live, t_live, c_live, pc_live).sum(axis=1)

        def loss(x: np.ndarray) -> float:
            a, t = transform(a_new, t_new, x[0], x[1])
            return float(
                weight @ (target - irt.expected_score(theta, a, t, c_new, pc_new).sum(axis=1)) ** 2
            )

    else:
        target = irt.category_probabilities(theta, a_live, t_live, c_live, pc_live)

        def loss(x: np.ndarray) -> float:
            a, t = transform(a_new, t_new, x[0], x[1])
            diff = target - irt.category_probabilities(theta, a, t, c_new, pc_new)
            return float(weight @ (diff**2).sum(axis=(1, 2)))

    # mean-sigma constants of the anchors' difficulties as a starting point
    b_new, b_live = _locations(t_new), _locations(t_live)
    sd_new = b_new.std()
    start_A = b_live.std() / sd_new if b_new.size > 1 and sd_new > 1e-6 else 1.0
    start_A = float(np.clip(start_A, 0.2, 5.0))
    start = np.array([start_A, b_live.mean() - start_A * b_new.mean()])
    result = minimize(
        loss, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000}
    )
    A, B = float(result.x[0]), float(result.x[1])
    if not (np.isfinite(A) and A > 0):
        raise ValueError(f"area {area}: linking failed (A = {A}); check the anchor items")
    return Linking(
        area=area, method=method, A=A, B=B, anchors=tuple(anchors), criterion=float(result.fun)
    )


def _locations(thresholds: np.ndarray) -> np.ndarray:
    """Mean finite threshold per item (the item's location)."""
    t = np.where(np.isfinite(thresholds), thresholds, np.nan)
    return np.nanmean(t, axis=1)
