"""Provisional IRT parameters, set by a fixed rule before any response data exists.

The rule uses only what the item writers decided — the item's kind (ksa), its
intended level (1 Bắt đầu … 5 Nâng cao) and its number of options — plus
seeded random jitter, so that the bank is usable (and honest about being a
guess) until calibration replaces every value. It is *not* tuned to make the
adaptive test look good; change it only with a reason written in the README.

The rule, on the θ scale (mean 0, SD 1 in the population):

* location of an item of level ℓ: ``μ = ℓ − 3`` (−2, −1, 0, 1, 2), plus a
  jitter drawn from Normal(0, 0.25) and clipped to ±0.5 so items of one level
  are not all identical. For a framework with other levels (``levels``: its
  codes in increasing order, L of them) the level at position p (1..L) sits
  at ``μ = p − (L + 1) / 2``: one θ unit apart, centred on 0 (for the five
  Đà Nẵng levels this is ``ℓ − 3``; for four levels −1.5, −0.5, 0.5, 1.5);
* knowledge items (multiple choice with a key): 3PL, ``b = location``,
  guessing ``c = 1 / number of options`` (blind guessing), discrimination
  ``a`` log-normal with median 1.2 and log-SD 0.25, clipped to [0.6, 2.0];
* skill items (ordered "how well can you …" answers): graded response model,
  ``a`` log-normal with median 1.5, log-SD 0.25, clipped to [0.8, 2.5]; the
  boundary into "can do it on my own" (the middle boundary) sits at the
  location, the others one step of 0.8–1.2 (uniform) below and above
  ("with help" is easier by about one level, "can teach others" harder);
* attitude items (agreement statements): graded, ``a`` log-normal with median
  1.0, log-SD 0.25, clipped to [0.8, 1.8] — attitudes are expected to relate
  to competence more weakly than skills — thresholds as for skills;
* items with no ksa follow their options: a key → knowledge, else skill.

Each item's random numbers come from its own generator seeded with
``(seed, sha256(item id))`` so that adding or removing an item does not change
any other item's parameters. Values are rounded to 2 decimals (thresholds
keep at least 0.5 apart, so rounding cannot unorder them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

RULE_ID = "nangluc-provisional-1"
DEFAULT_SEED = 20241018  # the date of Decision 2242/QĐ-UBND

LOCATION_BY_LEVEL = {1: -2.0, 2: -1.0, 3: 0.0, 4: 1.0, 5: 2.0}
LOCATION_JITTER_SD = 0.25
LOCATION_JITTER_MAX = 0.5
# (median, log-SD, lower clip, upper clip) of the discrimination a.
DISCRIMINATION = {
    "knowledge": (1.2, 0.25, 0.6, 2.0),
    "skill": (1.5, 0.25, 0.8, 2.5),
    "attitude": (1.0, 0.25, 0.8, 1.8),
}
THRESHOLD_STEP = (0.8, 1.2)  # uniform range of the distance between neighbouring thresholds
DEFAULT_GRADED_CATEGORIES = 4


def item_rng(seed: int, item_id: str) -> np.random.Generator:
    """The generator of one item: independent of every other item's."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng([int(seed), *words])


def _discrimination(rng: np.random.Generator, ksa: str) -> float:
    median, log_sd, low, high = DISCRIMINATION[ksa]
    return float(np.clip(median * np.exp(rng.normal(0.0, log_sd)), low, high))


def location_by_level(levels: Sequence[int] | None = None) -> dict[int, float]:
    """The rule's location of each level code: position p of L levels at ``p - (L + 1) / 2``."""
    if levels is None:
        return dict(LOCATION_BY_LEVEL)
    codes = [int(code) for code in levels]
    return {code: p + 1 - (len(codes) + 1) / 2 for p, code in enumerate(codes)}


