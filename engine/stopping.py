"""Stopping rules.

A rule looks at the rows' current estimates and scores and says which rows
have reached its target. The test stops when any target rule is met after
the minimum length, at the maximum length, or when no informative item is
left (see :func:`nangluc.engine.cat.advance`).

The level rules (:class:`LevelProbability`, :class:`LevelDecided`) also say
when a result is **settled**: a result is settled when the test's own level
rule is met by it (:func:`settling_rules`), so "settled" means exactly what
made the test stop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.estimation import JointPosterior
from nangluc.engine.scoring import (
    LevelPosterior,
    Scores,
    level_posterior,
)
from nangluc.engine.special import ndtri

#: The level probability that settles a level when a test has no level rule of
#: its own (the citizen test's threshold).
DEFAULT_SETTLED_PROBABILITY = 0.9


@dataclass(frozen=True)
class StopContext:
    """What stopping rules may look at, for R rows.

    ``levels`` (the posterior of the rows' scores and levels under the test's
    population model) is computed on first use, so rules that do not need it
    cost nothing extra.
    """

    length: np.ndarray  # (R,) items administered
    area_counts: np.ndarray  # (R, A) scored items per area
    theta: np.ndarray  # (R, A)
    se: np.ndarray  # (R, A) standard error of theta
    scores: Scores | None  # None when no rule of the test looks at scores
    scored_areas: np.ndarray | None = None  # (A,) bool: areas with operational items (None: all)
    bank: ItemBank | None = None
    loglik: np.ndarray | None = None  # (R, A, Q)
    posterior_model: object | None = None  # has .posterior(bank, loglik) (a CorrelatedEAP)
    posterior: JointPosterior | None = None  # the rows' posterior, when already computed

    @functools.cached_property
    def levels(self) -> LevelPosterior:
        posterior = self.posterior
        if posterior is None:
            if self.bank is None or self.loglik is None or self.posterior_model is None:
                raise ValueError(
                    "this stop context has no posterior (bank, loglik and model needed)"
                )
            posterior = self.posterior_model.posterior(self.bank, self.loglik)
        return level_posterior(self.bank, posterior.weights, posterior.correlation)

    @functools.cached_property
    def overall_level_probability(self) -> np.ndarray:
        """(R,) posterior probability of the level of each row's overall score."""
        return self.bank.scale.probability_of_level(
            self.levels.overall_probabilities, self.scores.overall_score
        )


class StopRule(Protocol):
    """Returns True for the rows whose target is met."""

    reason: str

    def met(self, context: StopContext) -> np.ndarray: ...


class LevelRule(Protocol):
    """A stopping rule about the level; it also says which results are settled."""

    reason: str

    def met(self, context: StopContext) -> np.ndarray: ...

    def settles(
        self,
        bank: ItemBank,
        posterior: LevelPosterior,
        score: np.ndarray,
        probabilities: np.ndarray,
        area: int | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class AreaStandardError:
    """Every area's theta has standard error <= ``target``.

    Only areas with operational items count: an area the bank cannot measure
    keeps its prior SE, and would otherwise keep every test running to its
    maximum length.
    """

    target: float = 0.5
    reason: str = "area_se"
    #: Looks at theta's SE only, so the step need not compute scores for it.
    uses_scores: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"SE target must be > 0, got {self.target}")

    def met(self, context):
        reached = context.se <= self.target
        if context.scored_areas is not None:
            reached |= ~np.asarray(context.scored_areas, dtype=bool)[None, :]
        return np.all(reached, axis=1)


@dataclass(frozen=True)
class ThetaStandardError(AreaStandardError):
    """The same rule under catsim's name, for single-area tests (SE <= 0.3 by default)."""

    target: float = 0.3
    reason: str = "theta_se"


@dataclass(frozen=True)
class OverallStandardError:
    """The overall score (0–100) has standard error <= ``target`` points."""

    target: float = 4.0
    reason: str = "overall_se"

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"overall SE target must be > 0, got {self.target}")

    def met(self, context):
        return context.scores.overall_se <= self.target


