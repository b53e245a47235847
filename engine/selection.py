"""Item selection: criteria, content balancing and exposure control.

Selection is a masked argmax over a (takers x items) criterion matrix:

1. ``eligible``: not yet administered, not excluded, operational;
2. content rules narrow the mask (never to nothing);
3. exposure control narrows it at random (Sympson–Hetter) or picks at random
   among the best few (randomesque);
4. the best remaining item by the selector's criterion is chosen.

Rules are small frozen dataclasses behind one Protocol per role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.estimation import normalized_exp
from nangluc.engine.tables import bank_tables, log_normal_density

if TYPE_CHECKING:  # only for annotations; engine.cat imports this module
    from nangluc.engine.cat import CatBatch


def point_information(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Information of every item at its own area's theta: (N, A) -> (N, I)."""
    tables = bank_tables(bank)
    # The nearest point of the fine grid (step 0.005: information moves by
    # less than 0.5% of its peak between neighbours), gathered as whole rows of
    # each area's own (G, I_a) table: far cheaper than (N x I) single elements.
    lower, weight = tables.locate(np.asarray(theta, dtype=float))  # (N, A)
    nearest = lower + (weight >= 0.5)
    out = np.empty((lower.shape[0], bank.n_items))
    for area, members in enumerate(tables.area_members):
        out[:, members] = tables.area_information[area][nearest[:, area]]
    return out


def posterior_weights(
    bank: ItemBank, loglik: np.ndarray, prior_mean: float = 0.0, prior_sd: float = 1.0
) -> np.ndarray:
    """Normalised posterior over the quadrature grid, (N, A, Q)."""
    return normalized_exp(loglik + log_normal_density(prior_mean, prior_sd))


def posterior_information(
    bank: ItemBank, loglik: np.ndarray, prior_mean: float = 0.0, prior_sd: float = 1.0
) -> np.ndarray:
    """Posterior-weighted information of every item, (N, I) (van der Linden, 1998)."""
    return _weighted_information(bank, posterior_weights(bank, loglik, prior_mean, prior_sd))


