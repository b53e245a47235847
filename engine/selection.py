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
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.estimation import EAP, Estimator, normalized_exp, posterior_weights
from nangluc.engine.irt import categories_and_slopes
from nangluc.engine.tables import bank_tables

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
    if bank.n_areas == 1:
        return tables.area_information[0][nearest[:, 0]]  # one area: every item, in order
    out = np.empty((lower.shape[0], bank.n_items))
    for area, members in enumerate(tables.area_members):
        out[:, members] = tables.area_information[area][nearest[:, area]]
    return out


def posterior_information(
    bank: ItemBank, loglik: np.ndarray, estimator: Estimator | None = None
) -> np.ndarray:
    """Information of every item averaged over the estimator's posterior of its area, (N, I).

    van der Linden (1998); the posterior is the estimator's own
    (:func:`nangluc.engine.estimation.posterior_weights`): its prior, or for
    :class:`~nangluc.engine.estimation.CorrelatedEAP` what the other areas lend.
    """
    weights = posterior_weights(bank, estimator or EAP(), loglik)
    return _weighted_information(bank, weights)


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


def _probabilities_at(bank: ItemBank, theta: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``P(X = k)`` of the items ``members`` at per-row thetas: (R, ...) -> (R, ..., I_m, K)."""
    theta = np.asarray(theta, dtype=float)[..., None, None]
    prob, _ = categories_and_slopes(
        theta,
        bank.discrimination[members][:, None],
        bank.thresholds[members],
        bank.guessing[members],
        bank.partial_credit[members],
        slopes=False,
    )
    return np.clip(prob, 0.0, 1.0)


def _negative_entropy(prob: np.ndarray) -> np.ndarray:
    """``sum_k P_k log P_k`` over the last axis (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prob > 0, prob * np.log(np.where(prob > 0, prob, 1.0)), 0.0).sum(axis=-1)


# ----------------------------------------------------------------- selectors
class Selector(Protocol):
    """Scores every item for every taker; higher is better.

    ``estimator`` is the test's estimator (posterior-weighted rules use its
    posterior); ``rng`` is the step's random generator.
    """

    name: str

    def criterion(
        self,
        bank: ItemBank,
        batch: CatBatch,
        rows: np.ndarray,
        *,
        estimator: Estimator | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class MaximumInformation:
    """Maximum Fisher information at the current estimate of the item's area."""

    name: str = "mfi"

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        return point_information(bank, batch.theta[rows])


@dataclass(frozen=True)
class PosteriorWeightedInformation:
    """Fisher information averaged over the estimator's current posterior of the item's area.

    Better than point information in the first items, when the estimate is
    still far from the truth. The posterior is the test's estimator's own
    (its prior, or what :class:`~nangluc.engine.estimation.CorrelatedEAP`
    borrows from the other areas; the likelihood alone for MLE and WLE).
    """

    name: str = "pwi"

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        return posterior_information(bank, batch.loglik[rows], estimator)


@dataclass(frozen=True)
class KullbackLeibler:
    """Chang & Ying's (1996) Kullback–Leibler information at the estimate.

    ``KL_i = integral over theta in [t - d, t + d] of KL(P_i(t) || P_i(theta))``
    with ``t`` the estimate of the item's area and ``d = width / sqrt(n)``
    (``n`` the items answered in that area, at least 1): a global criterion
    that looks at the neighbourhood of the estimate, not only at the point.
    The integral is Simpson's rule on ``points`` (odd) evaluations.
    """

    width: float = 3.0
    points: int = 9
    name: str = "kl"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.width) and self.width > 0):
            raise ValueError(f"KL width must be a number > 0, got {self.width}")
        if self.points < 3 or self.points % 2 == 0:
            raise ValueError(f"KL points must be an odd integer >= 3, got {self.points}")

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        tables = bank_tables(bank)
        theta = batch.theta[rows]  # (R, A)
        delta = self.width / np.sqrt(np.maximum(batch.area_counts[rows], 1))  # (R, A)
        offsets = np.linspace(-1.0, 1.0, self.points)
        simpson = np.ones(self.points)
        simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
        simpson /= simpson.sum()
        out = np.empty((rows.size, bank.n_items))
        for area, members in enumerate(tables.area_members):
            if members.size == 0:
                continue
            t = theta[:, area]
            at = _probabilities_at(bank, t, members)  # (R, I_a, K)
            near = t[:, None] + delta[:, area, None] * offsets  # (R, J)
            around = _probabilities_at(bank, near, members)  # (R, J, I_a, K)
            with np.errstate(divide="ignore"):
                log_around = np.log(np.maximum(around, 1e-300))
            cross = np.einsum("rik,rjik,j->ri", at, log_around, simpson)
            # Mean over the interval times its length: the integral.
            out[:, members] = (_negative_entropy(at) - cross) * 2.0 * delta[:, area, None]
        return out


