"""The adaptive test as arrays: N tests advance in lockstep by a pure step.

The service advances one test (N = 1, see :mod:`nangluc.engine.session`); the
simulator advances thousands. Both call :func:`start` and :func:`advance`, so
there is one implementation of selection, estimation and stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.config import TestConfig
from nangluc.engine.estimation import JointPosterior, estimate_areas
from nangluc.engine.scoring import score
from nangluc.engine.stopping import StopContext
from nangluc.engine.tables import bank_tables

#: Why a test stopped; index 0 means it has not.
STOP_REASONS: tuple[str, ...] = ("", "max_items", "no_item_left")


class NoItemLeftError(ValueError):
    """Raised when a test is asked for an item but none is eligible."""


@dataclass(frozen=True, eq=False)
class CatBatch:
    """State of N adaptive tests (one row each). Treat as immutable.

    ``items``/``responses`` hold the administered items in order (bank index,
    -1 padding); ``scored`` marks operational items, whose responses enter the
    estimate. ``loglik`` is each row's per-area log-likelihood on the
    quadrature grid. ``next_item`` is -1 for finished rows.
    """

    administered: np.ndarray  # (N, I) bool
    items: np.ndarray  # (N, L) int
    responses: np.ndarray  # (N, L) int
    scored: np.ndarray  # (N, L) bool
    length: np.ndarray  # (N,) items administered (scored and pretest)
    area_counts: np.ndarray  # (N, A) scored items per area
    kind_counts: np.ndarray  # (N, 3) scored items per kind (knowledge, skill, attitude)
    loglik: np.ndarray  # (N, A, Q)
    theta: np.ndarray  # (N, A)
    se: np.ndarray  # (N, A)
    theta_corr: np.ndarray  # (N, A, A) posterior correlation of the areas (I if estimated apart)
    next_item: np.ndarray  # (N,)
    finished: np.ndarray  # (N,) bool
    stop_reason: np.ndarray  # (N,) object (str)
    lottery: np.ndarray  # (N, I) one uniform draw per item per test (exposure control)
    # (N, I) bool: items never to give this test taker (e.g. not in a record); None: no such item
    unavailable: np.ndarray | None
    # (N,) posterior probability of the estimated overall level at the last stopping check
    # (NaN where no level rule needed it); None: not tracked
    level_probability: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.length.shape[0])

    @property
    def scored_length(self) -> np.ndarray:
        return self.area_counts.sum(axis=1)


def _replace(batch: CatBatch, **changes: np.ndarray) -> CatBatch:
    """``dataclasses.replace`` without re-running ``__init__``: a step makes two
    new batches, and for one session the generic replace cost as much as the
    estimate update."""
    new = object.__new__(CatBatch)
    new.__dict__.update(batch.__dict__, **changes)
    return new


def capacity(config: TestConfig) -> int:
    """Columns needed for a test's administered items (scored plus pretest)."""
    return config.max_items + len(config.pretest_positions)


def _operational_pool(bank: ItemBank, config: TestConfig) -> np.ndarray:
    """Operational items not excluded by ``config`` (I,), cached per bank and exclusion list."""
    tables = bank_tables(bank)
    key = ("operational pool", config.excluded)
    pool = tables._masks.get(key)
    if pool is None:
        pool = bank.operational & ~_excluded_mask(bank, config)
        pool.setflags(write=False)
        tables._masks[key] = pool
    return pool


def _excluded_mask(bank: ItemBank, config: TestConfig) -> np.ndarray:
    # Unknown ids in an exclusion list are harmless (a shared list across banks).
    return bank_tables(bank).item_mask(config.excluded, bank)


