"""Vectorized CAT simulation through the engine's own step functions.

All simulees of a chunk advance in lockstep as one :class:`nangluc.engine.cat.CatBatch`
with :func:`nangluc.engine.cat.start` and :func:`nangluc.engine.cat.advance` — the functions
the service calls for one test — so selection, estimation and stopping have a
single implementation. This module only draws responses from the true
abilities, drops finished rows to keep the arrays small, and measures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from nangluc.engine import cat, irt
from nangluc.engine.bank import ItemBank
from nangluc.engine.config import TestConfig
from nangluc.engine.estimation import estimate_patterns
from nangluc.engine.scoring import (
    Scores,
    level_posterior,
    root_mean_square_error,
    score,
)
from nangluc.engine.selection import (
    MaximumInformation,
    OverallPrecision,
    PosteriorWeightedInformation,
)
from nangluc.engine.stopping import settled as settled_flags

#: Simulees per chunk. Fixed (not derived from the number of workers) so that
#: the same seed gives the same numbers however many processes run; about a
#: thousand rows keep the engine's (rows x items) arrays in cache.
DEFAULT_CHUNK_SIZE = 1024


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What happened to every simulee of one simulated design.

    Arrays have one row per simulee (N) in the order of ``true_theta``.

    Attributes
    ----------
    name : str
        Name of the design (the config's name, ``+true-theta`` for true-theta selection).
    config : TestConfig
        The rules that were run.
    true_theta, theta, theta_se : ndarray, shape (N, A)
        True abilities, final estimates and their standard errors.
    theta_corr : ndarray, shape (N, A, A)
        Posterior correlation of the area estimates (identity when the
        areas are estimated apart); enters the overall score's SE.
    true_scores, scores : engine.scoring.Scores
        Area and overall scores at the true abilities (SE 0) and at the
        estimates.
    length : ndarray of int, shape (N,)
        Scored items answered.
    administered : ndarray of int, shape (N,)
        Items answered including unscored pretest items.
    area_counts : ndarray of int, shape (N, A)
        Scored items answered per area.
    items, responses : ndarray, shape (N, L)
        Administered items (bank indices, -1 padding) and responses.
    stop_reason : ndarray of str, shape (N,)
    level_probabilities : ndarray, shape (N, L)
        Posterior probability of each overall level at the end of the test
        (columns in the order of the bank's ``scale.levels``), as the test's
        result states it.
    area_level_probabilities : ndarray, shape (N, A, L)
    posterior_mean, posterior_sd : ndarray, shape (N,)
        Posterior mean and SD of the overall score.
    interval : ndarray, shape (N, 2)
        95% posterior interval of the overall score.
    settled, area_settled : ndarray of bool, shapes (N,) and (N, A)
        Whether the result is settled (the test's level rule holds).
    exposure : ndarray of float, shape (n_items,)
        Share of simulees who were given each item.
    seconds : float
        Wall-clock time of the simulation (not of the summary).
    summary : dict
        JSON-ready figures (see :func:`summarize`).
    """

    name: str
    config: TestConfig
    area_codes: tuple[str, ...]
    true_theta: np.ndarray
    theta: np.ndarray
    theta_se: np.ndarray
    theta_corr: np.ndarray
    true_scores: Scores
    scores: Scores
    length: np.ndarray
    administered: np.ndarray
    area_counts: np.ndarray
    items: np.ndarray
    responses: np.ndarray
    stop_reason: np.ndarray
    level_probabilities: np.ndarray
    area_level_probabilities: np.ndarray
    posterior_mean: np.ndarray
    posterior_sd: np.ndarray
    interval: np.ndarray
    settled: np.ndarray
    area_settled: np.ndarray
    exposure: np.ndarray
    seconds: float
    summary: dict = field(repr=False)

    @property
    def reported_se(self) -> np.ndarray:
        """The overall score's SE as results report it (posterior RMS error), (N,)."""
        return root_mean_square_error(
            self.posterior_mean, self.posterior_sd, self.scores.overall_score
        )

    @property
    def stated_probability(self) -> np.ndarray:
        """Posterior probability of the overall level each result states, (N,)."""
        return self.scores.scale.probability_of_level(
            self.level_probabilities, self.scores.overall_score
        )

    @property
    def examinees(self) -> int:
        return int(self.true_theta.shape[0])

    @property
    def true_level(self) -> np.ndarray:
        """True overall level codes (the bank's framework)."""
        return self.true_scores.overall_level

    @property
    def level(self) -> np.ndarray:
        """Estimated overall level codes (the bank's framework)."""
        return self.scores.overall_level


