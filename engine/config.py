"""Test configurations: which rules a CAT uses, as one typed, frozen object."""

from __future__ import annotations

from dataclasses import dataclass, field

from nangluc.engine import citizen_exposure
from nangluc.engine.estimation import EAP, CorrelatedEAP, Estimator
from nangluc.engine.selection import (
    AreaMinimum,
    ContentRule,
    ExposureControl,
    OverallPrecision,
    Randomesque,
    Selector,
    StartRule,
    SympsonHetter,
)
from nangluc.engine.shadow import ShadowTest
from nangluc.engine.stopping import LevelProbability, StopRule, settling_rules

#: Inter-area correlation of the population model used by default (DESIGN §3:
#: the simulation population until a calibration estimates it).
DEFAULT_POPULATION_CORRELATION = 0.7


@dataclass(frozen=True)
class TestConfig:
    """The rules of an adaptive test.

    Parameters
    ----------
    name : str
        Stored with each test so a session can be resumed with its rules.
    estimator : Estimator
        EAP (default), MAP or MLE, per area.
    selector : Selector
        Criterion for the next item (maximum information, posterior-weighted
        information, or overall-score precision).
    content : tuple of ContentRule
        Applied in order to narrow the eligible items (area minimum, kind and
        area balancing).
    exposure : ExposureControl or None
        Randomesque or Sympson–Hetter; None picks the best item.
    shadow : ShadowTest or None
        Content constraints and enemy items that the finished test must
        meet, enforced by assembling a shadow test before each item.
    start : StartRule or None
        How the first items are chosen (a fixed item, or random among the
        best few at the prior); None lets the selector and exposure control
        choose them as any other.
    stopping : tuple of StopRule
        The test stops when any rule is met (after ``min_items``).
    min_items, max_items : int
        Length limits; ``max_items`` counts scored items.
    min_information : float
        An item whose information at the estimate is below this is not
        informative; when no informative item is left the test stops.
    pretest_positions : tuple of int
        0-based positions at which an unscored pretest item is seeded (if any
        remains); pretest items never affect the estimate or the length limits.
    excluded : tuple of str
        Item ids never to administer.
    population_correlation : float
        Inter-area correlation of the population model under which level
        probabilities are stated when the estimator has no model of its own
        for the areas together (per-area EAP, MAP, MLE); see
        :attr:`posterior`.
    """

    __test__ = False  # not a pytest test class

    name: str = "custom"
    estimator: Estimator = field(default_factory=EAP)
    selector: Selector = field(default_factory=OverallPrecision)
    content: tuple[ContentRule, ...] = ()
    exposure: ExposureControl | None = None
    start: StartRule | None = None
    shadow: ShadowTest | None = None
    stopping: tuple[StopRule, ...] = ()
    min_items: int = 1
    max_items: int = 40
    min_information: float = 1e-3
    pretest_positions: tuple[int, ...] = ()
    excluded: tuple[str, ...] = ()
    population_correlation: float = DEFAULT_POPULATION_CORRELATION

    def __post_init__(self) -> None:
        if self.min_items < 0:
            raise ValueError(f"min_items must be >= 0, got {self.min_items}")
        if self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")
        if self.min_items > self.max_items:
            raise ValueError(f"min_items ({self.min_items}) exceeds max_items ({self.max_items})")
        if self.min_information < 0:
            raise ValueError("min_information must be >= 0")
        if any(p < 0 for p in self.pretest_positions):
            raise ValueError("pretest positions must be >= 0")
        object.__setattr__(self, "content", tuple(self.content))
        object.__setattr__(self, "stopping", tuple(self.stopping))
        object.__setattr__(self, "pretest_positions", tuple(sorted(set(self.pretest_positions))))
        object.__setattr__(self, "excluded", tuple(self.excluded))
        self._posterior_model()  # a bad population model fails here, not mid-test

    def _posterior_model(self) -> CorrelatedEAP:
        if isinstance(self.estimator, CorrelatedEAP):
            return self.estimator
        try:
            return CorrelatedEAP(
                correlation=self.population_correlation,
                prior_mean=float(getattr(self.estimator, "prior_mean", 0.0)),
                prior_sd=float(getattr(self.estimator, "prior_sd", 1.0)),
            )
        except ValueError as error:
            raise ValueError(f"population model: {error}") from None

    @property
    def posterior(self) -> CorrelatedEAP:
        """The model whose posterior states how sure a level is.

        Level probabilities, score intervals and "settled" are posterior
        statements, and a posterior needs a model of the population: the
        areas' abilities are normal with the estimator's prior mean and SD
        (N(0, 1) for MLE, which has no prior) and correlation
        ``population_correlation``. A :class:`CorrelatedEAP` estimator is such
        a model itself and is used as it is, so its estimates are that
        posterior's means. With per-area estimators the areas' errors are
        correlated in a population whose areas are (the estimates all shrink
        towards the same mean), which a per-area posterior ignores: its
        stated probabilities were over-confident in simulation.
        """
        return self._posterior_model()

    @property
    def settling(self) -> tuple[StopRule, ...]:
        """The rules whose target makes a level "settled" (see :func:`settling_rules`)."""
        return settling_rules(self.stopping)

    def describe(self) -> dict:
        """A JSON-serialisable description of the rules (for reports and logs)."""

        def rule(obj) -> object:
            if obj is None:
                return None
            out = {"rule": type(obj).__name__}
            for key, value in vars(obj).items():
                if key in ("name", "reason"):
                    continue
                if isinstance(value, tuple) and len(value) > 12:
                    value = f"<{len(value)} values>"
                out[key] = value
            return out

        return {
            "name": self.name,
            "estimator": rule(self.estimator),
            "selector": rule(self.selector),
            "content": [rule(r) for r in self.content],
            "exposure": rule(self.exposure),
            "start": rule(self.start),
            "shadow": rule(self.shadow),
            "stopping": [rule(r) for r in self.stopping],
            "min_items": self.min_items,
            "max_items": self.max_items,
            "min_information": self.min_information,
            "pretest_positions": list(self.pretest_positions),
            "excluded": list(self.excluded),
            "population_correlation": self.population_correlation,
        }


