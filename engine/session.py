"""One test in progress: an immutable, JSON-serialisable state and a pure step.

The state holds what happened (items given, responses) and what follows from
it (estimates, the current item, whether and why the test stopped). Replaying
the responses through :func:`nangluc.engine.cat.advance` reproduces it exactly, which
is how a stored state is advanced: the service keeps only this JSON.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nangluc.engine import cat
from nangluc.engine.advice import Advice, advice_for, next_steps
from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.config import CONFIGS, TestConfig
from nangluc.engine.estimation import EAP, CorrelatedEAP, estimate_patterns
from nangluc.engine.scale import DEFAULT_SCALE, Level, Scale
from nangluc.engine.scoring import (
    level_posterior,
    root_mean_square_error,
    score,
)
from nangluc.engine.stopping import settled
from nangluc.engine.tables import bank_tables

STATE_FORMAT = 1


@dataclass(frozen=True)
class TestState:
    """A test in progress (or finished), as plain values.

    Attributes
    ----------
    bank_version : str
        The bank the test started on; it must finish on the same one.
    config : str
        Name of the :class:`TestConfig` it runs under.
    seed : int
        Seeds the randomness of each step (exposure control, pretest
        seeding): step k uses ``default_rng([seed, k])``, so a replay is exact.
    administered, responses : tuple
        Item ids given so far and the scored categories answered.
    next_item : str or None
        The current item; None when finished.
    finished : bool
    stop_reason : str or None
        ``level_probable``, ``level_decided``, ``overall_se``, ``area_se``, ``max_items``,
        ``no_item_left`` …
    theta, se : tuple of float
        Current ability estimate and its standard error per area.
    correlation : tuple of tuple of float
        Posterior correlation of the areas.
    level_probability : float or None
        Posterior probability of the estimated overall level at the last
        stopping check (what the citizen test stops on); None when the test's
        rules did not need it. The page's progress estimate uses it.
    """

    __test__ = False  # not a pytest test class

    bank_version: str
    config: str
    seed: int
    administered: tuple[str, ...]
    responses: tuple[int, ...]
    next_item: str | None
    finished: bool
    stop_reason: str | None
    theta: tuple[float, ...]
    se: tuple[float, ...]
    correlation: tuple[tuple[float, ...], ...] = ()
    level_probability: float | None = None

    @property
    def answered(self) -> int:
        return len(self.responses)

    def to_json(self) -> dict:
        """Plain JSON types only (lists, str, int, float, bool, None)."""
        return {
            "format": STATE_FORMAT,
            "bank_version": self.bank_version,
            "config": self.config,
            "seed": self.seed,
            "administered": list(self.administered),
            "responses": list(self.responses),
            "next_item": self.next_item,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "theta": [_finite_or_none(x) for x in self.theta],
            "se": [_finite_or_none(x) for x in self.se],
            "correlation": [list(row) for row in self.correlation],
            "level_probability": self.level_probability,
        }

    @classmethod
    def from_json(cls, data: dict) -> TestState:
        """Rebuild a state from :meth:`to_json` output, checking its shape."""
        if not isinstance(data, dict):
            raise TypeError("a test state must be a JSON object")
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported test state format {data.get('format')!r}")
        try:
            administered = tuple(str(i) for i in data["administered"])
            responses = tuple(int(r) for r in data["responses"])
            state = cls(
                bank_version=str(data["bank_version"]),
                config=str(data["config"]),
                seed=int(data["seed"]),
                administered=administered,
                responses=responses,
                next_item=None if data["next_item"] is None else str(data["next_item"]),
                finished=bool(data["finished"]),
                stop_reason=data["stop_reason"],
                theta=tuple(math.inf if x is None else float(x) for x in data["theta"]),
                se=tuple(math.inf if x is None else float(x) for x in data["se"]),
                correlation=tuple(
                    tuple(float(x) for x in row) for row in data.get("correlation", ())
                ),
                level_probability=(
                    None
                    if data.get("level_probability") is None
                    else float(data["level_probability"])
                ),
            )
        except KeyError as missing:
            raise ValueError(f"test state lacks field {missing.args[0]!r}") from None
        if len(state.administered) != len(state.responses):
            raise ValueError("test state has different numbers of items and responses")
        return state


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


class _StepRandomness:
    """The generator of step ``step`` (``default_rng([seed, step])``), made on first use.

    Most steps draw nothing (no randomesque choice, no pretest position), and
    seeding a generator costs more than a whole selection; the draws are the
    same as with the generator made up front.
    """

    __slots__ = ("_seed", "_step", "_generator")

    def __init__(self, seed: int, step: int) -> None:
        self._seed, self._step, self._generator = seed, step, None

    def __getattr__(self, name: str):
        if self._generator is None:
            self._generator = _rng(self._seed, self._step)
        return getattr(self._generator, name)


@functools.lru_cache(maxsize=8192)
def _lottery(seed: int, n_items: int) -> np.ndarray:
    """A test's Sympson–Hetter lottery (the first draws of step 0's generator), read-only.

    Every step of a session reads the same draws; cached, so that a step
    does not seed a generator for them (sessions in progress at once, per
    process, are far fewer than the cache holds).
    """
    lottery = _rng(seed, 0).random((1, n_items))
    lottery.setflags(write=False)
    return lottery


def _check_bank(bank: ItemBank, state: TestState, config: TestConfig) -> None:
    if state.bank_version != bank.version:
        raise ValueError(f"this test runs on bank {state.bank_version}, not {bank.version}")
    if state.config != config.name:
        raise ValueError(f"this test runs under config {state.config!r}, not {config.name!r}")


def _state_from_batch(
    bank: ItemBank, config: TestConfig, seed: int, batch: cat.CatBatch
) -> TestState:
    length = int(batch.length[0])
    items = batch.items[0, :length]
    nxt = int(batch.next_item[0])
    return TestState(
        bank_version=bank.version,
        config=config.name,
        seed=seed,
        administered=tuple(bank.item_ids[i] for i in items.tolist()),
        responses=tuple(batch.responses[0, :length].tolist()),
        next_item=None if nxt < 0 else bank.item_ids[nxt],
        finished=bool(batch.finished[0]),
        stop_reason=str(batch.stop_reason[0]) or None,
        theta=tuple(batch.theta[0].tolist()),
        se=tuple(batch.se[0].tolist()),
        correlation=tuple(map(tuple, batch.theta_corr[0].tolist())),
        level_probability=_probability_or_none(batch.level_probability),
    )


def _probability_or_none(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    value = float(values[0])
    return round(value, 6) if math.isfinite(value) else None


def replay(bank: ItemBank, config: TestConfig, state: TestState) -> cat.CatBatch:
    """The batch (N = 1) of a state, rebuilt by replaying its responses."""
    batch = cat.start(bank, config, 1, _rng(state.seed, 0))
    for step, (item_id, response) in enumerate(
        zip(state.administered, state.responses, strict=True)
    ):
        if batch.finished[0] or bank.item_ids[batch.next_item[0]] != item_id:
            raise ValueError("test state does not match a replay of its responses")
        batch = cat.advance(bank, config, batch, np.array([response]), _rng(state.seed, step + 1))
    return batch


def start_test(bank: ItemBank, config: TestConfig, *, seed: int) -> TestState:
    """A new test: prior estimates and the first item.

    Parameters
    ----------
    bank : ItemBank
        The bank the test runs on (``load_bank().item_bank``); it must finish
        on the same version.
    config : TestConfig
        The test's rules, e.g. :data:`~nangluc.engine.config.CITIZEN_TEST`.
    seed : int
        A non-negative integer that seeds every random choice of the test
        (exposure control); use a fresh random one per test
        (``secrets.randbits(62)``) and keep it in the state.

    Returns
    -------
    TestState
        ``next_item`` is the first item to ask; store ``state.to_json()``
        between requests and rebuild it with :meth:`TestState.from_json`.

    Raises
    ------
    ValueError
        A negative or non-integer seed.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    batch = cat.start(bank, config, 1, _rng(int(seed), 0))
    return _state_from_batch(bank, config, int(seed), batch)


