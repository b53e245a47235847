"""Per-bank lookup tables on fixed theta grids, computed once and cached.

Everything a test step needs is a gather from these tables:

* ``log_prob`` (I, K, Q): log P(X = k | theta_q) on the quadrature grid, so a
  response adds one row to a session's log-likelihood and EAP is one weighted
  sum (girth's "likelihood on a grid" idea);
* ``information`` (G, I) and ``area_score`` (G, A) on a fine grid (step
  0.005), read at the nearest point (information) or linearly interpolated
  (scores and their slopes), so selection and scoring never evaluate logistic
  functions inside the adaptive loop.

The tables are exact functions of the bank, built with :mod:`nangluc.engine.irt`.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import numpy as np

from nangluc.engine import irt
from nangluc.engine.bank import KINDS, ItemBank

THETA_MIN, THETA_MAX = -6.0, 6.0
# 61 points (step 0.2): the discrete posterior moments of a normal posterior
# with SD >= 0.2 are exact to about 1e-8, and every grid operation is 25%
# cheaper than with 81 points.
QUADRATURE_POINTS = 61
FINE_POINTS = 2401  # step 0.005


@dataclass(frozen=True, eq=False)
class BankTables:
    """Cached lookup tables of one :class:`ItemBank` (see module docstring)."""

    quadrature: np.ndarray  # (Q,)
    quadrature_moments: np.ndarray  # (Q, 2): theta and theta^2 (posterior moments in one product)
    log_prob: np.ndarray  # (I, K, Q)
    quadrature_information: np.ndarray  # (Q, I)
    fine: np.ndarray  # (G,)
    information: np.ndarray  # (G, I)
    area_score: np.ndarray  # (G, A) domain score 0..100 over operational items
    area_score_slope: np.ndarray  # (G, A) d score / d theta
    area_members: tuple[np.ndarray, ...]  # item indices of each area
    area_onehot: np.ndarray  # (I, A) float, for "any eligible item in area" as a matmul
    kind_onehot: np.ndarray  # (I, 3) float
    area_threshold_range: np.ndarray  # (A, 2) lowest and highest finite threshold per area
    area_information: tuple[np.ndarray, ...]  # information[:, members of area a], contiguous
    scored_areas: np.ndarray  # (A,) bool: areas with at least one operational item
    # (A,) each area's share of the overall score under the bank's overall rule
    # (Scale.area_weights): 1 / (number of scored areas) under the plain mean; 0 on unscored areas
    scored_area_weights: np.ndarray
    own_area_index: np.ndarray  # (I,) area[i] * I + i: item i's entry in a flattened (A, I) array
    _masks: dict = field(default_factory=dict, repr=False)

    def interpolate_areas(self, theta: np.ndarray, *tables: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per-area tables (G, A) at per-area thetas (N, A): column a at theta[:, a]."""
        lower, weight = self.locate(theta)
        n_areas = tables[0].shape[1]
        index = lower * n_areas + _arange(n_areas)
        upper = index + n_areas
        below = 1.0 - weight
        out = []
        for table in tables:
            flat = table.reshape(-1)
            out.append(below * flat[index] + weight * flat[upper])
        return tuple(out)

    def cached(self, key: tuple, build):
        """``build()``, computed once per bank under ``key`` (derived per-bank tables)."""
        value = self._masks.get(key)
        if value is None:
            value = build()
            self._masks[key] = value
        return value

    def informative_range(self, min_information: float) -> tuple[np.ndarray, np.ndarray]:
        """Per item, the lowest and highest fine-grid theta with information >= ``min_information``.

        Outside ``[low, high]`` an item is not informative; an item that never
        reaches the threshold gets an empty range (low > high). Cached.
        """
        key = ("informative", float(min_information))
        cached = self._masks.get(key)
        if cached is None:
            reaches = self.information >= min_information  # (G, I)
            any_point = reaches.any(axis=0)
            first = np.argmax(reaches, axis=0)
            last = reaches.shape[0] - 1 - np.argmax(reaches[::-1], axis=0)
            low = np.where(any_point, self.fine[first], np.inf)
            high = np.where(any_point, self.fine[last], -np.inf)
            # The ends of the grid stand for everything beyond them.
            low = np.where(first == 0, -np.inf, low)
            high = np.where(last == reaches.shape[0] - 1, np.inf, high)
            cached = (low, high)
            self._masks[key] = cached
        return cached

    def item_mask(self, item_ids: tuple[str, ...], bank: ItemBank) -> np.ndarray:
        """Boolean mask of ``item_ids`` (unknown ids ignored), cached."""
        mask = self._masks.get(item_ids)
        if mask is None:
            mask = np.zeros(bank.n_items, dtype=bool)
            for item_id in item_ids:
                if item_id in bank._index:
                    mask[bank._index[item_id]] = True
            mask.setflags(write=False)
            self._masks[item_ids] = mask
        return mask

    @property
    def category_probabilities(self) -> np.ndarray:
        """``P(X = k | theta_q)`` (I, K, Q), the exponential of ``log_prob`` (cached)."""
        cached = self._masks.get("category probabilities")
        if cached is None:
            cached = np.exp(self.log_prob)
            cached[cached < 1e-250] = 0.0  # padded categories are exactly impossible
            cached.setflags(write=False)
            self._masks["category probabilities"] = cached
        return cached

    @functools.cached_property
    def fine_step(self) -> float:
        return float(self.fine[1] - self.fine[0])

    def locate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower fine-grid index and interpolation weight for each theta."""
        theta = np.minimum(np.maximum(theta, THETA_MIN), THETA_MAX)
        position = (theta - THETA_MIN) / self.fine_step
        lower = np.minimum(position.astype(np.intp), self.fine.size - 2)
        return lower, position - lower


@functools.lru_cache(maxsize=16)
def _arange(n: int) -> np.ndarray:
    """``np.arange(n)``, read-only and cached (a step asks for the same few)."""
    out = np.arange(n)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def log_normal_density(mean: float, sd: float) -> np.ndarray:
    """``log N(theta_q; mean, sd^2)`` on the quadrature grid, up to a constant (cached, read-only)."""
    grid = np.linspace(THETA_MIN, THETA_MAX, QUADRATURE_POINTS)
    out = -0.5 * ((grid - mean) / sd) ** 2
    out.setflags(write=False)
    return out


def curve_crossing(theta: np.ndarray, curves: np.ndarray, level: float) -> np.ndarray:
    """Per column, the theta where an increasing curve (G, I) reaches ``level`` (±inf beyond)."""
    above = curves >= level
    first = np.argmax(above, axis=0)
    never = ~above.any(axis=0)
    previous = np.maximum(first - 1, 0)
    columns = np.arange(curves.shape[1])
    lo, hi = curves[previous, columns], curves[first, columns]
    share = np.divide(level - lo, hi - lo, out=np.zeros_like(lo), where=hi > lo)
    at = theta[previous] + share * (theta[first] - theta[previous])
    at = np.where(first == 0, -np.inf, at)
    return np.where(never, np.inf, at)


_CACHE: weakref.WeakKeyDictionary[ItemBank, BankTables] = weakref.WeakKeyDictionary()


#: The bank asked for last and its tables: a step asks a dozen times for the same bank.
_LAST: tuple[ItemBank | None, BankTables | None] = (None, None)


def bank_tables(bank: ItemBank) -> BankTables:
    """The lookup tables of ``bank``, computed on first use and cached."""
    global _LAST
    last_bank, last_tables = _LAST
    if bank is last_bank:
        return last_tables
    tables = _CACHE.get(bank)
    if tables is None:
        tables = _build(bank)
        _CACHE[bank] = tables
    _LAST = (bank, tables)
    return tables


def _build(bank: ItemBank) -> BankTables:
    quadrature = np.linspace(THETA_MIN, THETA_MAX, QUADRATURE_POINTS)
    probs = irt.bank_probabilities(bank, quadrature)  # (Q, I, K)
    with np.errstate(divide="ignore"):
        log_prob = np.log(np.maximum(probs, 1e-300)).transpose(1, 2, 0).copy()
    quadrature_information = irt.bank_information(bank, quadrature)
    fine = np.linspace(THETA_MIN, THETA_MAX, FINE_POINTS)
    information = irt.bank_information(bank, fine)
    args = (fine, bank.discrimination, bank.thresholds, bank.guessing, bank.partial_credit)
    expected = irt.expected_score(*args)  # (G, I)
    slope = irt.expected_score_derivative(*args)
    score = np.zeros((fine.size, bank.n_areas))
    score_slope = np.zeros_like(score)
    for area in range(bank.n_areas):
        members = (bank.area == area) & bank.operational
        if not members.any():
            continue
        total = bank.max_score[members].sum()
        score[:, area] = 100.0 * expected[:, members].sum(axis=1) / total
        score_slope[:, area] = 100.0 * slope[:, members].sum(axis=1) / total
    members = tuple(np.flatnonzero(bank.area == a) for a in range(bank.n_areas))
    area_onehot = (bank.area[:, None] == np.arange(bank.n_areas)[None, :]).astype(float)
    kind_onehot = (bank.kind[:, None] == np.arange(len(KINDS))[None, :]).astype(float)
    moments = np.column_stack([quadrature, quadrature**2])
    tables = (
        quadrature,
        moments,
        log_prob,
        quadrature_information,
        fine,
        information,
        score,
        score_slope,
    )
    finite = np.where(np.isfinite(bank.thresholds), bank.thresholds, np.nan)
    threshold_range = np.array(
        [[np.nanmin(finite[m]), np.nanmax(finite[m])] if m.size else [0.0, 0.0] for m in members]
    )
    area_information = tuple(np.ascontiguousarray(information[:, m]) for m in members)
    scored_areas = np.bincount(bank.area[bank.operational], minlength=bank.n_areas) > 0
    scored_area_weights = bank.scale.area_weights(bank.area_codes, scored_areas)
    for array in (
        *tables,
        *members,
        area_onehot,
        kind_onehot,
        threshold_range,
        *area_information,
        scored_areas,
        scored_area_weights,
    ):
        array.setflags(write=False)
    own_area_index = bank.area.astype(np.intp) * bank.n_items + np.arange(bank.n_items)
    return BankTables(
        *tables,
        members,
        area_onehot,
        kind_onehot,
        threshold_range,
        area_information,
        scored_areas,
        scored_area_weights,
        own_area_index,
    )