@dataclass(frozen=True, eq=False)
class FullBankResult:
    """Scores from answering every operational item (the reference accuracy).

    Attributes
    ----------
    theta, theta_se : ndarray, shape (N, A)
    true_scores, scores : engine.scoring.Scores
    seconds : float
    summary : dict
        ``level_accuracy``, ``rmse``, ``bias`` of the overall score,
        ``theta_rmse`` per area, ``items`` (the number answered).
    """

    theta: np.ndarray
    theta_se: np.ndarray
    true_scores: Scores
    scores: Scores
    seconds: float
    summary: dict = field(repr=False)


# ------------------------------------------------------------------ checks
def check_true_theta(bank: ItemBank, true_theta: np.ndarray) -> np.ndarray:
    """Validate true abilities against a bank: finite, shape (N, n_areas), N >= 1."""
    theta = np.asarray(true_theta, dtype=float)
    if theta.ndim == 1 and bank.n_areas == 1:
        theta = theta[:, None]
    if theta.ndim != 2 or theta.shape[1] != bank.n_areas:
        raise ValueError(
            f"true theta must have shape (simulees, {bank.n_areas}) for a bank with "
            f"{bank.n_areas} area(s), got {theta.shape}"
        )
    if theta.shape[0] < 1:
        raise ValueError("need at least one simulee")
    if not np.all(np.isfinite(theta)):
        raise ValueError("true theta must be finite")
    return theta


def true_theta_selection_config(config: TestConfig) -> TestConfig:
    """The rules of ``config`` with items chosen at the true abilities.

    Items are chosen with the true theta (``selection_theta``), so selectors
    that average over the posterior are replaced by their point-information
    form, and exposure control and start rules are dropped (the best item is
    given). Content rules, length limits and stopping rules — which act on
    the estimates — are unchanged.

    This is a reference for item selection, not a bound: with a Bayesian
    estimate the items most informative at the true theta need not be those
    that sharpen the estimate fastest, and in simulation this selection was
    less accurate than the real test at every fixed length under EAP (#16).
    It used to be called the "oracle CAT".
    """
    selector = config.selector
    if isinstance(selector, PosteriorWeightedInformation):
        selector = MaximumInformation()
    elif isinstance(selector, OverallPrecision) and selector.posterior_weighted:
        selector = dataclasses.replace(selector, posterior_weighted=False)
    return dataclasses.replace(
        config, name=f"{config.name}+true-theta", selector=selector, exposure=None, start=None
    )