def answer_item(
    bank: ItemBank, config: TestConfig, state: TestState, item_id: str, response: int
) -> TestState:
    """Record ``response`` to the current item and choose the next one.

    ``response`` is the scored category: for a keyed multiple-choice item
    score the chosen option first (``document.item(item_id).score_option(i)``:
    1 for the key, 0 otherwise); a graded item's category is its option's
    position. The new state's ``finished`` says whether the test stopped
    (``stop_reason`` says why) and ``next_item`` what to ask next.

    Pure: the input state is unchanged. The step rebuilds the arrays from the
    state's own numbers (the last estimate and the area log-likelihoods, which
    are sums over the responses) and advances them once.

    Raises
    ------
    ValueError
        The test is finished, ``item_id`` is not the current item, the
        response is not an integer in the item's range, or the state belongs
        to another bank or config.
    """
    _check_bank(bank, state, config)
    if state.finished or state.next_item is None:
        raise ValueError("the test is finished; no more answers are taken")
    if item_id != state.next_item:
        raise ValueError(f"item {item_id!r} is not the current item ({state.next_item!r})")
    if isinstance(response, bool) or not isinstance(response, int | np.integer):
        raise ValueError(f"response must be an integer option index, got {response!r}")
    index = bank.index(item_id)
    n_cat = int(bank.n_categories[index])
    if not 0 <= response < n_cat:
        raise ValueError(
            f"response {response} is out of range for item {item_id} (expected 0..{n_cat - 1})"
        )
    # The state's arrays with the answer already recorded, then the shared
    # second half of a step (estimates, stopping, selection).
    batch = _batch_of(bank, config, state, (item_id, int(response)))
    answered_area = bank.area[index] if bank.operational[index] else -1
    batch = cat.settle(
        bank,
        config,
        batch,
        _ONE_ROW,
        np.array([answered_area]),
        _StepRandomness(state.seed, state.answered + 1),
    )
    return _state_from_batch(bank, config, state.seed, batch)


