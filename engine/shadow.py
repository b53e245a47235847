"""Shadow tests (van der Linden & Reese, 1998): content constraints and enemy items.

Before each item, a whole test (the *shadow test*) is assembled as a
mixed-integer program: it contains every item given so far, has the test's
length, meets every content constraint, holds at most one item of each enemy
set, and among such tests has the largest sum of the selector's criterion.
The next item is the best item of the shadow test not given yet. So every
constraint holds for the finished test whatever the answers, which greedy
content rules cannot promise.

The programs are solved with HiGHS (``highspy``, the ``shadow`` extra); the
solver is imported on the first use of a shadow test.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.tables import bank_tables

if TYPE_CHECKING:  # only for annotations; engine.cat imports this module
    from nangluc.engine.cat import CatBatch

ATTRIBUTES = ("area", "competence", "kind")


@dataclass(frozen=True)
class Constraint:
    """Between ``minimum`` and ``maximum`` items of the test have ``attribute == value``.

    ``attribute`` is ``area`` (an area code), ``competence`` (a competence
    code) or ``kind`` (knowledge / skill / attitude); ``maximum`` None means
    no upper limit.
    """

    attribute: str
    value: str
    minimum: int = 0
    maximum: int | None = None

    def __post_init__(self) -> None:
        if self.attribute not in ATTRIBUTES:
            raise ValueError(
                f"constraint attribute must be one of {', '.join(ATTRIBUTES)}, got {self.attribute!r}"
            )
        if self.minimum < 0:
            raise ValueError(f"constraint minimum must be >= 0, got {self.minimum}")
        if self.maximum is not None and self.maximum < self.minimum:
            raise ValueError(
                f"constraint maximum ({self.maximum}) is below its minimum ({self.minimum})"
            )
        object.__setattr__(self, "value", str(self.value))

    def members(self, bank: ItemBank) -> np.ndarray:
        """Boolean mask (I,) of the bank's items this constraint counts."""
        if self.attribute == "area":
            if self.value not in bank.area_codes:
                raise ValueError(f"constraint on area {self.value!r}: not an area of the bank")
            return bank.area == bank.area_codes.index(self.value)
        if self.attribute == "kind":
            if self.value not in KINDS:
                raise ValueError(f"constraint on kind {self.value!r}: expected one of {KINDS}")
            return bank.kind == KINDS.index(self.value)
        return np.array([c == self.value for c in bank.competence], dtype=bool)


@dataclass(frozen=True)
class ShadowTest:
    """Choose the next item from a shadow test of ``length`` items (see the module docstring).

    ``length`` is the length of the assembled test (usually the test's
    maximum); once more items have been given, the shadow test is one item
    longer than the items given. ``enemies`` are sets of item ids of which
    at most one may appear in a test (unknown ids are ignored, so one list
    can serve several banks). If no test meets every constraint (a content
    team asked for more than the bank holds), the constraints are dropped for
    that step and only the enemy rule is kept, so a test never stops for it.
    """

    length: int = 20
    constraints: tuple[Constraint, ...] = ()
    enemies: tuple[tuple[str, ...], ...] = ()
    name: str = "shadow"

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"shadow test length must be >= 1, got {self.length}")
        object.__setattr__(self, "constraints", tuple(self.constraints))
        object.__setattr__(
            self, "enemies", tuple(tuple(str(i) for i in group) for group in self.enemies)
        )
        for group in self.enemies:
            if len(group) < 2:
                raise ValueError(f"an enemy set needs at least two item ids, got {group}")

    def allowed(
        self,
        bank: ItemBank,
        batch: CatBatch,
        rows: np.ndarray,
        eligible: np.ndarray,
        criterion: np.ndarray,
    ) -> np.ndarray:
        """The eligible items of each row's shadow test (R, I); never empties a row."""
        groups, enemy_sets = self._matrices(bank)
        out = eligible.copy()
        for r, row in enumerate(rows):
            given = batch.administered[row] & bank.operational
            free = eligible[r].copy()
            # Enemies of an item already given are out, whatever else happens.
            for members in enemy_sets:
                if (given & members).any():
                    free &= ~members
            if not free.any():
                continue  # nothing the enemy rule allows: leave the choice to the selector
            chosen = _solve(
                criterion[r], given, free, max(self.length, int(given.sum()) + 1), groups,
                enemy_sets, self.constraints,
            )  # fmt: skip
            if chosen is None:  # the constraints cannot be met: keep the enemy rule only
                chosen = _solve(criterion[r], given, free, int(given.sum()) + 1, [], enemy_sets, ())
            out[r] = free & chosen if chosen is not None and (free & chosen).any() else free
        return out

    def _matrices(self, bank: ItemBank) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each constraint's and each enemy set's item mask (cached per bank)."""
        tables = bank_tables(bank)
        key = ("shadow", self.constraints, self.enemies)
        cached = tables._masks.get(key)
        if cached is None:
            groups = [c.members(bank) & bank.operational for c in self.constraints]
            enemy_sets = []
            for group in self.enemies:
                members = tables.item_mask(tuple(group), bank) & bank.operational
                if members.sum() >= 2:
                    enemy_sets.append(members)
            cached = (groups, enemy_sets)
            tables._masks[key] = cached
        return cached


def _solve(
    criterion: np.ndarray,
    given: np.ndarray,
    free: np.ndarray,
    length: int,
    groups: list[np.ndarray],
    enemy_sets: list[np.ndarray],
    constraints: tuple[Constraint, ...],
) -> np.ndarray | None:
    """The best shadow test as an item mask, or None when none exists."""
    highspy = _highspy()
    columns = np.flatnonzero(given | free)
    n = columns.size
    if n < length:
        length = n
    value = np.where(np.isfinite(criterion[columns]), criterion[columns], 0.0)
    # Given items are in the test whatever their value: fix them to 1.
    lower = given[columns].astype(float)
    rows_lower, rows_upper, rows = [float(length)], [float(length)], [np.ones(n, dtype=bool)]
    for constraint, members in zip(constraints, groups, strict=True):
        rows.append(members[columns])
        rows_lower.append(float(constraint.minimum))
        rows_upper.append(float(constraint.maximum) if constraint.maximum is not None else np.inf)
    for members in enemy_sets:
        inside = members[columns]
        if inside.sum() >= 2:
            rows.append(inside)
            rows_lower.append(0.0)
            rows_upper.append(1.0)
    matrix = np.array(rows, dtype=bool)
    start = np.concatenate([[0], np.cumsum(matrix.sum(axis=1))])
    index = np.nonzero(matrix)[1]
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = -value  # HiGHS minimises
    lp.col_lower_ = lower
    lp.col_upper_ = np.ones(n)
    lp.row_lower_ = np.array(rows_lower)
    lp.row_upper_ = np.array(rows_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = start.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = np.ones(index.size)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    solver = _solver(highspy)
    solver.clearModel()
    solver.passModel(lp)
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    chosen = np.zeros(criterion.size, dtype=bool)
    chosen[columns[np.asarray(solver.getSolution().col_value) > 0.5]] = True
    return chosen


_LOCAL = threading.local()


def _solver(highspy):
    """One quiet HiGHS instance per thread (a new one per program costs more than the solve)."""
    solver = getattr(_LOCAL, "solver", None)
    if solver is None:
        solver = highspy.Highs()
        solver.setOptionValue("output_flag", False)
        _LOCAL.solver = solver
    return solver


def _highspy():
    try:
        import highspy
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "shadow tests need the HiGHS solver; install it with: pip install 'nangluc[shadow]'"
        ) from None
    return highspy