def empty(
    bank: ItemBank,
    config: TestConfig,
    n: int,
    rng: np.random.Generator | None = None,
    *,
    unavailable: np.ndarray | None = None,
    initial_theta: np.ndarray | None = None,
) -> CatBatch:
    """N fresh tests with the prior estimate and no item chosen yet.

    The first draws of ``rng`` (if given) are the tests' exposure lotteries.
    ``unavailable`` (N, I) marks items a test taker must never get (in a
    replay of recorded answers: the items they did not answer).
    ``initial_theta`` (N, A) is each test taker's starting estimate, used to
    choose items until an answer in the area moves it (the standard errors
    stay the estimator's prior ones).
    """
    if n < 1:
        raise ValueError(f"need at least one test, got {n}")
    tables = bank_tables(bank)
    width = capacity(config)
    loglik = np.zeros((n, bank.n_areas, tables.quadrature.size))
    items = np.full((n, width), -1, dtype=np.int32)
    responses = np.full((n, width), -1, dtype=np.int16)
    scored = np.zeros((n, width), dtype=bool)
    if n == 1 and config.estimator is config.posterior:
        # One new test (every session start): the prior's posterior, the same for all.
        prior = _prior_posterior(bank, config.posterior)
        theta, se, correlation = prior.theta.copy(), prior.se.copy(), prior.correlation.copy()
    else:
        theta, se, correlation = estimate_areas(
            bank, config.estimator, loglik, items, responses, scored
        )
    lottery = (rng if rng is not None else np.random.default_rng(0)).random((n, bank.n_items))
    if initial_theta is not None:
        initial_theta = np.asarray(initial_theta, dtype=float)
        if initial_theta.shape != (n, bank.n_areas) or not np.all(np.isfinite(initial_theta)):
            raise ValueError(
                f"initial theta must be finite with shape ({n}, {bank.n_areas}), "
                f"got {initial_theta.shape}"
            )
        theta = initial_theta.copy()
    if unavailable is not None:
        unavailable = np.asarray(unavailable, dtype=bool)
        if unavailable.shape != (n, bank.n_items):
            raise ValueError(
                f"unavailable items must have shape ({n}, {bank.n_items}), got {unavailable.shape}"
            )
    return CatBatch(
        administered=np.zeros((n, bank.n_items), dtype=bool),
        items=items,
        responses=responses,
        scored=scored,
        length=np.zeros(n, dtype=np.int32),
        area_counts=np.zeros((n, bank.n_areas), dtype=np.int32),
        kind_counts=np.zeros((n, len(KINDS)), dtype=np.int32),
        loglik=loglik,
        theta=theta,
        se=se,
        theta_corr=correlation,
        next_item=np.full(n, -1, dtype=np.int32),
        finished=np.zeros(n, dtype=bool),
        stop_reason=np.full(n, "", dtype=object),
        lottery=lottery,
        unavailable=unavailable,
        level_probability=np.full(n, np.nan),
    )


def start(
    bank: ItemBank,
    config: TestConfig,
    n: int,
    rng: np.random.Generator,
    *,
    selection_theta: np.ndarray | None = None,
    unavailable: np.ndarray | None = None,
    initial_theta: np.ndarray | None = None,
) -> CatBatch:
    """Start N tests: prior estimates and the first item of each.

    ``unavailable`` and ``initial_theta`` are per test taker (see :func:`empty`).
    """
    batch = empty(bank, config, n, rng, unavailable=unavailable, initial_theta=initial_theta)
    posterior = None  # the level rules' posterior, when it is the estimates' own
    if n == 1 and initial_theta is None and config.estimator is config.posterior:
        posterior = _prior_posterior(bank, config.posterior)
    return _select_or_finish(bank, config, batch, np.arange(n), rng, selection_theta, posterior)


def _prior_posterior(bank: ItemBank, model) -> JointPosterior:
    """``model``'s posterior of one test taker with no answers yet (read-only, cached per bank).

    Every test starts from it: computed once instead of twice per start (the
    estimates, then the level rules).
    """

    def build() -> JointPosterior:
        tables = bank_tables(bank)
        prior = model.posterior(bank, np.zeros((1, bank.n_areas, tables.quadrature.size)))
        for array in (prior.weights, prior.theta, prior.se, prior.correlation):
            array.setflags(write=False)
        return prior

    return bank_tables(bank).cached(("prior posterior", model), build)