_ONE_ROW = np.zeros(1, dtype=np.intp)
_ONE_ROW.setflags(write=False)


def _batch_of(
    bank: ItemBank,
    config: TestConfig,
    state: TestState,
    answer: tuple[str, int],
) -> cat.CatBatch:
    """Arrays of one state and its new ``answer`` (item id, response), without replay.

    The arrays hold the answer as :func:`nangluc.engine.cat.advance` would record it
    (O(items) per step); the estimates are still the state's.
    """
    tables = bank_tables(bank)
    width = cat.capacity(config)
    administered_ids = (*state.administered, answer[0])
    responses = (*state.responses, answer[1])
    length = len(responses)
    if length > width:
        raise ValueError("test state has more answers than its config allows")
    idx = bank.indices(administered_ids)
    resp = np.asarray(responses, dtype=np.intp)
    if ((resp < 0) | (resp >= bank.n_categories[idx])).any():
        raise ValueError("test state holds a response out of range")
    is_scored = bank.operational[idx]
    loglik = np.zeros((1, bank.n_areas, tables.quadrature.size))
    area_counts = np.zeros((1, bank.n_areas), dtype=np.int32)
    kind_counts = np.zeros((1, len(KINDS)), dtype=np.int32)
    # Sum each area's rows of log P(response) with one matrix product.
    used = idx[is_scored]
    loglik[0] = tables.area_onehot[used].T @ tables.log_prob[used, resp[is_scored]]
    area_counts[0] = np.bincount(bank.area[used], minlength=bank.n_areas)
    kind_counts[0] = np.bincount(bank.kind[used], minlength=len(KINDS))
    items = np.full((1, width), -1, dtype=np.int32)
    responses = np.full((1, width), -1, dtype=np.int16)
    scored = np.zeros((1, width), dtype=bool)
    items[0, :length] = idx
    responses[0, :length] = resp
    scored[0, :length] = is_scored
    administered = np.zeros((1, bank.n_items), dtype=bool)
    administered[0, idx] = True
    return cat.CatBatch(
        administered=administered,
        items=items,
        responses=responses,
        scored=scored,
        length=np.array([length], dtype=np.int32),
        area_counts=area_counts,
        kind_counts=kind_counts,
        loglik=loglik,
        theta=np.array([state.theta], dtype=float),
        se=np.array([state.se], dtype=float),
        theta_corr=_correlation_of(state, bank.n_areas)[None, :, :],
        next_item=np.array([-1], dtype=np.int32),  # the answered item is no longer current
        finished=np.array([False]),
        stop_reason=np.array([""], dtype=object),
        # Only Sympson–Hetter rules read the lottery; skip the draw otherwise.
        lottery=(
            _lottery(state.seed, bank.n_items)
            if getattr(config.exposure, "uses_lottery", False)
            else np.ones((1, bank.n_items))
        ),
        unavailable=None,
        level_probability=np.full(1, np.nan),
    )