# --------------------------------------------------------------------- run
def run(
    bank: ItemBank,
    config: TestConfig,
    true_theta: np.ndarray,
    rng: np.random.Generator,
    *,
    true_theta_selection: bool = False,
    progress: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 1,
    recorded: np.ndarray | None = None,
) -> SimulationResult:
    """Run simulees with abilities ``true_theta`` through an adaptive test.

    Parameters
    ----------
    bank : ItemBank
    config : TestConfig
        The rules of the test (selection, estimation, stopping, ...).
    true_theta : ndarray, shape (N, n_areas)
        True ability of each simulee in each area.
    rng : numpy.random.Generator
        Seeds one independent stream per chunk of simulees; the same
        generator state gives the same result for any ``workers``.
    true_theta_selection : bool
        Choose items with the true theta (see :func:`true_theta_selection_config`).
    progress : bool
        Show a progress bar of finished simulees (tqdm, on stderr).
    chunk_size : int
        Simulees advanced together; smaller chunks use less memory.
    workers : int
        Processes for the chunks (1 runs in this process).
    recorded : ndarray of int, shape (N, n_items), optional
        Recorded answers (-1 = none) to replay instead of drawing answers
        from ``true_theta`` (see :func:`replay`).

    Returns
    -------
    SimulationResult
    """
    theta_true = check_true_theta(bank, true_theta)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    run_config = true_theta_selection_config(config) if true_theta_selection else config
    n = theta_true.shape[0]
    bounds = [(lo, min(lo + chunk_size, n)) for lo in range(0, n, chunk_size)]
    seeds = rng.integers(0, 2**63 - 1, size=len(bounds))

    started = time.perf_counter()
    bar = _progress_bar(n, progress, run_config.name)
    parts: list[dict | None] = [None] * len(bounds)
    try:
        if workers == 1 or len(bounds) == 1:
            with _single_threaded_blas():
                for k, (lo, hi) in enumerate(bounds):
                    parts[k] = simulate_chunk(
                        bank,
                        run_config,
                        theta_true[lo:hi],
                        int(seeds[k]),
                        true_theta_selection,
                        bar.update if bar else None,
                        None if recorded is None else recorded[lo:hi],
                    )
        else:
            # Fresh (spawned) workers with one BLAS thread each: the engine's
            # small matrix products gain nothing from threads, and threads of
            # several processes fighting over the cores cost a lot.
            context = multiprocessing.get_context("spawn")
            with (
                _environment(**{name: "1" for name in _BLAS_THREAD_VARIABLES}),
                ProcessPoolExecutor(
                    max_workers=min(workers, len(bounds)), mp_context=context
                ) as pool,
            ):
                futures = {
                    pool.submit(
                        simulate_chunk,
                        bank,
                        run_config,
                        theta_true[lo:hi],
                        int(seeds[k]),
                        true_theta_selection,
                        None,
                        None if recorded is None else recorded[lo:hi],
                    ): k
                    for k, (lo, hi) in enumerate(bounds)
                }
                for future in as_completed(futures):
                    k = futures[future]
                    parts[k] = future.result()
                    if bar:
                        bar.update(bounds[k][1] - bounds[k][0])
    finally:
        if bar:
            bar.close()
    seconds = time.perf_counter() - started
    return _assemble(bank, run_config, theta_true, parts, seconds)


def simulate_chunk(
    bank: ItemBank,
    config: TestConfig,
    true_theta: np.ndarray,
    seed: int,
    true_theta_selection: bool = False,
    on_finished: Callable[[int], object] | None = None,
    recorded: np.ndarray | None = None,
) -> dict:
    """Advance one chunk of simulees to the end of their tests.

    Returns the final arrays of every row (a plain dict, cheap to send
    between processes). ``on_finished(k)`` is called as k more rows finish.
    With ``recorded`` (n, I), the answers are read from it instead of drawn
    from ``true_theta``, and items without a recorded answer (-1) are
    unavailable to that row.
    """
    rng = np.random.default_rng(seed)
    n = true_theta.shape[0]
    selection = true_theta if true_theta_selection else None
    unavailable = None if recorded is None else recorded < 0
    batch = cat.start(bank, config, n, rng, selection_theta=selection, unavailable=unavailable)
    rows = np.arange(n)  # chunk row of each batch row
    out = _empty_outputs(bank, config, n)
    width = out["items"].shape[1]
    while True:
        finished = batch.finished
        n_finished = int(finished.sum())
        if n_finished == rows.size or n_finished * 2 >= rows.size:
            # Collect the finished rows and drop them: the engine copies its
            # arrays at every step, so a batch of live rows only is cheaper.
            _collect(out, bank, config, batch, rows, finished, width)
            if on_finished and n_finished:
                on_finished(n_finished)
            if n_finished == rows.size:
                break
            keep = ~finished
            batch = _take_rows(batch, keep)
            rows = rows[keep]
            if selection is not None:
                selection = true_theta[rows]
        going = np.flatnonzero(~batch.finished)
        item = batch.next_item[going]
        responses = np.zeros(batch.n, dtype=np.int16)
        if recorded is None:
            responses[going] = irt.simulate_responses(
                bank, true_theta[rows[going], bank.area[item]], item, rng
            )
        else:
            responses[going] = recorded[rows[going], item]
        batch = cat.advance(bank, config, batch, responses, rng, selection_theta=selection)
    return out


