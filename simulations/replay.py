"""Post-hoc (real-data) simulation: recorded answers replayed through an adaptive test.

Each respondent's recorded answers stand in for the simulee: whenever the test
asks an item, the recorded answer to it is given, and items the respondent did
not answer are unavailable to that respondent alone. The reference is the
respondent's full-pattern score (every recorded answer, same estimator), so
the figures say how closely the adaptive test reproduces what the full set of
answers says, test length by test length — the classic check of a CAT before
it goes live (catR's and mirtCAT's post-hoc simulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.config import TestConfig
from nangluc.engine.estimation import estimate_areas, estimate_patterns
from nangluc.engine.scoring import score
from nangluc.engine.tables import bank_tables
from nangluc.simulations.core import (
    DEFAULT_CHUNK_SIZE,
    SimulationResult,
    _correlation,
    _round,
    run,
)


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """A replay of recorded answers (see the module docstring).

    Attributes
    ----------
    respondent_ids : tuple of str
    simulation : SimulationResult
        The adaptive tests; its ``true_theta``/``true_scores`` are the
        full-pattern estimates and scores (the reference, not a truth).
    full_theta, full_se : ndarray, shape (N, A)
        Estimates from every recorded answer.
    responses_available : ndarray of int, shape (N,)
        Recorded scored answers per respondent.
    by_length : tuple of dict
        For each maximum length L = 1.. the longest test: ``items`` (L),
        ``mean_items`` (answered under that cap), ``level_agreement``,
        ``score_correlation``, ``rmse`` and ``bias`` of the overall score
        against the full pattern. A test that stopped before L keeps its result.
    summary : dict
        JSON-ready figures.
    """

    respondent_ids: tuple[str, ...]
    simulation: SimulationResult
    full_theta: np.ndarray
    full_se: np.ndarray
    responses_available: np.ndarray
    by_length: tuple[dict, ...]
    summary: dict = field(repr=False)


def replay(
    bank: ItemBank,
    config: TestConfig,
    recorded: np.ndarray,
    rng: np.random.Generator,
    *,
    respondent_ids: tuple[str, ...] | None = None,
    progress: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 1,
) -> ReplayResult:
    """Replay recorded answers through the adaptive test ``config``.

    Parameters
    ----------
    bank : ItemBank
    config : TestConfig
    recorded : ndarray of int, shape (N, n_items)
        Each respondent's scored answer to each bank item, -1 where there is
        none (build it from a long response file with
        :func:`nangluc.simulations.recorded_matrix`).
    rng : numpy.random.Generator
        For the test's own randomness (exposure control, random selection).
    respondent_ids : tuple of str, optional
        Names of the rows (default "1".."N").

    Returns
    -------
    ReplayResult

    Raises
    ------
    ValueError
        A malformed matrix, a response outside its item's categories, or a
        respondent without any recorded answer to an operational item.
    """
    recorded = np.asarray(recorded)
    if recorded.ndim != 2 or recorded.shape[1] != bank.n_items or recorded.shape[0] < 1:
        raise ValueError(
            f"recorded answers must have shape (respondents, {bank.n_items}), got {recorded.shape}"
        )
    if not np.issubdtype(recorded.dtype, np.integer):
        raise ValueError("recorded answers must be integers (-1 for no answer)")
    recorded = recorded.astype(np.int16)
    if np.any(recorded < -1) or np.any(recorded >= bank.n_categories[None, :]):
        raise ValueError("a recorded answer is outside its item's categories")
    n = recorded.shape[0]
    ids = tuple(str(i) for i in (respondent_ids or range(1, n + 1)))
    if len(ids) != n:
        raise ValueError(f"{len(ids)} respondent ids for {n} rows")
    available = ((recorded >= 0) & bank.operational[None, :]).sum(axis=1)
    if np.any(available == 0):
        first = ids[int(np.flatnonzero(available == 0)[0])]
        raise ValueError(
            f"respondent {first} has no recorded answer to an operational item of bank "
            f"{bank.version}"
        )
    full_theta = np.empty((n, bank.n_areas))
    full_se = np.empty((n, bank.n_areas))
    for lo in range(0, n, 5_000):
        full_theta[lo : lo + 5_000], full_se[lo : lo + 5_000], _ = estimate_patterns(
            bank, config.estimator, recorded[lo : lo + 5_000]
        )
    simulation = run(
        bank,
        config,
        full_theta,
        rng,
        progress=progress,
        chunk_size=chunk_size,
        workers=workers,
        recorded=recorded,
    )
    by_length = _by_length(bank, config, simulation)
    summary = _summary(simulation, available, by_length)
    return ReplayResult(ids, simulation, full_theta, full_se, available, by_length, summary)


def _by_length(bank: ItemBank, config: TestConfig, result: SimulationResult) -> tuple[dict, ...]:
    """Agreement with the full pattern if every test had been cut at L scored items."""
    tables = bank_tables(bank)
    n = result.examinees
    items, responses = result.items, result.responses
    scored = (items >= 0) & bank.operational[np.maximum(items, 0)]
    longest = int(result.length.max())
    reference = result.true_scores
    rows = np.arange(n)
    loglik = np.zeros((n, bank.n_areas, tables.quadrature.size))
    # Each row's estimate after its first L scored answers (its last one once L
    # passes its length), built up one answer at a time.
    snapshot_theta = np.zeros((n, bank.n_areas))
    snapshot_se = np.ones((n, bank.n_areas))
    snapshot_corr = np.broadcast_to(np.eye(bank.n_areas), (n, bank.n_areas, bank.n_areas)).copy()
    rank = np.cumsum(scored, axis=1)
    out = []
    for length in range(1, longest + 1):
        # Add each row's L-th scored answer.
        want = scored & (rank == length)
        has = want.any(axis=1)
        if has.any():
            position = np.argmax(want[has], axis=1)
            item = items[rows[has], position]
            loglik[rows[has], bank.area[item]] += tables.log_prob[
                item, responses[rows[has], position]
            ]
            member = scored[has] & (rank[has] <= length)
            snapshot_theta[has], snapshot_se[has], snapshot_corr[has] = estimate_areas(
                bank, config.estimator, loglik[has], items[has], responses[has], member
            )
        scores = score(bank, snapshot_theta, snapshot_se, snapshot_corr)
        error = scores.overall_score - reference.overall_score
        out.append(
            {
                "items": length,
                "mean_items": _round(np.minimum(result.length, length).mean()),
                "level_agreement": _round(np.mean(scores.overall_level == reference.overall_level)),
                "score_correlation": _correlation(scores.overall_score, reference.overall_score),
                "rmse": _round(math.sqrt(float(np.mean(error**2)))),
                "bias": _round(error.mean()),
            }
        )
    return tuple(out)


def _summary(result: SimulationResult, available: np.ndarray, by_length: tuple[dict, ...]) -> dict:
    """The replay's JSON figures, named for what they compare (full pattern, not truth)."""
    s = result.summary
    return {
        "name": result.name,
        "mode": "replay",
        "respondents": result.examinees,
        "mean_items": s["mean_items"],
        "mean_responses_available": _round(available.mean()),
        "reference": "full-pattern score: every recorded answer, same estimator",
        "level_agreement": s["level_accuracy"],
        "score_correlation": s["score_correlation"],
        "rmse": s["rmse"],
        "bias": s["bias"],
        "mae": s["mae"],
        "theta_rmse": s["theta_rmse"],
        "area_level_agreement": s["area_level_accuracy"],
        "length": s["length"],
        "stop_reasons": s["stop_reasons"],
        "exposure_max": s["exposure_max"],
        "overlap": s["overlap"],
        "seconds": s["seconds"],
        "by_length": list(by_length),
        "config": s["config"],
    }


def recorded_matrix(data, bank: ItemBank) -> tuple[np.ndarray, tuple[str, ...]]:
    """(respondents x bank items) answers, -1 for none, from long response data.

    ``data`` is a :class:`nangluc.calibration.data.ResponseData` read with the
    bank (so its item ids are the bank's).
    """
    index = bank.indices(data.item_ids)
    matrix = np.full((data.n_respondents, bank.n_items), -1, dtype=np.int16)
    matrix[data.person, index[data.item]] = data.response
    return matrix, tuple(data.respondent_ids)