def _correlation_of(state: TestState, n_areas: int) -> np.ndarray:
    if not state.correlation:
        return np.eye(n_areas)
    matrix = np.asarray(state.correlation, dtype=float)
    if matrix.shape != (n_areas, n_areas):
        raise ValueError(f"test state has a {matrix.shape} correlation for {n_areas} areas")
    return matrix


@dataclass(frozen=True)
class LevelResult:
    """A score (0–100) and what the measurement says about its level.

    Attributes
    ----------
    score : float
        The point estimate: the domain score at the estimated theta (overall:
        the framework's overall rule over the area scores, by default their mean).
    se : float
        Posterior root-mean-square error of ``score`` (the posterior SD when
        the estimate is the posterior mean).
    interval : tuple of float
        95% posterior interval of the true score, within 0..100.
    level : int
        The framework's level code of ``score`` (Đà Nẵng: 1 Bắt đầu … 5 Nâng cao).
    probability : float
        Posterior probability that the true score is in that level.
    level_probabilities : tuple of float
        Posterior probability of each level, in the order of ``scale.levels``;
        they sum to 1.
    settled : bool
        The test's own level rule is met (see
        :func:`~nangluc.engine.stopping.settling_rules`): for the citizen test,
        ``probability >= 0.9``.
    scale : Scale
        The bank's framework (levels and overall rule) the level belongs to.
    """

    score: float
    se: float
    interval: tuple[float, float]
    level: int
    probability: float
    level_probabilities: tuple[float, ...]
    settled: bool
    scale: Scale = field(default=DEFAULT_SCALE, kw_only=True, repr=False, compare=False)

    @property
    def level_band(self) -> Level:
        """The framework's :class:`~nangluc.engine.scale.Level` of ``level``."""
        return self.scale.by_code(self.level)

    @property
    def level_name(self) -> str:
        """The level's Vietnamese name (the framework's)."""
        return self.level_band.name_vi

    @property
    def level_name_en(self) -> str:
        return self.level_band.name_en


@dataclass(frozen=True)
class OverallScore(LevelResult):
    """The overall score (the framework's overall rule over the area scores) and its level."""


@dataclass(frozen=True)
class AreaScore(LevelResult):
    """An area's domain score and its level, with the area's theta estimate."""

    area: str
    theta: float
    theta_se: float
    answered: int


@dataclass(frozen=True)
class TestResult:
    """Scores of a test (DESIGN §4): overall and per area.

    ``settled_by`` describes the rule that settles a level (the test's own
    level rule, see :func:`~nangluc.engine.stopping.settling_rules`).
    """

    __test__ = False

    overall: OverallScore
    areas: tuple[AreaScore, ...]
    answered: int
    finished: bool
    stop_reason: str | None
    settled_by: tuple[dict, ...]


