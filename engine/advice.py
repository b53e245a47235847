"""What to learn next, from the measurement (issue #11).

For each area the advice names the next-step criteria: those the citizen most
likely does not meet yet but is closest to, judged from the posterior of the
area's ability and the items' parameters. Pure functions of arrays; the texts
(the criteria's learning goals, the basic skills' names) are the bank's and
the service's.

When is a criterion *met*? When the citizen gives its competent answer:

* a multiple-choice (knowledge) item: knows the answer. The chance of that is
  the item's curve without guessing, ``(P(correct) - c) / (1 - c)`` for a 3PL
  item, so a lucky guess does not count as knowing;
* a graded item (skill or attitude, ``m`` ordered options): answers in the
  upper half, from category ``m // 2`` up. For the shipped four-option
  criteria that is "I can do it on my own" (skills) or "agree" (attitudes);
  "with help" is not yet met.

Which criteria are next steps? The citizen's success probability ``p_i(θ)``
of each criterion is averaged over the area's posterior: criteria with an
expected ``p < 0.5`` are not met yet. Among those, the next steps are the ones
most likely within reach, i.e. with the highest posterior probability that
``p_i(θ)`` lies in the learning zone ``[0.3, 0.7]`` (tasks a learner can do
with some help); ties go to the higher expected ``p`` (closer to being met).
At most one of an area's next steps is an attitude (advice names mostly things
to learn or practise; attitudes have flatter curves, so they would otherwise
crowd the list). An area at the top level gets no next steps (nothing
remedial to learn).

Which area first? Learning helps most where it builds the basic skills that
the city teaches every citizen (online public services, shopping, payment,
protecting yourself, using digital platforms: what daily life online needs),
then where it raises the score most. So areas whose next steps include a
basic skill come first; within each group, areas are ordered by the points
the overall score would gain if the next steps were met (the expected rise of
the items' scores, on the domain-score scale; each area counts equally in the
overall score, so this is the order of the points the area's own score would
gain). Areas at the top level come last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nangluc.engine import irt
from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.tables import bank_tables, curve_crossing

#: Success probabilities of criteria within reach: a learner can do them with some help.
LEARNING_ZONE = (0.3, 0.7)
#: Next-step criteria named per area (fewer when fewer are not yet met).
STEPS_PER_AREA = 3


@dataclass(frozen=True, eq=False)
class _AdviceTables:
    success: np.ndarray  # (Q, I) P(criterion met | theta_q)
    reach: np.ndarray  # (Q, I) share of theta_q's cell where the success lies in LEARNING_ZONE
    gain: np.ndarray  # (Q, I) area-score points gained if the criterion were met at theta_q
    basic: np.ndarray  # (I,) bool: the criterion belongs to a basic skill


def met_category(n_categories: np.ndarray) -> np.ndarray:
    """The lowest category that meets a criterion: 1 for dichotomous items, ``m // 2`` else."""
    return np.maximum(np.asarray(n_categories) // 2, 1)


def success_probability(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Probability of meeting each criterion at ``theta`` (G,) -> (G, I).

    Multiple-choice items without guessing (knowing, not guessing); graded
    items from their middle category up (see the module docstring).
    """
    theta = np.asarray(theta, dtype=float)
    probs = irt.bank_probabilities(bank, theta)  # (G, I, K)
    categories = np.arange(probs.shape[2])
    at_least = categories[None, :] >= met_category(bank.n_categories)[:, None]  # (I, K)
    met = np.einsum("gik,ik->gi", probs, at_least.astype(float))
    c = bank.guessing
    return np.clip((met - c) / (1.0 - c), 0.0, 1.0)


def _advice_tables(bank: ItemBank) -> _AdviceTables:
    return bank_tables(bank).cached(("advice tables",), lambda: _build_advice_tables(bank))


def _build_advice_tables(bank: ItemBank) -> _AdviceTables:
    tables = bank_tables(bank)
    grid, fine = tables.quadrature, tables.fine
    step = float(grid[1] - grid[0])
    success = success_probability(bank, grid)
    # Each grid point stands for its cell; the success curves increase with
    # theta, so the zone is an interval of theta per item (found on the fine grid).
    fine_success = success_probability(bank, fine)
    low = curve_crossing(fine, fine_success, LEARNING_ZONE[0])
    high = curve_crossing(fine, fine_success, LEARNING_ZONE[1])
    cell_low = grid[:, None] - step / 2
    overlap = np.minimum(cell_low + step, high[None, :]) - np.maximum(cell_low, low[None, :])
    reach = np.clip(overlap / step, 0.0, 1.0)
    # Points of the area score gained if the criterion were met: the expected
    # rise of the item's score to at least its met category, on the area's
    # domain-score scale (100 x score / the area's maximum).
    probs = np.exp(tables.log_prob).transpose(2, 0, 1)  # (Q, I, K)
    categories = np.arange(probs.shape[2])
    shortfall = np.maximum(met_category(bank.n_categories)[:, None] - categories[None, :], 0)
    raised = np.einsum("qik,ik->qi", probs, shortfall.astype(float))
    area_max = np.zeros(bank.n_areas)
    np.add.at(area_max, bank.area[bank.operational], bank.max_score[bank.operational])
    scale = np.where(bank.operational, 100.0 / np.maximum(area_max[bank.area], 1), 0.0)
    gain = raised * scale[None, :]
    basic = np.array([bool(skills) for skills in bank.basic_skills])
    for array in (success, reach, gain, basic):
        array.setflags(write=False)
    cached = _AdviceTables(success=success, reach=reach, gain=gain, basic=basic)
    return cached


@dataclass(frozen=True, eq=False)
class NextSteps:
    """Next-step criteria of N test takers (arrays; see :func:`next_steps`).

    Attributes
    ----------
    items : ndarray of int, shape (N, A, S)
        Bank indices of each area's next-step criteria, best first; -1 pads.
    success : ndarray, shape (N, A, S)
        Posterior expected probability of meeting each of them now.
    reach : ndarray, shape (N, A, S)
        Posterior probability that the success probability lies in
        :data:`LEARNING_ZONE`.
    gain : ndarray, shape (N, A)
        Points the area's score would gain if its next steps were met (the
        overall score gains this divided by the number of areas).
    order : ndarray of int, shape (N, A)
        Area indices from where learning helps most to least (top-level areas last).
    area_level : ndarray of int, shape (N, A)
        The areas' level codes (as given).
    top_area : ndarray of bool, shape (N, A)
        The area is at the top level: no next steps.
    top_overall : ndarray of bool, shape (N,)
        The overall level is the top level.
    """

    items: np.ndarray
    success: np.ndarray
    reach: np.ndarray
    gain: np.ndarray
    order: np.ndarray
    area_level: np.ndarray
    top_area: np.ndarray
    top_overall: np.ndarray


def next_steps(
    bank: ItemBank,
    weights: np.ndarray,
    area_level: np.ndarray,
    overall_level: np.ndarray,
    *,
    per_area: int = STEPS_PER_AREA,
) -> NextSteps:
    """Next-step criteria per area and the order of the areas, for N test takers.

    Parameters
    ----------
    bank : ItemBank
    weights : ndarray, shape (N, A, Q)
        Each area's posterior on the quadrature grid
        (:attr:`nangluc.engine.scoring.LevelPosterior.weights`).
    area_level, overall_level : ndarray of int, shapes (N, A) and (N,)
        Level codes of the results (the bank's framework, ``bank.scale``).
    per_area : int
        Criteria named per area (at most).

    Returns
    -------
    NextSteps
    """
    if per_area < 1:
        raise ValueError(f"per_area must be >= 1, got {per_area}")
    weights = np.asarray(weights, dtype=float)
    n, n_areas, _ = weights.shape
    advice = _advice_tables(bank)
    tables = bank_tables(bank)
    area_level = np.asarray(area_level, dtype=int)
    top_level = bank.scale.top.code
    top_area = area_level >= top_level
    items = np.full((n, n_areas, per_area), -1, dtype=np.intp)
    success = np.zeros((n, n_areas, per_area))
    reach = np.zeros((n, n_areas, per_area))
    gain = np.zeros((n, n_areas))
    has_basic = np.zeros((n, n_areas), dtype=bool)
    rows = np.arange(n)[:, None]
    attitude = bank.kind == KINDS.index("attitude")
    for area, members in enumerate(tables.area_members):
        members = members[bank.operational[members]]
        if members.size == 0:
            continue
        w = weights[:, area, :]
        expected = w @ advice.success[:, members]  # (N, M)
        within = w @ advice.reach[:, members]
        eligible = (expected < 0.5) & ~top_area[:, area, None]
        # Most likely within reach first, then closest to being met.
        key = np.where(eligible, within + 1e-6 * expected, -np.inf)
        # At most one attitude: every attitude but the best one of each row drops out.
        is_attitude = attitude[members][None, :]
        best_attitude = np.argmax(np.where(is_attitude, key, -np.inf), axis=1)
        drop = is_attitude & (np.arange(members.size)[None, :] != best_attitude[:, None])
        key = np.where(drop, -np.inf, key)
        k = min(per_area, members.size)
        best = np.argsort(-key, axis=1, kind="stable")[:, :k]
        chosen = np.isfinite(key[rows, best])
        items[:, area, :k] = np.where(chosen, members[best], -1)
        success[:, area, :k] = np.where(chosen, expected[rows, best], 0.0)
        reach[:, area, :k] = np.where(chosen, within[rows, best], 0.0)
        points = w @ advice.gain[:, members]
        gain[:, area] = np.where(chosen, points[rows, best], 0.0).sum(axis=1)
        has_basic[:, area] = (chosen & advice.basic[members][best]).any(axis=1)
    # Sort keys, most helpful first: areas with steps, basic skills among them, more points.
    has_steps = items[:, :, 0] >= 0
    order = np.lexsort((-gain, ~has_basic, ~has_steps, top_area), axis=1)
    return NextSteps(
        items=items,
        success=success,
        reach=reach,
        gain=gain,
        order=order,
        area_level=area_level,
        top_area=top_area,
        top_overall=np.asarray(overall_level) >= top_level,
    )


# ------------------------------------------------------------ one test taker
@dataclass(frozen=True)
class NextStep:
    """A criterion to learn next."""

    item_id: str
    competence: str
    basic_skills: tuple[str, ...]
    success: float  # posterior expected probability of meeting it now
    reach: float  # posterior probability that it is within reach (LEARNING_ZONE)


@dataclass(frozen=True)
class AreaAdvice:
    """One area's advice: its next steps, or none at the top level."""

    area: str
    level: int
    top: bool
    steps: tuple[NextStep, ...]
    gain: float  # points the area's score would gain if the steps were met


@dataclass(frozen=True)
class Advice:
    """What to learn next: areas from where learning helps most (top-level areas last).

    ``top_overall``: the overall level is the top level; the citizen is told so
    and pointed to helping others rather than to help for themselves.
    """

    top_overall: bool
    areas: tuple[AreaAdvice, ...]


def advice_for(bank: ItemBank, steps: NextSteps, row: int = 0) -> Advice:
    """The :class:`Advice` of one row of :func:`next_steps`."""
    areas = []
    for area in steps.order[row]:
        named = [int(i) for i in steps.items[row, area] if i >= 0]
        areas.append(
            AreaAdvice(
                area=bank.area_codes[area],
                level=int(steps.area_level[row, area]),
                top=bool(steps.top_area[row, area]),
                steps=tuple(
                    NextStep(
                        item_id=bank.item_ids[i],
                        competence=bank.competence[i],
                        basic_skills=bank.basic_skills[i],
                        success=float(steps.success[row, area, k]),
                        reach=float(steps.reach[row, area, k]),
                    )
                    for k, i in enumerate(named)
                ),
                gain=float(steps.gain[row, area]),
            )
        )
    return Advice(top_overall=bool(steps.top_overall[row]), areas=tuple(areas))