def advance(
    bank: ItemBank,
    config: TestConfig,
    batch: CatBatch,
    responses: np.ndarray,
    rng: np.random.Generator,
    *,
    selection_theta: np.ndarray | None = None,
) -> CatBatch:
    """Record each unfinished row's response to its ``next_item`` and move on.

    Pure: returns a new batch. ``responses`` (N,) are scored categories
    (ignored for finished rows). ``selection_theta`` (N, A), if given, is used
    instead of the estimates to choose items (true-theta selection in simulations).

    Raises
    ------
    ValueError
        If a response is outside its item's categories.
    """
    responses = np.asarray(responses).reshape(-1)
    if responses.shape != (batch.n,):
        raise ValueError(f"need one response per test ({batch.n}), got {responses.shape[0]}")
    rows = np.flatnonzero(~batch.finished)
    if rows.size == 0:
        return batch
    item = batch.next_item[rows].astype(np.intp)
    if (item < 0).any():
        raise ValueError("a test has no current item to answer")
    response = responses[rows].astype(np.intp)
    n_cat = bank.n_categories[item]
    bad = (response < 0) | (response >= n_cat)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"response {int(response[first])} is out of range for item {bank.item_ids[item[first]]} "
            f"(expected 0..{int(n_cat[first]) - 1})"
        )

    tables = bank_tables(bank)
    position = batch.length[rows]
    is_scored = bank.operational[item]
    area = bank.area[item].astype(np.intp)

    administered = batch.administered.copy()
    administered[rows, item] = True
    items = batch.items.copy()
    items[rows, position] = item
    stored = batch.responses.copy()
    stored[rows, position] = response
    scored = batch.scored.copy()
    scored[rows, position] = is_scored
    length = batch.length.copy()
    length[rows] += 1
    area_counts = batch.area_counts.copy()
    # Each row answers one item, so (row, area) pairs are unique: plain += is exact.
    area_counts[rows[is_scored], area[is_scored]] += 1
    kind_counts = batch.kind_counts.copy()
    kind_counts[rows[is_scored], bank.kind[item[is_scored]]] += 1
    loglik = batch.loglik.copy()
    # Pretest answers change no estimate.
    loglik[rows[is_scored], area[is_scored]] += tables.log_prob[
        item[is_scored], response[is_scored]
    ]
    batch = _replace(
        batch,
        administered=administered,
        items=items,
        responses=stored,
        scored=scored,
        length=length,
        area_counts=area_counts,
        kind_counts=kind_counts,
        loglik=loglik,
    )
    return settle(
        bank,
        config,
        batch,
        rows,
        np.where(is_scored, area, -1),
        rng,
        selection_theta=selection_theta,
    )