def _empty_outputs(bank: ItemBank, config: TestConfig, n: int) -> dict:
    width = cat.capacity(config)
    return {
        "theta": np.zeros((n, bank.n_areas)),
        "theta_se": np.zeros((n, bank.n_areas)),
        "theta_corr": np.zeros((n, bank.n_areas, bank.n_areas)),
        "items": np.full((n, width), -1, dtype=np.int32),
        "responses": np.full((n, width), -1, dtype=np.int16),
        "administered": np.zeros(n, dtype=np.int32),
        "area_counts": np.zeros((n, bank.n_areas), dtype=np.int32),
        "stop_reason": np.full(n, "", dtype=object),
        "level_probabilities": np.zeros((n, bank.scale.n_levels)),
        "area_level_probabilities": np.zeros((n, bank.n_areas, bank.scale.n_levels)),
        "posterior_mean": np.zeros(n),
        "posterior_sd": np.zeros(n),
        "interval": np.zeros((n, 2)),
        "settled": np.zeros(n, dtype=bool),
        "area_settled": np.zeros((n, bank.n_areas), dtype=bool),
    }


def _collect(
    out: dict,
    bank: ItemBank,
    config: TestConfig,
    batch: cat.CatBatch,
    rows: np.ndarray,
    finished: np.ndarray,
    width: int,
) -> None:
    target = rows[finished]
    if target.size:
        # What the test's result states at its end (as engine.session.score_test does).
        posterior = config.posterior.posterior(bank, batch.loglik[finished])
        levels = level_posterior(bank, posterior.weights, posterior.correlation)
        scores = score(bank, batch.theta[finished], batch.se[finished], batch.theta_corr[finished])
        overall, areas = settled_flags(
            bank, config.settling, levels, scores.overall_score, scores.area_score
        )
        out["level_probabilities"][target] = levels.overall_probabilities
        out["area_level_probabilities"][target] = levels.area_probabilities
        out["posterior_mean"][target] = levels.overall_mean
        out["posterior_sd"][target] = levels.overall_sd
        out["interval"][target] = levels.overall_interval(bank)
        out["settled"][target] = overall
        out["area_settled"][target] = areas
    out["theta"][target] = batch.theta[finished]
    out["theta_se"][target] = batch.se[finished]
    out["theta_corr"][target] = batch.theta_corr[finished]
    out["items"][target] = batch.items[finished, :width]
    out["responses"][target] = batch.responses[finished, :width]
    out["administered"][target] = batch.length[finished]
    out["area_counts"][target] = batch.area_counts[finished]
    out["stop_reason"][target] = batch.stop_reason[finished]


def _take_rows(batch: cat.CatBatch, keep: np.ndarray) -> cat.CatBatch:
    """The batch restricted to the rows where ``keep`` is true (rows are independent)."""
    n = batch.n
    changes = {}
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            changes[f.name] = value[keep]
    return dataclasses.replace(batch, **changes)