def provisional_parameters(
    item: Mapping[str, Any], seed: int = DEFAULT_SEED, levels: Sequence[int] | None = None
) -> dict[str, Any]:
    """Model and parameters of one item by the provisional rule.

    Parameters
    ----------
    item : mapping
        Needs ``id`` and ``level`` (a code of ``levels``); uses ``ksa``, ``options`` and
        ``key`` when present.
    seed : int
        The rule's seed (recorded in the bank's metadata).
    levels : sequence of int, optional
        The framework's level codes in increasing order (default 1..5, the
        Đà Nẵng levels); see :func:`location_by_level`.

    Returns
    -------
    dict
        ``{"model": "3pl", "a": .., "b": .., "c": ..}`` or
        ``{"model": "grm", "a": .., "thresholds": [..]}``.

    Raises
    ------
    ValueError
        If the level is missing or not one of ``levels``, or the ksa is unknown.
    """
    item_id = item.get("id")
    level = item.get("level")
    locations = location_by_level(levels)
    if isinstance(level, bool) or level not in locations:
        codes = list(locations)
        consecutive = codes == list(range(codes[0], codes[-1] + 1))
        known = (
            f"{codes[0]}..{codes[-1]}" if consecutive else "one of " + ", ".join(map(str, codes))
        )
        raise ValueError(
            f"item {item_id}: the provisional rule needs a level {known} (got {level!r})"
        )
    options = item.get("options") or ()
    ksa = item.get("ksa") or ("knowledge" if item.get("key") is not None else "skill")
    if ksa not in DISCRIMINATION:
        raise ValueError(
            f"item {item_id}: unknown ksa {ksa!r} (expected knowledge, skill or attitude)"
        )
    rng = item_rng(seed, str(item_id))
    # Draw in a fixed order (jitter, a, steps) so each value is reproducible.
    jitter = float(
        np.clip(rng.normal(0.0, LOCATION_JITTER_SD), -LOCATION_JITTER_MAX, LOCATION_JITTER_MAX)
    )
    location = locations[level] + jitter
    a = round(_discrimination(rng, ksa), 2)
    if ksa == "knowledge":
        n_options = len(options) if options else 4
        if n_options < 2:
            raise ValueError(f"item {item_id}: a multiple-choice item needs at least 2 options")
        return {"model": "3pl", "a": a, "b": round(location, 2), "c": round(1.0 / n_options, 4)}
    n_categories = len(options) if options else DEFAULT_GRADED_CATEGORIES
    if n_categories < 2:
        raise ValueError(f"item {item_id}: a graded item needs at least 2 options")
    steps = rng.uniform(*THRESHOLD_STEP, size=n_categories - 2)
    # The boundary into the middle category sits at the location; the others
    # spread out one step at a time on either side.
    middle = (n_categories - 1) // 2
    offsets = np.zeros(n_categories - 1)
    for k in range(middle - 1, -1, -1):
        offsets[k] = offsets[k + 1] - steps[k]
    for k in range(middle + 1, n_categories - 1):
        offsets[k] = offsets[k - 1] + steps[k - 1]
    thresholds = [round(float(location + o), 2) for o in offsets]
    return {"model": "grm", "a": a, "thresholds": thresholds}


def parameter_source(
    seed: int = DEFAULT_SEED, levels: Sequence[int] | None = None
) -> dict[str, Any]:
    """The rule as recorded in a bank's ``metadata.parameter_source``."""
    return {
        "method": RULE_ID,
        "provisional": True,
        "description": (
            "No response data exists yet: parameters were set by a fixed rule from each item's "
            "kind (ksa), intended level and number of options, with seeded jitter. They are "
            "guesses, not estimates; calibration on real responses must replace them. "
            "See items/README.md and items/provisional.py."
        ),
        "seed": int(seed),
        "per_item_seed": "numpy default_rng([seed, first four 32-bit little-endian words of sha256(item id)])",
        "location_by_level": {str(k): v for k, v in location_by_level(levels).items()},
        "location_jitter": {
            "distribution": "normal",
            "sd": LOCATION_JITTER_SD,
            "clip": LOCATION_JITTER_MAX,
        },
        "knowledge": {
            "model": "3pl",
            "b": "location",
            "c": "1 / number of options",
            "a": _a_rule("knowledge"),
        },
        "skill": {
            "model": "grm",
            "thresholds": "middle boundary at the location, neighbours one uniform(0.8, 1.2) step apart",
            "a": _a_rule("skill"),
        },
        "attitude": {
            "model": "grm",
            "thresholds": "as for skill items",
            "a": _a_rule("attitude"),
        },
        "rounding": "2 decimals (c: 4)",
    }


def _a_rule(ksa: str) -> dict[str, Any]:
    median, log_sd, low, high = DISCRIMINATION[ksa]
    return {"distribution": "lognormal", "median": median, "log_sd": log_sd, "clip": [low, high]}