def loglik_of(bank: ItemBank, state: TestState) -> np.ndarray:
    """Per-area log-likelihood on the quadrature grid of a state's scored answers, (1, A, Q)."""
    tables = bank_tables(bank)
    loglik = np.zeros((1, bank.n_areas, tables.quadrature.size))
    if state.administered:
        idx = bank.indices(state.administered)
        resp = np.asarray(state.responses, dtype=np.intp)
        if ((resp < 0) | (resp >= bank.n_categories[idx])).any():
            raise ValueError("test state holds a response out of range")
        scored = bank.operational[idx]
        used = idx[scored]
        loglik[0] = tables.area_onehot[used].T @ tables.log_prob[used, resp[scored]]
    return loglik


def score_test(bank: ItemBank, state: TestState, config: TestConfig | None = None) -> TestResult:
    """Overall and per-area scores, intervals, levels and how sure each level is.

    Parameters
    ----------
    bank : ItemBank
        The bank the test ran on.
    state : TestState
    config : TestConfig, optional
        The test's rules (they say what "settled" means and which population
        model states the probabilities); by default the registered config
        named by the state (:data:`~nangluc.engine.config.CONFIGS`).

    Raises
    ------
    ValueError
        The state belongs to another bank or config, or its config is not
        registered and none is given.
    """
    config = _config_of(bank, state, config)
    return _results(bank, config, [state])[0]


def _results(bank: ItemBank, config: TestConfig, states: Sequence[TestState]) -> list[TestResult]:
    """:func:`score_test` of several states of one bank and config, with one pass of array work."""
    theta = np.array([state.theta for state in states], dtype=float)
    se = np.array([state.se for state in states], dtype=float)
    correlation = np.stack([_correlation_of(state, bank.n_areas) for state in states])
    scores = score(bank, theta, se, correlation)
    loglik = np.concatenate([loglik_of(bank, state) for state in states])
    posterior = config.posterior.posterior(bank, loglik)
    levels = level_posterior(bank, posterior.weights, posterior.correlation)
    rules = config.settling
    settled_by = tuple(_describe_rule(rule) for rule in rules)
    area_intervals = levels.area_interval(bank)
    overall_intervals = levels.overall_interval(bank)
    overall_settled, area_settled = settled(
        bank, rules, levels, scores.overall_score, scores.area_score
    )
    area_probability = bank.scale.probability_of_level(levels.area_probabilities, scores.area_score)
    overall_probability = bank.scale.probability_of_level(
        levels.overall_probabilities, scores.overall_score
    )
    area_rmse = root_mean_square_error(levels.area_mean, levels.area_sd, scores.area_score)
    overall_rmse = root_mean_square_error(
        levels.overall_mean, levels.overall_sd, scores.overall_score
    )

    def described(point, rmse, interval, probability, probabilities, is_settled):
        return {
            "score": float(point),
            "se": float(rmse),
            "interval": (float(interval[0]), float(interval[1])),
            "level": int(bank.scale.code(point)),
            "probability": float(probability),
            "level_probabilities": tuple(float(p) for p in probabilities),
            "settled": bool(is_settled),
            "scale": bank.scale,
        }

    results = []
    for row, state in enumerate(states):
        counts = np.zeros(bank.n_areas, dtype=int)
        if state.administered:
            idx = bank.indices(state.administered)
            idx = idx[bank.operational[idx]]
            counts = np.bincount(bank.area[idx], minlength=bank.n_areas)
        areas = tuple(
            AreaScore(
                area=code,
                theta=float(theta[row, a]),
                theta_se=float(se[row, a]),
                answered=int(counts[a]),
                **described(
                    scores.area_score[row, a],
                    area_rmse[row, a],
                    area_intervals[row, a],
                    area_probability[row, a],
                    levels.area_probabilities[row, a],
                    area_settled[row, a],
                ),
            )
            for a, code in enumerate(bank.area_codes)
        )
        overall = OverallScore(
            **described(
                scores.overall_score[row],
                overall_rmse[row],
                overall_intervals[row],
                overall_probability[row],
                levels.overall_probabilities[row],
                overall_settled[row],
            )
        )
        results.append(
            TestResult(
                overall=overall,
                areas=areas,
                answered=state.answered,
                finished=state.finished,
                stop_reason=state.stop_reason,
                settled_by=settled_by,
            )
        )
    return results