@dataclass(frozen=True)
class LevelDecided:
    """The ``confidence`` posterior interval of the overall score lies inside one level band.

    ``margin`` > 0 shrinks the interval by that many points at each end, so an
    interval that crosses a cut by less than the margin counts as decided
    (an indifference zone around the cuts). The default 0 is the pure
    interval rule. A result is settled under this rule when its interval (of
    the overall score, or of an area's score) lies in the band of its score.
    """

    confidence: float = 0.95
    margin: float = 0.0
    reason: str = "level_decided"

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0.5, 1), got {self.confidence}")
        if self.margin < 0:
            raise ValueError("margin must be >= 0")

    @property
    def z(self) -> float:
        return float(ndtri(0.5 + self.confidence / 2))

    def met(self, context):
        levels = context.levels
        return self.settles(
            context.bank, levels, context.scores.overall_score, levels.overall_probabilities
        )

    def settles(self, bank, posterior, score, probabilities, area=None):
        if area is None:
            interval = posterior.overall_interval(bank, self.confidence)
        else:
            interval = posterior.area_interval(bank, self.confidence)[:, area, :]
        index = bank.scale.index
        level = index(score)
        low = index(interval[..., 0] + self.margin)
        high = index(interval[..., 1] - self.margin)
        return (low == level) & (high == level)


@dataclass(frozen=True)
class LevelProbability:
    """The estimated overall level is right with posterior probability >= ``threshold``.

    The probability is that of the band of the overall score under the
    posterior of the test's population model (:attr:`TestConfig.posterior`,
    :class:`nangluc.engine.scoring.LevelPosterior`). Looser than
    :class:`LevelDecided` at the same nominal level (it needs the two tails
    together, not each, below ``1 - threshold``), so it stops earlier near
    the cuts. A result is settled under this rule when the probability of its
    level (overall, or an area's) reaches the threshold.
    """

    threshold: float = 0.9
    reason: str = "level_probable"

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0.5, 1), got {self.threshold}")

    def met(self, context):
        return context.overall_level_probability >= self.threshold

    def settles(self, bank, posterior, score, probabilities, area=None):
        return bank.scale.probability_of_level(probabilities, score) >= self.threshold


def settling_rules(stopping: tuple[StopRule, ...]) -> tuple[LevelRule, ...]:
    """The rules that decide whether a result is settled.

    The test's own level rules (:class:`LevelProbability`,
    :class:`LevelDecided`) when it has any: a result is settled when one of
    them is met, which is exactly when such a test stops early. A test
    without a level rule (it stops on standard errors or at a fixed length)
    has no meaning of its own for "settled"; it gets
    ``LevelProbability(DEFAULT_SETTLED_PROBABILITY)``: the level is right
    with probability at least 0.9.
    """
    rules = tuple(r for r in stopping if isinstance(r, LevelProbability | LevelDecided))
    return rules or (LevelProbability(DEFAULT_SETTLED_PROBABILITY),)


def settled(
    bank: ItemBank,
    rules: tuple[LevelRule, ...],
    levels: LevelPosterior,
    overall_score: np.ndarray,
    area_score: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Which results are settled: overall (N,) and per area (N, A).

    A result is settled when one of ``rules`` (normally
    :func:`settling_rules` of the test's stopping rules) holds for it; the
    same rule applies to each area's score and level probabilities.
    """
    overall = np.zeros(np.shape(overall_score), dtype=bool)
    areas = np.zeros(np.shape(area_score), dtype=bool)
    for rule in rules:
        overall |= rule.settles(bank, levels, overall_score, levels.overall_probabilities)
        for a in range(areas.shape[1]):
            areas[:, a] |= rule.settles(
                bank, levels, area_score[:, a], levels.area_probabilities[:, a, :], a
            )
    return overall, areas
