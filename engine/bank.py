"""The item bank in memory: one frozen object of parameter arrays.

Every item is stored in one threshold form so that probabilities and
information broadcast over (thetas x items x categories):

* ``thresholds[i, k-1]`` is the location of the boundary ``P(X >= k)`` of a
  graded item, or the step parameter between categories k-1 and k of a
  partial-credit item, k = 1..m-1, padded with ``+inf`` beyond the item's
  last category (so the padded categories have probability exactly 0);
* a 2PL item is a graded item with two categories and threshold ``b``; a
  1PL (Rasch) item is a 2PL item whose ``a`` is shared (1 by default);
* a 3PL item adds a lower asymptote ``guessing`` (0 for every other item);
* GPCM and PCM items are flagged in ``partial_credit`` (the PCM is a GPCM
  whose ``a`` is shared, 1 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nangluc.engine.scale import DEFAULT_SCALE, Scale

#: Model names; an item's ``model`` is an index into this tuple (new models are appended).
MODELS: tuple[str, ...] = ("2pl", "3pl", "grm", "1pl", "gpcm", "pcm")
#: Models with several ordered categories.
POLYTOMOUS: tuple[str, ...] = ("grm", "gpcm", "pcm")
#: Divide-by-total models: thresholds are step parameters, in any order.
PARTIAL_CREDIT: tuple[str, ...] = ("gpcm", "pcm")
#: Models whose discrimination is shared by all their items (1 unless calibrated otherwise).
SHARED_DISCRIMINATION: tuple[str, ...] = ("1pl", "pcm")
KINDS: tuple[str, ...] = ("knowledge", "skill", "attitude")

ModelName = Literal["2pl", "3pl", "grm", "1pl", "gpcm", "pcm"]


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ItemBank:
    """Parameters of a bank's items as aligned, read-only arrays.

    Build it with :meth:`ItemBank.from_items` (per-item lists, validated) or
    :func:`nangluc.items.load_bank` (from a bank file). Index ``i`` means the same item
    in every array.

    Attributes
    ----------
    version : str
        Bank version id; a test records it so it finishes on the same bank.
    item_ids : tuple of str
        Stable item ids such as ``"1.1.01"``.
    area_codes : tuple of str
        The bank's areas in order (``"1"`` .. ``"5"`` for the framework).
    area : ndarray of int, shape (n_items,)
        Index into ``area_codes``.
    competence : tuple of str
        Competence code per item (``"1.1"``); empty string when unknown.
    kind : ndarray of int, shape (n_items,)
        Index into :data:`KINDS` (knowledge / skill / attitude).
    model : ndarray of int, shape (n_items,)
        Index into :data:`MODELS`.
    discrimination : ndarray of float, shape (n_items,)
        ``a`` (> 0).
    thresholds : ndarray of float, shape (n_items, max_categories - 1)
        Boundary locations, increasing along each row, ``+inf`` padded.
    guessing : ndarray of float, shape (n_items,)
        Lower asymptote ``c`` of 3PL items, 0 otherwise.
    n_categories : ndarray of int, shape (n_items,)
        Number of score categories (2 for dichotomous items).
    operational : ndarray of bool, shape (n_items,)
        False for pretest items: they may be administered but never scored.
    partial_credit : ndarray of bool, shape (n_items,)
        True for GPCM/PCM items (derived from ``model``).
    basic_skills : tuple of tuple of str
        Codes of the framework's basic skills each item belongs to (empty
        when none or unknown).
    scale : Scale
        The framework's levels (cut scores) and overall rule; the Đà Nẵng
        framework's (:data:`~nangluc.engine.scale.DEFAULT_SCALE`) unless the
        bank file's framework gives its own.
    """

    version: str
    item_ids: tuple[str, ...]
    area_codes: tuple[str, ...]
    area: np.ndarray
    competence: tuple[str, ...]
    kind: np.ndarray
    model: np.ndarray
    discrimination: np.ndarray
    thresholds: np.ndarray
    guessing: np.ndarray
    n_categories: np.ndarray
    operational: np.ndarray
    basic_skills: tuple[tuple[str, ...], ...] = ()
    scale: Scale = DEFAULT_SCALE
    partial_credit: np.ndarray = field(init=False, repr=False, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if n == 0:
            raise ValueError("an item bank needs at least one item")
        if len(set(self.item_ids)) != n:
            seen: set[str] = set()
            dup = sorted({i for i in self.item_ids if i in seen or seen.add(i)})
            raise ValueError(f"duplicate item ids: {', '.join(dup)}")
        for name in (
            "area",
            "kind",
            "model",
            "discrimination",
            "guessing",
            "n_categories",
            "operational",
        ):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(
                    f"{name} must have shape ({n},), got {np.shape(getattr(self, name))}"
                )
        if len(self.competence) != n:
            raise ValueError(f"competence must have {n} entries")
        if not self.basic_skills:
            object.__setattr__(self, "basic_skills", ((),) * n)
        elif len(self.basic_skills) != n:
            raise ValueError(f"basic_skills must have {n} entries")
        else:
            object.__setattr__(
                self, "basic_skills", tuple(tuple(str(c) for c in b) for b in self.basic_skills)
            )
        if self.thresholds.ndim != 2 or self.thresholds.shape[0] != n:
            raise ValueError(f"thresholds must have shape ({n}, max_categories - 1)")
        if not len(self.area_codes):
            raise ValueError("an item bank needs at least one area")
        if np.any((self.area < 0) | (self.area >= len(self.area_codes))):
            raise ValueError("area index out of range")
        if not isinstance(self.scale, Scale):
            raise TypeError(f"scale must be a Scale, got {type(self.scale).__name__}")
        self.scale.check_areas(self.area_codes)
        if not np.all(np.isfinite(self.discrimination)) or np.any(self.discrimination <= 0):
            bad = [self.item_ids[i] for i in np.flatnonzero(~(self.discrimination > 0))]
            raise ValueError(f"discrimination must be a finite number > 0 (items {', '.join(bad)})")
        if np.any((self.guessing < 0) | (self.guessing >= 1)):
            raise ValueError("guessing must lie in [0, 1)")
        if np.any((self.model < 0) | (self.model >= len(MODELS))):
            raise ValueError("model index out of range")
        partial = np.isin(self.model, [MODELS.index(m) for m in PARTIAL_CREDIT])
        object.__setattr__(self, "partial_credit", _readonly(partial))
        for name in (
            "area",
            "kind",
            "model",
            "discrimination",
            "thresholds",
            "guessing",
            "n_categories",
            "operational",
        ):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "_index", {item_id: i for i, item_id in enumerate(self.item_ids)})

    # ------------------------------------------------------------------ build
    @classmethod
    def from_items(
        cls,
        *,
        version: str,
        item_ids: Sequence[str],
        areas: Sequence[str],
        models: Sequence[str],
        discrimination: Sequence[float],
        thresholds: Sequence[Sequence[float]],
        guessing: Sequence[float] | None = None,
        competences: Sequence[str] | None = None,
        basic_skills: Sequence[Sequence[str]] | None = None,
        kinds: Sequence[str] | None = None,
        operational: Sequence[bool] | None = None,
        area_codes: Sequence[str] | None = None,
        scale: Scale | None = None,
    ) -> ItemBank:
        """Build a bank from per-item values, with clear errors.

        ``thresholds[i]`` is ``[b]`` for 1PL/2PL/3PL items, the increasing
        boundary locations for graded items and the step parameters (in any
        order) for GPCM/PCM items. ``kinds`` defaults to knowledge
        for dichotomous items and skill for graded ones (a bare bank).
        ``area_codes`` fixes the order of areas; by default the sorted
        distinct values of ``areas``. ``scale`` is the framework's levels
        and overall rule (by default the Đà Nẵng framework's).
        """
        n = len(item_ids)
        for name, values in (
            ("areas", areas),
            ("models", models),
            ("discrimination", discrimination),
            ("thresholds", thresholds),
        ):
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} items")
        model_index = np.empty(n, dtype=np.int8)
        for i, m in enumerate(models):
            if m not in MODELS:
                raise ValueError(
                    f"item {item_ids[i]}: unknown model {m!r} (expected one of {', '.join(MODELS)})"
                )
            model_index[i] = MODELS.index(m)
        rows = [np.asarray(t, dtype=float).reshape(-1) for t in thresholds]
        for i, row in enumerate(rows):
            if row.size == 0:
                raise ValueError(f"item {item_ids[i]}: needs at least one threshold")
            if not np.all(np.isfinite(row)):
                raise ValueError(f"item {item_ids[i]}: thresholds must be finite numbers")
            name = MODELS[model_index[i]]
            if name not in POLYTOMOUS and row.size != 1:
                raise ValueError(f"item {item_ids[i]}: a {name} item has one difficulty b")
            # Step parameters of a partial-credit item may be in any order.
            if name == "grm" and np.any(np.diff(row) <= 0):
                raise ValueError(f"item {item_ids[i]}: thresholds must be strictly increasing")
        width = max(row.size for row in rows)
        table = np.full((n, width), np.inf)
        for i, row in enumerate(rows):
            table[i, : row.size] = row
        c = np.zeros(n) if guessing is None else np.asarray(guessing, dtype=float)
        c = np.where(model_index == MODELS.index("3pl"), c, 0.0)
        codes = (
            tuple(area_codes)
            if area_codes is not None
            else tuple(sorted(set(areas), key=_natural_key))
        )
        unknown = sorted(set(areas) - set(codes))
        if unknown:
            raise ValueError(f"areas not in area_codes: {', '.join(unknown)}")
        if kinds is None:
            kinds = ["skill" if MODELS[m] in POLYTOMOUS else "knowledge" for m in model_index]
        kind_index = np.empty(n, dtype=np.int8)
        for i, k in enumerate(kinds):
            if k not in KINDS:
                raise ValueError(
                    f"item {item_ids[i]}: unknown kind {k!r} (expected one of {', '.join(KINDS)})"
                )
            kind_index[i] = KINDS.index(k)
        return cls(
            version=version,
            item_ids=tuple(item_ids),
            area_codes=codes,
            area=np.array([codes.index(a) for a in areas], dtype=np.int16),
            competence=tuple(competences) if competences is not None else ("",) * n,
            basic_skills=tuple(tuple(b) for b in basic_skills) if basic_skills is not None else (),
            kind=kind_index,
            model=model_index,
            discrimination=np.asarray(discrimination, dtype=float),
            thresholds=table,
            guessing=c,
            n_categories=np.array([row.size + 1 for row in rows], dtype=np.int16),
            operational=np.ones(n, dtype=bool)
            if operational is None
            else np.asarray(operational, dtype=bool),
            scale=DEFAULT_SCALE if scale is None else scale,
        )

    # ---------------------------------------------------------------- queries
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_areas(self) -> int:
        return len(self.area_codes)

    @property
    def max_categories(self) -> int:
        return int(self.thresholds.shape[1] + 1)

    @property
    def max_score(self) -> np.ndarray:
        """Highest score of each item (categories are scored 0..m-1)."""
        return self.n_categories - 1

    def index(self, item_id: str) -> int:
        """Position of ``item_id``; ``KeyError`` with a clear message if absent."""
        try:
            return self._index[item_id]
        except KeyError:
            raise KeyError(f"item {item_id!r} is not in bank {self.version}") from None

    def indices(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.array([self.index(i) for i in item_ids], dtype=np.intp)

    def area_mask(self, area: int) -> np.ndarray:
        return self.area == area

    def subset(self, mask: np.ndarray, *, version: str | None = None) -> ItemBank:
        """A new bank with the items where ``mask`` is true (same area codes and scale)."""
        mask = np.asarray(mask, dtype=bool)
        keep = np.flatnonzero(mask)
        if keep.size == 0:
            raise ValueError("subset would leave no items")
        return self._take(keep, version=version or self.version)

    def restrict_areas(self, codes: Sequence[str]) -> ItemBank:
        """The bank of the areas ``codes`` only (a test of some areas scores those areas only).

        The areas keep the bank's order; the version stays (it is a view of
        the same bank version, and a test recorded on it finishes on it).

        Raises
        ------
        ValueError
            An unknown area code, or no area.
        """
        codes = tuple(str(c) for c in codes)
        unknown = [c for c in codes if c not in self.area_codes]
        if unknown or not codes:
            raise ValueError(
                f"areas {', '.join(unknown) or '(none)'} not in bank {self.version} "
                f"(its areas: {', '.join(self.area_codes)})"
            )
        kept = tuple(c for c in self.area_codes if c in codes)
        old = np.array([self.area_codes.index(c) for c in kept])
        keep = np.flatnonzero(np.isin(self.area, old))
        remap = np.full(self.n_areas, -1, dtype=np.int16)
        remap[old] = np.arange(old.size, dtype=np.int16)
        return self._take(keep, area_codes=kept, area=remap[self.area[keep]])

    def _take(
        self,
        keep: np.ndarray,
        *,
        version: str | None = None,
        area_codes: tuple[str, ...] | None = None,
        area: np.ndarray | None = None,
    ) -> ItemBank:
        """A bank of the items at positions ``keep`` (same scale; areas as given or the bank's)."""
        width = int(self.n_categories[keep].max()) - 1
        return ItemBank(
            version=self.version if version is None else version,
            item_ids=tuple(self.item_ids[i] for i in keep),
            area_codes=self.area_codes if area_codes is None else area_codes,
            area=self.area[keep] if area is None else area,
            competence=tuple(self.competence[i] for i in keep),
            basic_skills=tuple(self.basic_skills[i] for i in keep),
            kind=self.kind[keep],
            model=self.model[keep],
            discrimination=self.discrimination[keep],
            thresholds=self.thresholds[keep, :width],
            guessing=self.guessing[keep],
            n_categories=self.n_categories[keep],
            operational=self.operational[keep],
            scale=self.scale,
        )


def _natural_key(code: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in str(code).replace("-", ".").split("."))