def advise(bank: ItemBank, state: TestState, config: TestConfig | None = None) -> Advice:
    """What to learn next after a test: next-step criteria per area, areas by priority.

    Judged from the posterior of the areas' abilities under the test's
    population model and the items' parameters
    (:mod:`nangluc.engine.advice` says how). Areas at the top level get no
    next steps; ``Advice.top_overall`` says the overall level is the top one.

    Raises
    ------
    ValueError
        As :func:`score_test`.
    """
    config = _config_of(bank, state, config)
    posterior = config.posterior.posterior(bank, loglik_of(bank, state))
    theta = np.array([state.theta], dtype=float)
    scores = score(bank, theta, np.array([state.se], dtype=float))
    steps = next_steps(bank, posterior.weights, scores.area_level, scores.overall_level)
    return advice_for(bank, steps)


def _config_of(bank: ItemBank, state: TestState, config: TestConfig | None) -> TestConfig:
    if state.bank_version != bank.version:
        raise ValueError(f"this test ran on bank {state.bank_version}, not {bank.version}")
    if config is None:
        if state.config not in CONFIGS:
            raise ValueError(
                f"test rules {state.config!r} are not registered; pass the TestConfig it ran under"
            )
        return CONFIGS[state.config]
    if config.name != state.config:
        raise ValueError(f"this test ran under config {state.config!r}, not {config.name!r}")
    return config


def _describe_rule(rule) -> dict:
    out = {"rule": type(rule).__name__}
    out.update({k: v for k, v in vars(rule).items() if k != "reason"})
    return out


def pattern_state(
    bank: ItemBank,
    responses: Mapping[str, int] | Iterable[tuple[str, int]],
    *,
    config: TestConfig,
) -> TestState:
    """The finished test state of a response pattern, estimated under ``config``'s estimator.

    What :func:`score_responses` scores; :func:`score_test` and
    :func:`advise` take it as they take the end of an adaptive test (the
    service's ``POST /api/v1/score`` does so). ``stop_reason`` is
    ``"scored"``; the order of the answers does not matter.

    Parameters and errors as :func:`score_responses`.
    """
    return _pattern_states(bank, config, [_checked_pattern(bank, responses)])[0]


#: A checked response pattern: item ids, their categories, and the items' bank indices.
_Checked = tuple[list[str], list[int], np.ndarray]


def _pattern_states(bank: ItemBank, config: TestConfig, checked: list[_Checked]) -> list[TestState]:
    """The finished states of checked patterns, estimated under ``config``'s estimator.

    EAP estimates are made for all the patterns at once. Iterative estimators
    (MAP, MLE, WLE) step until every row of a batch has converged, so a
    pattern's estimate would depend on the others; they estimate each alone.
    """
    matrix = np.full((len(checked), bank.n_items), -1, dtype=np.int64)
    for row, (_, values, index) in enumerate(checked):
        matrix[row, index] = values
    if isinstance(config.estimator, EAP | CorrelatedEAP):
        theta, se, correlation = estimate_patterns(bank, config.estimator, matrix)
    else:
        alone = [estimate_patterns(bank, config.estimator, row[None, :]) for row in matrix]
        theta, se, correlation = (np.concatenate(parts) for parts in zip(*alone, strict=True))
    return [
        TestState(
            bank_version=bank.version,
            config=config.name,
            seed=0,
            administered=tuple(ids),
            responses=tuple(values),
            next_item=None,
            finished=True,
            stop_reason="scored",
            theta=tuple(theta[row].tolist()),
            se=tuple(se[row].tolist()),
            correlation=tuple(map(tuple, correlation[row].tolist())),
        )
        for row, (ids, values, _) in enumerate(checked)
    ]