@dataclass(frozen=True)
class PosteriorKullbackLeibler:
    """Kullback–Leibler information averaged over the estimator's posterior (Chang & Ying, 1996).

    ``sum_q w_q KL(P_i(t) || P_i(theta_q))`` with ``w`` the estimator's
    posterior of the item's area on the quadrature grid and ``t`` its estimate.
    """

    name: str = "kl-posterior"

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        tables = bank_tables(bank)
        weights = posterior_weights(bank, estimator or EAP(), batch.loglik[rows])  # (R, A, Q)
        theta = batch.theta[rows]
        out = np.empty((rows.size, bank.n_items))
        k = bank.max_categories
        for area, members in enumerate(tables.area_members):
            if members.size == 0:
                continue
            at = _probabilities_at(bank, theta[:, area], members)  # (R, I_a, K)
            log_prob = tables.log_prob[members].reshape(-1, tables.quadrature.size)
            expected_log = (weights[:, area, :] @ log_prob.T).reshape(rows.size, members.size, k)
            out[:, members] = _negative_entropy(at) - (at * expected_log).sum(axis=2)
        return out


@dataclass(frozen=True)
class MinimumExpectedPosteriorVariance:
    """Minimum expected posterior variance (van der Linden, 1998; catR's ``MEPV``).

    For each item, the posterior variance of its area after each possible
    response, weighted by the predictive probability of that response, under
    the estimator's own posterior. The criterion is the expected reduction of
    the area's posterior variance (for one area, the same order as the
    expected variance itself).
    """

    name: str = "mepv"

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        tables = bank_tables(bank)
        weights = posterior_weights(bank, estimator or EAP(), batch.loglik[rows])  # (R, A, Q)
        grid = tables.quadrature
        prob = tables.category_probabilities  # (I, K, Q)
        k = bank.max_categories
        out = np.empty((rows.size, bank.n_items))
        for area, members in enumerate(tables.area_members):
            if members.size == 0:
                continue
            w = weights[:, area, :]
            mean = w @ grid
            variance = w @ grid**2 - mean**2
            p = prob[members].reshape(-1, grid.size).T  # (Q, I_a K)
            m0 = (w @ p).reshape(rows.size, members.size, k)
            # Moments about the current mean: better conditioned than raw moments.
            centred = grid[None, :] - mean[:, None]
            m1 = ((w * centred) @ p).reshape(m0.shape)
            m2 = ((w * centred**2) @ p).reshape(m0.shape)
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = np.where(m0 > 1e-300, m2 - m1**2 / m0, 0.0).sum(axis=2)
            out[:, members] = variance[:, None] - expected
        return out


@dataclass(frozen=True)
class RandomSelection:
    """Any eligible item, uniformly at random (a baseline; content rules still apply)."""

    name: str = "random"

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        if rng is None:
            raise ValueError("random selection needs the step's random generator")
        return rng.random((rows.size, bank.n_items))