def normal_weighted_information(bank: ItemBank, theta: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Information of every item averaged over ``N(theta_a, se_a^2)`` of its area, (N, I)."""
    grid = bank_tables(bank).quadrature
    log_w = -0.5 * ((grid[None, None, :] - theta[:, :, None]) / se[:, :, None]) ** 2
    return _weighted_information(bank, normalized_exp(log_w))


def _weighted_information(bank: ItemBank, weights: np.ndarray) -> np.ndarray:
    """Each item's information averaged over its own area's weights (N, A, Q) -> (N, I)."""
    tables = bank_tables(bank)
    n = weights.shape[0]
    if n <= 8:
        # A few rows: one product over all areas, then each item's own area's row.
        every = weights @ tables.quadrature_information  # (N, A, I)
        return every.reshape(n, -1)[:, tables.own_area_index]
    out = np.empty((n, bank.n_items))
    for area, members in enumerate(tables.area_members):
        out[:, members] = weights[:, area, :] @ tables.quadrature_information[:, members]
    return out


# ----------------------------------------------------------------- selectors
class Selector(Protocol):
    """Scores every item for every taker; higher is better."""

    name: str

    def criterion(self, bank: ItemBank, batch: CatBatch, rows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class MaximumInformation:
    """Maximum Fisher information at the current estimate of the item's area."""

    name: str = "mfi"

    def criterion(self, bank, batch, rows):
        return point_information(bank, batch.theta[rows])


@dataclass(frozen=True)
class PosteriorWeightedInformation:
    """Fisher information averaged over the current posterior of the item's area.

    Better than point information in the first items, when the estimate is
    still far from the truth.
    """

    prior_mean: float = 0.0
    prior_sd: float = 1.0
    name: str = "pwi"

    def criterion(self, bank, batch, rows):
        return posterior_information(bank, batch.loglik[rows], self.prior_mean, self.prior_sd)


@dataclass(frozen=True)
class OverallPrecision:
    """Largest reduction of the overall score's error variance.

    The overall score's variance is ``g' C g / A^2`` (``g`` the derivatives of
    the area scores at the estimates, ``C`` the posterior covariance of the
    areas' thetas). An item of area a with information ``I`` adds ``I`` to
    the posterior precision of that area, which lowers ``g' C g`` by
    ``I (g' C e_a)^2 / (1 + I C_aa)`` (Sherman–Morrison). With independent
    areas this is ``g_a^2 (C_aa - 1 / (1 / C_aa + I))``.

    It spends items where they most sharpen the overall score, so it balances
    the areas by itself and gives few items to an area whose score is already
    flat (very low or very high ability). ``I`` is the information averaged
    over a normal approximation of the area's posterior, ``N(theta, se^2)``
    (``posterior_weighted=True``, better in the first items), or at the
    estimate itself.
    """

    prior_mean: float = 0.0
    prior_sd: float = 1.0
    posterior_weighted: bool = True
    name: str = "overall"

    def criterion(self, bank, batch, rows):
        theta, se = batch.theta[rows], batch.se[rows]
        if self.posterior_weighted:
            info = normal_weighted_information(bank, theta, se)
        else:
            info = point_information(bank, theta)
        tables = bank_tables(bank)
        (slope,) = tables.interpolate_areas(theta, tables.area_score_slope)  # (R, A)
        g_scaled = slope * se  # (R, A)
        u = se * np.einsum("rab,rb->ra", batch.theta_corr[rows], g_scaled)  # C g
        u_item = u[:, bank.area]
        v_item = (se**2)[:, bank.area]
        return info * u_item**2 / (1.0 + info * v_item)


SELECTORS = {
    "mfi": MaximumInformation,
    "pwi": PosteriorWeightedInformation,
    "overall": OverallPrecision,
}


# ------------------------------------------------------------ content rules
class ContentRule(Protocol):
    """Narrows the eligible items (R, I); must not empty a row that had items."""

    def allowed(
        self, bank: ItemBank, batch: CatBatch, rows: np.ndarray, eligible: np.ndarray
    ) -> np.ndarray: ...


def _kingsbury_zara(
    category: np.ndarray,
    onehot: np.ndarray,
    targets: np.ndarray,
    counts: np.ndarray,
    eligible: np.ndarray,
) -> np.ndarray:
    """Restrict each row to the category furthest below its target share.

    ``category`` (I,) of each item and its one-hot form ``onehot`` (I, C),
    ``counts`` (R, C) administered so far, ``targets`` (C,) shares.
    Categories with no eligible item are skipped.
    """
    total = counts.sum(axis=1, keepdims=True)
    shares = counts / np.maximum(total, 1)
    deficit = targets[None, :] - shares
    available = (eligible @ onehot) > 0
    deficit = np.where(available & (targets[None, :] > 0), deficit, -np.inf)
    chosen = np.argmax(deficit, axis=1)
    has_choice = np.isfinite(deficit[np.arange(len(chosen)), chosen])
    narrowed = eligible & (category[None, :] == chosen[:, None])
    return np.where(has_choice[:, None], narrowed, eligible)


@dataclass(frozen=True)
class KindBalance:
    """Kingsbury–Zara balancing of knowledge / skill / attitude items.

    ``targets`` are the shares of the three kinds in a test (normalised);
    by default each kind's share of the bank's operational items.
    """

    targets: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.targets is not None:
            t = np.asarray(self.targets, dtype=float)
            if t.shape != (len(KINDS),) or np.any(t < 0) or t.sum() <= 0:
                raise ValueError(
                    f"kind targets must be {len(KINDS)} non-negative shares with a positive sum"
                )

    def allowed(self, bank, batch, rows, eligible):
        if self.targets is None:
            targets = np.bincount(bank.kind[bank.operational], minlength=len(KINDS)).astype(float)
        else:
            targets = np.asarray(self.targets, dtype=float)
        targets = targets / targets.sum()
        counts = batch.kind_counts[rows]
        return _kingsbury_zara(bank.kind, bank_tables(bank).kind_onehot, targets, counts, eligible)


@dataclass(frozen=True)
class AreaMinimum:
    """Every area gets at least ``items_per_area`` scored items first.

    While some area is below the minimum, only items of such areas are
    eligible; among them the selector's criterion decides.
    """

    items_per_area: int = 2

    def __post_init__(self) -> None:
        if self.items_per_area < 0:
            raise ValueError("items_per_area must be >= 0")

    def allowed(self, bank, batch, rows, eligible):
        counts = batch.area_counts[rows]  # (R, A)
        short = (counts < self.items_per_area) & ((eligible @ bank_tables(bank).area_onehot) > 0)
        narrowed = eligible & short[:, bank.area]
        return np.where(short.any(axis=1)[:, None], narrowed, eligible)


@dataclass(frozen=True)
class AreaBalance:
    """Kingsbury–Zara balancing of areas to target shares (equal by default)."""

    targets: tuple[float, ...] | None = None

    def allowed(self, bank, batch, rows, eligible):
        targets = (
            np.ones(bank.n_areas) if self.targets is None else np.asarray(self.targets, dtype=float)
        )
        if targets.shape != (bank.n_areas,):
            raise ValueError(f"area targets need {bank.n_areas} shares, got {targets.shape[0]}")
        targets = targets / targets.sum()
        return _kingsbury_zara(
            bank.area, bank_tables(bank).area_onehot, targets, batch.area_counts[rows], eligible
        )


# ----------------------------------------------------------- exposure rules
class ExposureControl(Protocol):
    """Chooses among the candidates at random to cap item exposure."""

    def choose(
        self,
        criterion: np.ndarray,
        eligible: np.ndarray,
        rng: np.random.Generator,
        lottery: np.ndarray,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Randomesque:
    """Pick uniformly among the ``k`` best eligible items (Kingsbury & Zara, 1989)."""

    k: int = 3

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"randomesque k must be >= 1, got {self.k}")

    def choose(self, criterion, eligible, rng, lottery):
        return _randomesque(criterion, eligible, self.k, rng)


@dataclass(frozen=True)
class SympsonHetter:
    """Sympson–Hetter: the chosen item is given with probability ``control[i]``.

    As in the classic procedure an item rejected for a test taker stays
    rejected for the rest of that test: each test draws one uniform number
    per item at its start (``lottery``), and item i is acceptable when its
    number is below ``control[i]``; the best acceptable item is given. If no
    eligible item is acceptable, the best eligible one is given. ``control``
    comes from :func:`update_sympson_hetter` iterated over simulations, or
    from live exposure rates. ``randomesque_k`` > 1 adds randomesque on top.
    """

    control: tuple[float, ...] = field(default=())
    randomesque_k: int = 1

    def __post_init__(self) -> None:
        k = np.asarray(self.control, dtype=float)
        if k.size and (np.any(~np.isfinite(k)) or np.any(k < 0) or np.any(k > 1)):
            raise ValueError("Sympson–Hetter control parameters must lie in [0, 1]")

    def choose(self, criterion, eligible, rng, lottery):
        control = np.asarray(self.control, dtype=float)
        if control.size == 0:
            control = np.ones(criterion.shape[1])
        if control.shape != (criterion.shape[1],):
            raise ValueError(
                f"Sympson–Hetter needs one control parameter per item ({criterion.shape[1]}), got {control.size}"
            )
        accepted = eligible & (lottery < control[None, :])
        use = np.where(accepted.any(axis=1)[:, None], accepted, eligible)
        return _randomesque(criterion, use, self.randomesque_k, rng)


def update_sympson_hetter(
    control: np.ndarray, exposure_rate: np.ndarray, max_rate: float
) -> np.ndarray:
    """One Sympson–Hetter iteration: ``k <- k * min(1, r_max / P(selected))``.

    ``exposure_rate`` is each item's observed administration rate under the
    current ``control``; the selection rate is rate / k.
    """
    control = np.asarray(control, dtype=float)
    exposure_rate = np.asarray(exposure_rate, dtype=float)
    selection_rate = np.divide(
        exposure_rate, control, out=np.zeros_like(control), where=control > 0
    )
    new = np.where(selection_rate > max_rate, max_rate / np.maximum(selection_rate, 1e-12), 1.0)
    return np.clip(new, 0.0, 1.0)


def _randomesque(
    criterion: np.ndarray, eligible: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    masked = np.where(eligible, criterion, -np.inf)
    if k == 1:
        return masked.argmax(axis=1)
    if k <= 3:
        # A few argmax passes beat a partition over all items for small k. The
        # candidates come out best first, so the eligible ones lead: draw a
        # position below their count.
        rows = np.arange(masked.shape[0])
        best = np.empty((masked.shape[0], k), dtype=np.intp)
        candidates = np.zeros(masked.shape[0], dtype=np.intp)
        for j in range(k):
            best[:, j] = masked.argmax(axis=1)
            candidates += masked[rows, best[:, j]] > -np.inf
            masked[rows, best[:, j]] = -np.inf
        position = (rng.random(masked.shape[0]) * np.maximum(candidates, 1)).astype(np.intp)
        return best[rows, position]
    k = min(k, masked.shape[1])
    top = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    top_values = np.take_along_axis(masked, top, axis=1)
    # Random positive keys on the finite candidates; argmax picks one uniformly.
    keys = np.where(np.isfinite(top_values), rng.random(top.shape) + 1.0, 0.0)
    keys[:, 0] = np.where(np.isfinite(top_values).any(axis=1), keys[:, 0], 1.0)
    return top[np.arange(top.shape[0]), np.argmax(keys, axis=1)]