def _checked_pattern(
    bank: ItemBank, responses: Mapping[str, int] | Iterable[tuple[str, int]]
) -> _Checked:
    """A response pattern's ids, categories and bank indices, checked (ValueError says what is wrong)."""
    pairs = list(responses.items()) if isinstance(responses, Mapping) else list(responses)
    ids: list[str] = []
    values: list[int] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"each response must be an (item id, category) pair, got {pair!r}")
        item_id, value = pair
        if str(item_id) not in bank._index:
            raise ValueError(f"item {item_id!r} is not in bank {bank.version}")
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"response to item {item_id} must be an integer, got {value!r}")
        ids.append(str(item_id))
        values.append(int(value))
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        twice = sorted({i for i in ids if i in seen or seen.add(i)})
        raise ValueError(f"item(s) answered more than once: {', '.join(twice)}")
    index = bank.indices(ids)
    if ids:
        given = np.asarray(values)
        top = bank.n_categories[index]
        bad = (given < 0) | (given >= top)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"response {values[first]} is out of range for item {ids[first]} "
                f"(expected 0..{int(top[first]) - 1})"
            )
    return ids, values, index


def score_responses(
    bank: ItemBank,
    responses: Mapping[str, int] | Iterable[tuple[str, int]],
    *,
    config: TestConfig,
) -> TestResult:
    """Scores of any response pattern: a fixed form, a paper test, a recorded session.

    The same result as :func:`score_test` gives at the end of an adaptive
    test with these answers under ``config``'s estimator (the order of the
    answers does not matter; pretest items do not count).

    Parameters
    ----------
    bank : ItemBank
    responses : mapping of item id to scored category, or (item id, category) pairs
        Each item at most once; categories are 0..m-1 (a key's option index
        is scored with :meth:`nangluc.items.ItemRecord.score_option` first).
    config : TestConfig
        Whose estimator scores the pattern (e.g. :data:`CITIZEN_TEST`).

    Returns
    -------
    TestResult
        ``finished`` is True and ``answered`` the number of responses.

    Raises
    ------
    ValueError
        An unknown item id, an item given twice, or a response that is not
        an integer within its item's categories.
    """
    return score_test(bank, pattern_state(bank, responses, config=config), config)


#: Response patterns scored together by :func:`score_patterns` (bounds its memory).
PATTERN_BLOCK = 1024


def score_patterns(
    bank: ItemBank,
    patterns: Iterable[Mapping[str, int] | Iterable[tuple[str, int]]],
    *,
    config: TestConfig,
) -> list[TestResult]:
    """:func:`score_responses` of many response patterns, with the array work done in blocks.

    The same results, in the same order (a survey's or a class's forms:
    ``nangluc score`` uses it), up to rounding in the last digits of the
    matrix products over a block: each block of :data:`PATTERN_BLOCK`
    patterns is scored with one pass of array work instead of one per
    pattern (and estimated so too under the EAP estimators; an iterative
    estimator's estimates are made one pattern at a time, as alone).

    Raises
    ------
    ValueError
        As :func:`score_responses`, naming the pattern (its position from 0).
    """
    checked = []
    for position, responses in enumerate(patterns):
        try:
            checked.append(_checked_pattern(bank, responses))
        except ValueError as error:
            raise ValueError(f"pattern {position}: {error}") from None
    results: list[TestResult] = []
    for first in range(0, len(checked), PATTERN_BLOCK):
        states = _pattern_states(bank, config, checked[first : first + PATTERN_BLOCK])
        results += _results(bank, config, states)
    return results