def settle(
    bank: ItemBank,
    config: TestConfig,
    batch: CatBatch,
    rows: np.ndarray,
    answered_area: np.ndarray,
    rng: np.random.Generator,
    *,
    selection_theta: np.ndarray | None = None,
) -> CatBatch:
    """Second half of a step: update the estimates of ``rows`` and choose their next items.

    ``batch`` already holds the rows' new answers (items, responses, counts,
    log-likelihoods); ``answered_area`` (R,) is the area of each row's new
    scored answer, or -1 for a pretest answer, which changes no estimate.
    :func:`advance` records the answers of a batch and calls this; a single
    session rebuilds its arrays with the answer in place
    (:func:`nangluc.engine.session.answer_item`) and calls it directly.
    """
    scored_rows = answered_area >= 0
    upd = rows[scored_rows]
    posterior = None  # the posterior of ``rows`` for the level rules, when it is at hand
    if upd.size:
        everything = upd.size == batch.n  # every row moved (always so for one session)
        if config.estimator is config.posterior:
            # The estimator is the test's posterior model: its posterior gives the
            # estimates and, for the stopping rules, the levels (computed once).
            joint = config.posterior.posterior(
                bank, batch.loglik if everything else batch.loglik[upd]
            )
            if everything:
                theta, se, theta_corr = joint.theta, joint.se, joint.correlation
            else:
                theta, se, theta_corr = batch.theta.copy(), batch.se.copy(), batch.theta_corr.copy()
                theta[upd], se[upd], theta_corr[upd] = joint.theta, joint.se, joint.correlation
            if upd.size == rows.size:
                posterior = joint if everything else _rows_of(joint, rows, upd)
        elif hasattr(config.estimator, "estimate_joint"):
            # Every area's estimate moves: the areas share information.
            if everything:
                theta, se, theta_corr = config.estimator.estimate_joint(bank, batch.loglik)
            else:
                theta, se, theta_corr = batch.theta.copy(), batch.se.copy(), batch.theta_corr.copy()
                theta[upd], se[upd], theta_corr[upd] = config.estimator.estimate_joint(
                    bank, batch.loglik[upd]
                )
        else:
            # Only the answered area of each row changes.
            upd_area = answered_area[scored_rows]
            row_items = batch.items[upd]
            member = batch.scored[upd] & (row_items >= 0)
            member &= bank.area[np.where(member, row_items, 0)] == upd_area[:, None]
            theta, se, theta_corr = batch.theta.copy(), batch.se.copy(), batch.theta_corr
            theta[upd, upd_area], se[upd, upd_area] = config.estimator.estimate(
                bank, batch.loglik[upd, upd_area], row_items, batch.responses[upd], member
            )
        batch = _replace(batch, theta=theta, se=se, theta_corr=theta_corr)
    return _select_or_finish(bank, config, batch, rows, rng, selection_theta, posterior)


def _rows_of(joint: JointPosterior, rows: np.ndarray, upd: np.ndarray) -> JointPosterior | None:
    """``joint`` (computed for ``upd``) in the order of ``rows``, if they are the same rows."""
    if not np.array_equal(rows, upd):
        return None
    return joint