@dataclass(frozen=True)
class AStratified:
    """a-stratified selection (Chang & Ying, 1999).

    Each area's operational items are split into ``strata`` groups of equal
    size by ascending discrimination a. The test's first
    ``items_per_stratum`` scored items come from the lowest stratum, the next
    ones from the second, and so on (the last stratum after that); within the
    stratum the item whose location (b, or the mean of the thresholds) is
    nearest the estimate of its area is chosen. Less discriminating items are
    spent early, when the estimate is rough, which evens out exposure. When
    a stratum has no eligible item left, the nearest item of the others is
    chosen.
    """

    strata: int = 4
    items_per_stratum: int = 5
    name: str = "a-stratified"

    def __post_init__(self) -> None:
        if self.strata < 1:
            raise ValueError(f"strata must be >= 1, got {self.strata}")
        if self.items_per_stratum < 1:
            raise ValueError(f"items_per_stratum must be >= 1, got {self.items_per_stratum}")

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        stratum, location = _a_strata(bank, self.strata)
        stage = np.minimum(batch.scored_length[rows] // self.items_per_stratum, self.strata - 1)
        distance = np.abs(location[None, :] - batch.theta[rows][:, bank.area])
        # Items of other strata rank below every item of the current stratum.
        other = stratum[None, :] != stage[:, None]
        return -(distance + np.where(other, 1e6, 0.0))


def _a_strata(bank: ItemBank, strata: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratum (0 = lowest a) of each item within its area, and each item's location (cached)."""
    tables = bank_tables(bank)
    key = ("a-strata", strata)
    cached = tables._masks.get(key)
    if cached is None:
        stratum = np.zeros(bank.n_items, dtype=np.intp)
        for members in tables.area_members:
            if members.size:
                order = members[np.argsort(bank.discrimination[members], kind="stable")]
                stratum[order] = np.arange(order.size) * strata // order.size
        finite = np.where(np.isfinite(bank.thresholds), bank.thresholds, np.nan)
        location = np.nanmean(finite, axis=1)
        cached = (stratum, location)
        tables._masks[key] = cached
    return cached


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
    over the normal approximation of the estimator's posterior of the area,
    ``N(theta, se^2)`` (``posterior_weighted=True``, better in the first
    items), or at the estimate itself. ``theta``, ``se`` and ``C`` are the
    estimator's, so a correlated estimator's borrowing enters through them.
    """

    posterior_weighted: bool = True
    name: str = "overall"

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
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


@dataclass(frozen=True)
class FixedForm:
    """A fixed form: its items in the given order, nothing else.

    As a selector, an item's criterion is minus its position in the form
    (non-form items: ``-inf``), so the masked argmax gives the first form item
    not yet given. As a content rule it leaves only the form's items
    eligible. A fixed form's config uses it in both roles, with no stopping
    rule and ``max_items`` the form's length (see
    :meth:`nangluc.engine.definition.TestDefinition.build`).
    """

    items: tuple[str, ...] = ()
    name: str = "form"

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(str(i) for i in self.items))
        if not self.items:
            raise ValueError("a fixed form needs at least one item id")
        if len(set(self.items)) != len(self.items):
            raise ValueError("a fixed form gives each item once")

    def order(self, bank: ItemBank) -> np.ndarray:
        """Minus each bank item's position in the form, ``-inf`` off the form (I,), cached."""
        tables = bank_tables(bank)
        key = ("fixed form", self.items)
        cached = tables._masks.get(key)
        if cached is None:
            cached = np.full(bank.n_items, -np.inf)
            for position, item_id in enumerate(self.items):
                index = bank._index.get(item_id)
                if index is None:
                    raise ValueError(f"form item {item_id!r} is not in bank {bank.version}")
                cached[index] = -float(position)
            cached.setflags(write=False)
            tables._masks[key] = cached
        return cached

    def criterion(self, bank, batch, rows, *, estimator=None, rng=None):
        return np.broadcast_to(self.order(bank), (rows.size, bank.n_items))

    def allowed(self, bank, batch, rows, eligible):
        return eligible & np.isfinite(self.order(bank))[None, :]


#: Selectors by their stable names (CLI, design files, test definitions).
SELECTORS = {
    "mfi": MaximumInformation,
    "pwi": PosteriorWeightedInformation,
    "overall": OverallPrecision,
    "kl": KullbackLeibler,
    "kl-posterior": PosteriorKullbackLeibler,
    "mepv": MinimumExpectedPosteriorVariance,
    "random": RandomSelection,
    "a-stratified": AStratified,
}


# -------------------------------------------------------------- start rules
class StartRule(Protocol):
    """Chooses the first items of a test; -1 where the rule does not apply."""

    name: str

    def choose(
        self,
        bank: ItemBank,
        batch: CatBatch,
        rows: np.ndarray,
        eligible: np.ndarray,
        criterion: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class FixedStart:
    """The test's first items are these, in order (item ids).

    An item that is not eligible for a test taker (excluded, unavailable,
    or pushed out by a content rule) is skipped: the selector chooses at that
    position instead.
    """

    items: tuple[str, ...] = ()
    name: str = "fixed"

    def __post_init__(self) -> None:
        if isinstance(self.items, str):
            object.__setattr__(self, "items", (self.items,))
        object.__setattr__(self, "items", tuple(str(i) for i in self.items))
        if not self.items:
            raise ValueError("a fixed start needs at least one item id")

    def choose(self, bank, batch, rows, eligible, criterion, rng):
        position = batch.length[rows]
        out = np.full(rows.size, -1, dtype=np.intp)
        for p, item_id in enumerate(self.items):
            if item_id not in bank._index:
                raise ValueError(f"start item {item_id!r} is not in bank {bank.version}")
            index = bank._index[item_id]
            at = (position == p) & eligible[:, index]
            out[at] = index
        return out


@dataclass(frozen=True)
class RandomStart:
    """The first ``items`` items: at random among the ``k`` best by the selector's criterion.

    At the start every test taker has the same estimate, so without this the
    first item is the same for everyone (exposure 1). The selector's
    criterion at the prior decides which items are the ``k`` best.
    """

    k: int = 5
    items: int = 1
    name: str = "random-best"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"random start k must be >= 1, got {self.k}")
        if self.items < 1:
            raise ValueError(f"random start items must be >= 1, got {self.items}")

    def choose(self, bank, batch, rows, eligible, criterion, rng):
        out = np.full(rows.size, -1, dtype=np.intp)
        early = batch.length[rows] < self.items
        if early.any():
            out[early] = _randomesque(criterion[early], eligible[early], self.k, rng)
        return out


#: Start rules by their stable names.
START_RULES = {"fixed": FixedStart, "random-best": RandomStart}


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
    """Chooses among the candidates at random to cap item exposure.

    ``lottery`` (R, I) holds each test's uniform draw per item (Sympson–Hetter
    rules read it: ``uses_lottery``); ``theta`` (R, A) the current estimates;
    ``bank`` the test's bank.
    """

    def choose(
        self,
        criterion: np.ndarray,
        eligible: np.ndarray,
        rng: np.random.Generator,
        lottery: np.ndarray,
        *,
        theta: np.ndarray | None = None,
        bank: ItemBank | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Randomesque:
    """Pick uniformly among the ``k`` best eligible items (Kingsbury & Zara, 1989)."""

    k: int = 3

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"randomesque k must be >= 1, got {self.k}")

    def choose(self, criterion, eligible, rng, lottery, *, theta=None, bank=None):
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
    With ``item_ids`` the parameters belong to those items by id (see
    :meth:`control_for`), as in the citizen test, whose parameters were
    derived on the shipped bank.
    """

    control: tuple[float, ...] = field(default=())
    randomesque_k: int = 1
    item_ids: tuple[str, ...] = ()
    uses_lottery: ClassVar[bool] = True

    def __post_init__(self) -> None:
        k = np.asarray(self.control, dtype=float)
        if k.size and (np.any(~np.isfinite(k)) or np.any(k < 0) or np.any(k > 1)):
            raise ValueError("Sympson–Hetter control parameters must lie in [0, 1]")
        object.__setattr__(self, "control", tuple(float(x) for x in k.reshape(-1)))
        object.__setattr__(self, "item_ids", tuple(str(i) for i in self.item_ids))
        if self.item_ids and len(self.item_ids) != len(self.control):
            raise ValueError(
                f"Sympson–Hetter has {len(self.item_ids)} item ids for {len(self.control)} "
                "control parameters"
            )

    def control_for(self, bank: ItemBank) -> np.ndarray:
        """Control parameter of every bank item (I,).

        With ``item_ids`` the parameters follow the items by id, so they carry
        over to another version of the bank; items not listed get 1. Without,
        ``control`` is aligned with the bank's items (empty = all 1).
        """
        if not self.item_ids:
            control = np.asarray(self.control, dtype=float)
            return control if control.size else np.ones(bank.n_items)
        tables = bank_tables(bank)
        key = ("sympson-hetter", self.item_ids, self.control)
        cached = tables._masks.get(key)
        if cached is None:
            cached = np.ones(bank.n_items)
            for item_id, k in zip(self.item_ids, self.control, strict=True):
                index = bank._index.get(item_id)
                if index is not None:
                    cached[index] = k
            cached.setflags(write=False)
            tables._masks[key] = cached
        return cached

    def choose(self, criterion, eligible, rng, lottery, *, theta=None, bank=None):
        if self.item_ids:
            if bank is None:
                raise ValueError("Sympson–Hetter by item id needs the bank")
            control = self.control_for(bank)
        else:
            control = np.asarray(self.control, dtype=float)
        if control.size == 0:
            control = np.ones(criterion.shape[1])
        if control.shape != (criterion.shape[1],):
            raise ValueError(
                f"Sympson–Hetter needs one control parameter per item ({criterion.shape[1]}), got {control.size}"
            )
        return _accept(criterion, eligible, lottery < control[None, :], self.randomesque_k, rng)


@dataclass(frozen=True)
class ConditionalSympsonHetter:
    """Sympson–Hetter conditional on ability (Stocking & Lewis, 1998).

    Test takers are grouped into strata by their overall ability, the mean of
    their area thetas, cut at ``cuts``; stratum s has its own control
    parameters ``control[s]``, so an item can be capped at the target rate
    within every ability group, not only on average (the unconditional rule
    lets an item be given to nearly everyone of one group). During a test the
    stratum is that of the current estimate; the lottery is the test's own, as
    for :class:`SympsonHetter`. Derive ``control`` with
    :func:`nangluc.simulations.exposure.conditional_sympson_hetter_control`.
    """

    cuts: tuple[float, ...] = (-1.0, 0.0, 1.0)
    control: tuple[tuple[float, ...], ...] = ()
    randomesque_k: int = 1
    uses_lottery: ClassVar[bool] = True

    def __post_init__(self) -> None:
        cuts = np.asarray(self.cuts, dtype=float)
        if cuts.ndim != 1 or not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) <= 0):
            raise ValueError("conditional Sympson–Hetter cuts must be increasing finite numbers")
        object.__setattr__(self, "cuts", tuple(float(c) for c in cuts))
        if self.control:
            k = np.asarray(self.control, dtype=float)
            if k.ndim != 2 or k.shape[0] != cuts.size + 1:
                raise ValueError(
                    f"conditional Sympson–Hetter needs one row of control parameters per stratum "
                    f"({cuts.size + 1})"
                )
            if np.any(~np.isfinite(k)) or np.any(k < 0) or np.any(k > 1):
                raise ValueError("Sympson–Hetter control parameters must lie in [0, 1]")
            object.__setattr__(self, "control", tuple(tuple(float(x) for x in row) for row in k))

    def stratum(self, theta: np.ndarray) -> np.ndarray:
        """Stratum (0..len(cuts)) of each row's overall ability, theta (R, A) -> (R,)."""
        return np.searchsorted(np.asarray(self.cuts), np.asarray(theta).mean(axis=1), side="right")

    def choose(self, criterion, eligible, rng, lottery, *, theta=None, bank=None):
        if not self.control:
            return _randomesque(criterion, eligible, self.randomesque_k, rng)
        if theta is None:
            raise ValueError("conditional Sympson–Hetter needs the current estimates")
        control = np.asarray(self.control, dtype=float)
        if control.shape[1] != criterion.shape[1]:
            raise ValueError(
                f"Sympson–Hetter needs one control parameter per item ({criterion.shape[1]}), "
                f"got {control.shape[1]}"
            )
        own = control[self.stratum(theta)]  # (R, I)
        return _accept(criterion, eligible, lottery < own, self.randomesque_k, rng)


def _accept(criterion, eligible, acceptable, k, rng):
    """The best acceptable eligible item (randomesque among ``k``); the best eligible if none."""
    accepted = eligible & acceptable
    use = np.where(accepted.any(axis=1)[:, None], accepted, eligible)
    return _randomesque(criterion, use, k, rng)


def update_sympson_hetter(
    control: np.ndarray, exposure_rate: np.ndarray, max_rate: float, *, growth: float = 1.25
) -> np.ndarray:
    """One Sympson–Hetter iteration: ``k <- min(1, r_max / P(selected))``.

    ``exposure_rate`` is each item's observed administration rate under the
    current ``control``; since each test draws one lottery number per item,
    independent of what led to the item being selected, the selection rate is
    ``P(selected) = rate / k``. Two safeguards keep the iterations from
    cycling (without them a lowered item that happened to get no exposure in
    one iteration went straight back to 1, was over-exposed in the next, and
    the maximum exposure ended above the target):

    * a lowered ``k`` grows by at most the factor ``growth`` per iteration
      (also when the item got no exposure, i.e. no evidence of its selection
      rate);
    * an item exposed above ``max_rate`` never gets a higher ``k``.
    """
    control = np.asarray(control, dtype=float)
    exposure_rate = np.asarray(exposure_rate, dtype=float)
    if control.shape != exposure_rate.shape:
        raise ValueError("control and exposure_rate need one value per item")
    if not 0 < max_rate <= 1:
        raise ValueError(f"max_rate must lie in (0, 1], got {max_rate}")
    if not growth > 1:
        raise ValueError(f"growth must be > 1, got {growth}")
    selection_rate = np.divide(
        exposure_rate, control, out=np.zeros_like(control), where=control > 0
    )
    new = np.where(selection_rate > max_rate, max_rate / np.maximum(selection_rate, 1e-12), 1.0)
    # A lowered item is raised by at most ``growth`` per iteration: its selection
    # rate rises again as the others are restricted, and a jump back to 1 made
    # the iterations cycle around the target instead of settling below it.
    new = np.minimum(new, growth * np.maximum(control, 1e-3))
    new = np.where(exposure_rate > max_rate, np.minimum(new, control), new)
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
