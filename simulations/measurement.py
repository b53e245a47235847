"""The measurement model of a test design, tabulated by simulation, for planner reports.

Group statistics (:mod:`nangluc.service.statistics`) need to know how a
test's estimated score spreads around the true score, for every true score:
that is what an adaptive test's items, selection, stopping rule and prior do
together, and no formula gives it. This module runs the real test on simulees
whose abilities cover the whole scale and tabulates, for the overall score and
for each area's score, the kernel ``P(observed bin | true score)``.

The *observed* scores of a test for reports
(:func:`nangluc.service.statistics.observed_scores`) are
not the engine's final estimates. Those borrow strength across areas through
the prior's inter-area correlation, so how an area's estimate spreads around
its true score depends on the group's other areas, and a kernel tabulated on
one population is wrong for another (simulation: the area intervals of wards
one SD below the prior covered the truth 57% of the time). Each area is
instead scored from its own answers alone (EAP with the standard normal
prior); the overall observation is the mean of those area scores. Their
spread around the truth depends on the test taker's answers only, so one
kernel serves every group (coverage 95%).

The simulees' area abilities are a common shift, uniform over a wide range,
plus the equicorrelated normal spread of the DESIGN population (SD 1,
correlation 0.7): so every true score the bank can produce is met, and the
areas of one simulee vary around each other as they do in the population.
The same bank, rules and seed give the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nangluc.engine import irt
from nangluc.engine.bank import ItemBank
from nangluc.engine.config import TestConfig
from nangluc.engine.tables import bank_tables
from nangluc.service.statistics import Kernel, observed_scores
from nangluc.simulations.core import run
from nangluc.simulations.population import DEFAULT_CORRELATION, draw_population

#: Simulees per measurement model: about 15 s on one core for the shipped
#: bank; the kernels' rows then rest on about 800 simulees each.
DEFAULT_SIMULEES = 40_000
#: The common shift of a simulee's area abilities is uniform on this range
#: (theta units): beyond it the shipped bank's scores change by less than a
#: point per unit of theta.
SHIFT_RANGE = (-3.5, 3.0)
#: Population levels (common shifts) each kernel is tabulated at; a group's
#: kernel is read between the two nearest (see :class:`Kernel`).
LEVEL_CENTRES = np.arange(-3.0, 2.51, 0.5)
MODEL_FORMAT = 1


@dataclass(frozen=True, eq=False)
class MeasurementModel:
    """Kernels of one test design on one bank: the overall score and each area's score."""

    bank_version: str
    config: str
    overall: Kernel
    areas: dict[str, Kernel]
    simulees: int
    seed: int

    def kernel(self, measure: str) -> Kernel:
        """The kernel of ``"overall"`` or of an area code."""
        if measure == "overall":
            return self.overall
        try:
            return self.areas[measure]
        except KeyError:
            raise KeyError(f"the measurement model has no area {measure!r}") from None

    def to_json(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "bank_version": self.bank_version,
            "config": self.config,
            "simulees": self.simulees,
            "seed": self.seed,
            "overall": self.overall.to_json(),
            "areas": {code: kernel.to_json() for code, kernel in self.areas.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> MeasurementModel:
        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise ValueError("not a measurement model of a format this version reads")
        return cls(
            bank_version=str(data["bank_version"]),
            config=str(data["config"]),
            overall=Kernel.from_json(data["overall"]),
            areas={str(code): Kernel.from_json(k) for code, k in data["areas"].items()},
            simulees=int(data["simulees"]),
            seed=int(data["seed"]),
        )


def measurement_model(
    bank: ItemBank,
    config: TestConfig,
    *,
    simulees: int = DEFAULT_SIMULEES,
    seed: int = 0,
    workers: int = 1,
) -> MeasurementModel:
    """Tabulate the kernels of ``config`` on ``bank`` by running the test on simulees.

    Parameters
    ----------
    bank, config
        The bank and the rules the tests ran under.
    simulees : int
        Simulated tests (at least 1,000; more makes the kernels smoother).
    seed : int
        The same seed gives the same model.
    workers : int
        Processes for the simulation.
    """
    if isinstance(simulees, bool) or not isinstance(simulees, int) or simulees < 1000:
        raise ValueError(f"a measurement model needs at least 1000 simulees, got {simulees!r}")
    rng = np.random.default_rng([seed, 0x6D656173])
    shift = rng.uniform(*SHIFT_RANGE, size=(simulees, 1))
    theta = shift + draw_population(simulees, bank.n_areas, DEFAULT_CORRELATION, rng)
    result = run(bank, config, theta, rng, workers=workers)
    observed_overall, observed_areas = observed_scores(bank, result.items, result.responses)
    true_overall = result.true_scores.overall_score
    levels = {
        "level": shift[:, 0],
        "level_centres": LEVEL_CENTRES,
        "overall": true_overall,
    }
    overall = Kernel.tabulate(true_overall, observed_overall, **levels)
    areas = {
        code: Kernel.tabulate(result.true_scores.area_score[:, a], observed_areas[:, a], **levels)
        for a, code in enumerate(bank.area_codes)
        if bank_tables(bank).scored_areas[a]
    }
    return MeasurementModel(
        bank_version=bank.version,
        config=config.name,
        overall=overall,
        areas=areas,
        simulees=simulees,
        seed=seed,
    )


def competence_cuts(bank: ItemBank, competence: str) -> tuple[str, np.ndarray]:
    """Where a competence's levels begin, on its area's score scale.

    The test estimates one ability per area; a competence's score is read
    from it: 100 x the expected fraction of the maximum score over the
    competence's operational items at the area's ability. Both scores rise
    with the ability, so each level cut of the competence score is one point
    of the area score. Returns the area code and, for the lower bound of each
    level above the first, the area score where the competence reaches it
    (``-inf`` if it is reached at every ability on the grid, ``inf`` if at
    none).

    Raises
    ------
    KeyError
        The bank has no operational item of that competence.
    """
    members = np.array([c == competence for c in bank.competence]) & bank.operational
    if not members.any():
        raise KeyError(f"the bank has no operational item of competence {competence!r}")
    areas = np.unique(bank.area[members])
    if areas.size != 1:
        raise ValueError(f"competence {competence!r} has items in more than one area")
    area = int(areas[0])
    tables = bank_tables(bank)
    grid = tables.fine
    expected = irt.expected_score(
        grid, bank.discrimination[members], bank.thresholds[members], bank.guessing[members]
    )
    competence_score = 100.0 * expected.sum(axis=1) / bank.max_score[members].sum()
    area_score = tables.area_score[:, area]
    cuts = []
    for level in bank.scale.levels[1:]:
        reached = np.flatnonzero(competence_score >= level.lower)
        if reached.size == 0:
            cuts.append(math.inf)
        elif reached[0] == 0:
            cuts.append(-math.inf)
        else:
            # Linear interpolation between the grid points around the crossing.
            i = int(reached[0])
            c0, c1 = competence_score[i - 1], competence_score[i]
            t = (level.lower - c0) / (c1 - c0) if c1 > c0 else 1.0
            cuts.append(float(area_score[i - 1] + t * (area_score[i] - area_score[i - 1])))
    return bank.area_codes[area], np.asarray(cuts)