_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables for child processes started inside the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _single_threaded_blas():
    """Limit BLAS to one thread in this process if threadpoolctl is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _progress_bar(total: int, enabled: bool, name: str):
    if not enabled:
        return None
    from tqdm import tqdm

    # The bar stays when it is full: a log (or a terminal) shows what ran and how long.
    return tqdm(total=total, desc=f"simulate {name}", unit="simulee", unit_scale=True, leave=True)


def _assemble(
    bank: ItemBank, config: TestConfig, true_theta: np.ndarray, parts: list, seconds: float
) -> SimulationResult:
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    true_scores = score(bank, true_theta, np.zeros_like(true_theta))
    scores = score(bank, merged["theta"], merged["theta_se"], merged["theta_corr"])
    items = merged["items"]
    given = items >= 0
    counts = np.bincount(items[given], minlength=bank.n_items)
    exposure = counts / true_theta.shape[0]
    length = merged["area_counts"].sum(axis=1)
    result = SimulationResult(
        name=config.name,
        config=config,
        area_codes=bank.area_codes,
        true_theta=true_theta,
        theta=merged["theta"],
        theta_se=merged["theta_se"],
        theta_corr=merged["theta_corr"],
        true_scores=true_scores,
        scores=scores,
        length=length,
        administered=merged["administered"],
        area_counts=merged["area_counts"],
        items=items,
        responses=merged["responses"],
        stop_reason=merged["stop_reason"],
        level_probabilities=merged["level_probabilities"],
        area_level_probabilities=merged["area_level_probabilities"],
        posterior_mean=merged["posterior_mean"],
        posterior_sd=merged["posterior_sd"],
        interval=merged["interval"],
        settled=merged["settled"],
        area_settled=merged["area_settled"],
        exposure=exposure,
        seconds=seconds,
        summary={},
    )
    object.__setattr__(result, "summary", summarize(result, bank))
    return result


# ---------------------------------------------------------------- summary
def summarize(result: SimulationResult, bank: ItemBank) -> dict:
    """JSON-ready accuracy, length and exposure figures of a simulation.

    ``rmse``/``bias`` are of the overall score (0–100 scale); ``theta_rmse``
    and ``theta_bias`` are per area on the theta scale; ``level_accuracy`` is
    the share of simulees whose estimated overall level is their true level.
    """
    n = result.examinees
    codes = result.area_codes
    error = result.scores.overall_score - result.true_scores.overall_score
    theta_error = result.theta - result.true_theta
    area_error = result.scores.area_score - result.true_scores.area_score
    length = result.length
    true_level, level = result.true_level, result.level
    scale = bank.scale
    n_levels = scale.n_levels
    true_index = scale.index(result.true_scores.overall_score)
    index = scale.index(result.scores.overall_score)
    confusion = np.bincount(true_index * n_levels + index, minlength=n_levels**2).reshape(
        n_levels, n_levels
    )
    stated = result.stated_probability
    reported_se = result.reported_se
    in_band = (scale.index(result.interval[:, 0]) == index) & (
        scale.index(result.interval[:, 1]) == index
    )
    reasons, reason_counts = np.unique(result.stop_reason.astype(str), return_counts=True)
    values, value_counts = np.unique(length, return_counts=True)
    exposure = result.exposure
    operational = bank.operational
    return {
        "name": result.name,
        "examinees": n,
        "mean_items": _round(length.mean()),
        "rmse": _round(math.sqrt(float(np.mean(error**2)))),
        "bias": _round(error.mean()),
        "level_accuracy": _round(np.mean(level == true_level)),
        "seconds": _round(result.seconds, 3),
        "seconds_per_simulee": _round(result.seconds / n, 8),
        "mae": _round(np.mean(np.abs(error))),
        "mean_score_se": _round(reported_se.mean()),
        "settled": _round(np.mean(result.settled)),
        "mean_stated_probability": _round(stated.mean()),
        "interval_within_level": _round(np.mean(in_band)),
        "probability_calibration": probability_calibration(stated, level == true_level),
        "score_correlation": _correlation(
            result.scores.overall_score, result.true_scores.overall_score
        ),
        "length": {
            "mean": _round(length.mean()),
            "sd": _round(length.std()),
            "min": int(length.min()),
            "p10": _round(np.percentile(length, 10)),
            "median": _round(np.median(length)),
            "p90": _round(np.percentile(length, 90)),
            "max": int(length.max()),
            "counts": {str(int(v)): int(c) for v, c in zip(values, value_counts, strict=True)},
        },
        "mean_administered": _round(result.administered.mean()),
        "area_items": {c: _round(result.area_counts[:, a].mean()) for a, c in enumerate(codes)},
        "theta_rmse": {
            c: _round(math.sqrt(float(np.mean(theta_error[:, a] ** 2))))
            for a, c in enumerate(codes)
        },
        "theta_bias": {c: _round(theta_error[:, a].mean()) for a, c in enumerate(codes)},
        "area_rmse": {
            c: _round(math.sqrt(float(np.mean(area_error[:, a] ** 2)))) for a, c in enumerate(codes)
        },
        "area_level_accuracy": {
            c: _round(
                np.mean(result.scores.area_level[:, a] == result.true_scores.area_level[:, a])
            )
            for a, c in enumerate(codes)
        },
        "level_confusion": {
            "levels": [lv.name_vi for lv in scale.levels],
            "codes": [lv.code for lv in scale.levels],
            "rows": "true level",
            "columns": "estimated level",
            "counts": confusion.tolist(),
        },
        "true_level_shares": [_round(x) for x in confusion.sum(axis=1) / n],
        "stop_reasons": {str(r): int(c) for r, c in zip(reasons, reason_counts, strict=True)},
        "exposure_max": _round(exposure.max()),
        "exposure_mean": _round(
            exposure[operational].mean() if operational.any() else exposure.mean()
        ),
        "exposure_sd": _round(exposure[operational].std() if operational.any() else exposure.std()),
        "unused_items": int(np.sum((exposure == 0) & operational)),
        "overlap": _overlap(result.items, bank.n_items, result.administered),
        "conditional": conditional_accuracy(result),
        "config": result.config.describe(),
        "framework": scale.describe(),
    }


#: Bins of the conditional figures: 5 points of the overall score, 0.5 of theta.
SCORE_BINS = np.arange(0.0, 105.0, 5.0)
THETA_BINS = np.arange(-3.5, 3.75, 0.5)
#: A bin is reported when it holds at least this many simulees.
MIN_BIN = 20


def binned(
    x: np.ndarray, error: np.ndarray, reported_se: np.ndarray, edges: np.ndarray
) -> list[dict]:
    """Bias, empirical SE (SD of the error) and mean reported SE in bins of ``x``.

    Bins with fewer than :data:`MIN_BIN` points are left out.
    """
    which = np.digitize(x, edges) - 1
    out = []
    for k in range(len(edges) - 1):
        inside = which == k
        n = int(inside.sum())
        if n >= MIN_BIN:
            out.append(
                {
                    "low": float(edges[k]),
                    "high": float(edges[k + 1]),
                    "n": n,
                    "bias": _round(error[inside].mean()),
                    "se": _round(error[inside].std()),
                    "mean_reported_se": _round(reported_se[inside].mean()),
                }
            )
    return out


def probability_calibration(
    stated: np.ndarray, right: np.ndarray, width: float = 0.05
) -> list[dict]:
    """Stated probabilities against how often they were right, in bins of ``width``.

    Returns one ``{"stated", "observed", "n"}`` per non-empty bin (in
    increasing order): the mean stated probability of the bin's results, the
    share of them whose level was right, and their number. A probability of
    exactly 1 falls in the last bin.
    """
    stated = np.asarray(stated, dtype=float)
    right = np.asarray(right, dtype=bool)
    n_bins = int(round(1.0 / width))
    bins = np.minimum((stated / width).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        member = bins == b
        count = int(member.sum())
        if count:
            out.append(
                {
                    "stated": _round(stated[member].mean()),
                    "observed": _round(right[member].mean()),
                    "n": count,
                }
            )
    return out


def conditional_accuracy(result: SimulationResult) -> dict:
    """Conditional bias and standard error: of the overall score by true score, of
    each area's theta by true theta (what the report's ``conditional`` plot shows)."""
    true = result.true_scores.overall_score
    return {
        "overall_score": binned(
            true, result.scores.overall_score - true, result.reported_se, SCORE_BINS
        ),
        "theta": {
            code: binned(
                result.true_theta[:, a],
                result.theta[:, a] - result.true_theta[:, a],
                result.theta_se[:, a],
                THETA_BINS,
            )
            for a, code in enumerate(result.area_codes)
        },
    }


def _overlap(items: np.ndarray, n_items: int, administered: np.ndarray) -> float | None:
    """Mean test overlap rate: items two random simulees share / mean test length.

    Exact over all pairs: with ``c_i`` simulees given item i, the mean number
    of shared items is ``sum c_i (c_i - 1) / (N (N - 1))`` (for fixed-length
    tests this is Chen, Ankenmann & Spray's overlap rate).
    """
    n = items.shape[0]
    mean_length = float(administered.mean())
    if n < 2 or mean_length == 0:
        return None
    counts = np.bincount(items[items >= 0], minlength=n_items).astype(float)
    shared = float(np.sum(counts * (counts - 1))) / (n * (n - 1))
    return _round(shared / mean_length)


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return _round(np.corrcoef(x, y)[0, 1])


def plain_json(value):
    """``value`` with plain JSON types only (JSON has no NaN, tuples or numpy scalars).

    Numpy scalars become Python numbers, tuples lists, non-finite floats None.
    """
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        return plain_json(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _round(value, digits: int = 4):
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


# --------------------------------------------------------- full-bank reference
def full_bank_scores(
    bank: ItemBank,
    config: TestConfig,
    true_theta: np.ndarray,
    rng: np.random.Generator,
    *,
    chunk_size: int = 5_000,
    progress: bool = False,
) -> FullBankResult:
    """Accuracy of answering every operational item of the bank.

    Each simulee answers all operational items (responses drawn from the true
    abilities); theta is estimated with ``config.estimator`` from the whole
    response pattern (per area, or jointly for an estimator that borrows
    strength across areas) and scored like a test. This is the best accuracy
    any test built from this bank can reach with that estimator.

    Parameters
    ----------
    bank, config, true_theta, rng
        As for :func:`run`.
    chunk_size : int
        Simulees estimated at once (bounds memory).
    progress : bool
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    FullBankResult
    """
    theta_true = check_true_theta(bank, true_theta)
    started = time.perf_counter()
    n = theta_true.shape[0]
    theta = np.zeros_like(theta_true)
    theta_se = np.zeros_like(theta_true)
    theta_corr = np.zeros((n, bank.n_areas, bank.n_areas))
    operational = np.flatnonzero(bank.operational)
    area_of = bank.area[operational]
    bar = _progress_bar(n, progress, "all items (reference)")
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        m = hi - lo
        if bar is not None and lo:
            bar.update(chunk_size)
        # Responses of every simulee to every operational item, (m, items).
        thetas = theta_true[lo:hi][:, area_of]
        responses = np.full((m, bank.n_items), -1, dtype=np.int16)
        responses[:, operational] = irt.simulate_responses(
            bank, thetas.ravel(), np.tile(operational, m), rng
        ).reshape(m, operational.size)
        # The engine's own per-area (or joint) estimation, as at the end of a test.
        est, se, corr = estimate_patterns(bank, config.estimator, responses)
        theta[lo:hi], theta_se[lo:hi], theta_corr[lo:hi] = est, se, corr
    if bar is not None:
        bar.update(n - bar.n)
        bar.close()
    seconds = time.perf_counter() - started
    true_scores = score(bank, theta_true, np.zeros_like(theta_true))
    scores = score(bank, theta, theta_se, theta_corr)
    error = scores.overall_score - true_scores.overall_score
    theta_error = theta - theta_true
    summary = {
        "items": int(operational.size),
        "level_accuracy": _round(np.mean(scores.overall_level == true_scores.overall_level)),
        "rmse": _round(math.sqrt(float(np.mean(error**2)))),
        "bias": _round(error.mean()),
        "theta_rmse": {
            c: _round(math.sqrt(float(np.mean(theta_error[:, a] ** 2))))
            for a, c in enumerate(bank.area_codes)
        },
        "seconds": _round(seconds, 3),
    }
    return FullBankResult(theta, theta_se, true_scores, scores, seconds, summary)


def true_levels(bank: ItemBank, true_theta: np.ndarray) -> np.ndarray:
    """Overall level code (the bank's framework) of each simulee at its true abilities."""
    theta = check_true_theta(bank, true_theta)
    return bank.scale.code(score(bank, theta, np.zeros_like(theta)).overall_score)