def stop_rules_met(
    bank: ItemBank,
    config: TestConfig,
    batch: CatBatch,
    rows: np.ndarray,
    posterior: JointPosterior | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``rows`` meet a stopping target (after the minimum length), and why.

    ``posterior`` is the rows' posterior under the test's model if the caller
    has it already (else the level rules compute it from the rows' evidence).
    """
    stop, reason, _ = _stop_rules(bank, config, batch, rows, posterior)
    return stop, reason


def _stop_rules(
    bank: ItemBank,
    config: TestConfig,
    batch: CatBatch,
    rows: np.ndarray,
    posterior: JointPosterior | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`stop_rules_met` and the rows' probability of their estimated overall level
    (NaN unless a level rule computed the posterior anyway)."""
    scored_length = batch.area_counts[rows].sum(axis=1)
    context = StopContext(
        length=scored_length,
        area_counts=batch.area_counts[rows],
        theta=batch.theta[rows],
        se=batch.se[rows],
        scores=(
            score(bank, batch.theta[rows], batch.se[rows], batch.theta_corr[rows])
            if any(getattr(rule, "uses_scores", True) for rule in config.stopping)
            else None
        ),
        scored_areas=bank_tables(bank).scored_areas,
        bank=bank,
        loglik=batch.loglik[rows],
        posterior_model=config.posterior,
        posterior=posterior,
    )
    stop = np.zeros(rows.size, dtype=bool)
    reason = np.full(rows.size, "", dtype=object)
    for rule in config.stopping:
        hit = rule.met(context) & ~stop
        reason[hit] = rule.reason
        stop |= hit
    stop &= scored_length >= config.min_items
    reason[~stop] = ""
    at_max = (scored_length >= config.max_items) & ~stop
    reason[at_max] = "max_items"
    if "levels" in context.__dict__ and context.scores is not None:  # computed by a level rule
        stated = context.overall_level_probability
    else:
        stated = np.full(rows.size, np.nan)
    return stop | at_max, reason, stated


def _select_or_finish(
    bank: ItemBank,
    config: TestConfig,
    batch: CatBatch,
    rows: np.ndarray,
    rng: np.random.Generator,
    selection_theta: np.ndarray | None,
    posterior: JointPosterior | None = None,
) -> CatBatch:
    """Evaluate stopping for ``rows``, then choose the next item of those going on."""
    finished = batch.finished.copy()
    stop_reason = batch.stop_reason.copy()
    next_item = batch.next_item.copy()
    next_item[rows] = -1

    stop, reason, stated = _stop_rules(bank, config, batch, rows, posterior)
    finished[rows[stop]] = True
    stop_reason[rows[stop]] = reason[stop]
    going = rows[~stop]

    if going.size:
        # Pretest seeding: at the configured positions, an unscored item at random.
        seeded = np.zeros(going.size, dtype=bool)
        pretest_pool = (
            ~bank.operational & ~_excluded_mask(bank, config) if config.pretest_positions else None
        )
        if pretest_pool is not None and pretest_pool.any():
            at_position = np.isin(batch.length[going], config.pretest_positions)
            choices = pretest_pool[None, :] & ~batch.administered[going]
            seeded = at_position & choices.any(axis=1)
            if seeded.any():
                keys = np.where(
                    choices[seeded], rng.random((int(seeded.sum()), bank.n_items)), -1.0
                )
                next_item[going[seeded]] = np.argmax(keys, axis=1)
        chosen_rows = going[~seeded]
        if chosen_rows.size:
            picked, none_left = select(bank, config, batch, chosen_rows, rng, selection_theta)
            next_item[chosen_rows] = picked
            finished[chosen_rows[none_left]] = True
            stop_reason[chosen_rows[none_left]] = "no_item_left"
            next_item[chosen_rows[none_left]] = -1
    level_probability = batch.level_probability
    if level_probability is not None:
        level_probability = level_probability.copy()
        level_probability[rows] = stated
    return _replace(
        batch,
        finished=finished,
        stop_reason=stop_reason,
        next_item=next_item,
        level_probability=level_probability,
    )


def select(
    bank: ItemBank,
    config: TestConfig,
    batch: CatBatch,
    rows: np.ndarray,
    rng: np.random.Generator,
    selection_theta: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Next item for each of ``rows`` and whether no informative item is left.

    Returns bank indices (R,) (-1 where none is left) and a bool (R,).
    """
    eligible = ~batch.administered[rows] & _operational_pool(bank, config)
    if batch.unavailable is not None:
        eligible &= ~batch.unavailable[rows]
    view = (
        batch
        if selection_theta is None
        else replace(batch, theta=np.asarray(selection_theta, dtype=float))
    )
    # "Informative" is judged by point information at the item area's estimate
    # (information is never negative, so a zero threshold excludes nothing).
    if config.min_information > 0:
        low, high = bank_tables(bank).informative_range(config.min_information)
        theta_item = view.theta[rows][:, bank.area]
        eligible &= (theta_item >= low) & (theta_item <= high)
    none_left = ~eligible.any(axis=1)
    for rule in config.content:
        eligible = rule.allowed(bank, view, rows, eligible)
    criterion = config.selector.criterion(bank, view, rows, estimator=config.estimator, rng=rng)
    if config.shadow is not None:
        eligible = config.shadow.allowed(bank, view, rows, eligible, criterion)
    if config.exposure is None:
        picked = np.argmax(np.where(eligible, criterion, -np.inf), axis=1)
    else:
        picked = config.exposure.choose(
            criterion, eligible, rng, batch.lottery[rows], theta=view.theta[rows], bank=bank
        )
    if config.start is not None:
        # The start rule decides the first items where it applies (-1 elsewhere).
        first = config.start.choose(bank, view, rows, eligible, criterion, rng)
        picked = np.where(first >= 0, first, picked)
    picked = np.where(none_left, -1, picked)
    return picked.astype(np.int32), none_left