#: The first citizen test (until #16): randomesque exposure control (k = 2),
#: which left the two most informative items at exposure 0.99 and 0.96. Kept
#: so that tests started under it finish under the same rules.
CITIZEN_TEST_V1 = TestConfig(
    name="citizen-v1",
    estimator=CorrelatedEAP(correlation=0.7),
    selector=OverallPrecision(),
    content=(AreaMinimum(items_per_area=1),),
    exposure=Randomesque(k=2),
    stopping=(LevelProbability(threshold=0.9),),
    min_items=5,
    max_items=40,
)

#: The default citizen self-assessment, chosen with simulation evidence
#: (``python -m benchmarks.citizen_test`` and ``python -m benchmarks.exposure_choice``;
#: the README has the figures):
#:
#: * areas estimated jointly (EAP with an inter-area correlation of 0.7, the
#:   DESIGN population until a calibration estimates it): the correlation
#:   carries information, so every answer sharpens all five area scores;
#: * the next item is the one that most reduces the overall score's error
#:   variance, with information averaged over the current posterior;
#: * every area is asked at least once;
#: * Sympson–Hetter exposure control with a target of 0.6 (parameters by item
#:   id in :mod:`nangluc.engine.citizen_exposure`): no item is given to more
#:   than about 60% of citizens (randomesque left two items at 0.99 and 0.96)
#:   at no measurable cost in accuracy and about one item more on average;
#:   lower targets cost more (0.5: 20.5 items; 0.25: 26 items and 3 points of
#:   accuracy);
#: * stop when the estimated overall level is right with probability >= 0.9,
#:   after 5 and at most 40 scored items.
#:
#: Kind balancing (knowledge / skill / attitude) is available as
#: :class:`KindBalance` but not on by default: on the provisional bank it cost
#: about four items per test for no gain in accuracy (attitude items carry the
#: least information), and the selector already mixes kinds.
CITIZEN_TEST = TestConfig(
    name="citizen-v2",
    estimator=CorrelatedEAP(correlation=0.7),
    selector=OverallPrecision(),
    content=(AreaMinimum(items_per_area=1),),
    exposure=SympsonHetter(
        control=tuple(k for _, k in citizen_exposure.CONTROL),
        item_ids=tuple(i for i, _ in citizen_exposure.CONTROL),
    ),
    stopping=(LevelProbability(threshold=0.9),),
    min_items=5,
    max_items=40,
)

CONFIGS: dict[str, TestConfig] = {
    CITIZEN_TEST.name: CITIZEN_TEST,
    CITIZEN_TEST_V1.name: CITIZEN_TEST_V1,
}
