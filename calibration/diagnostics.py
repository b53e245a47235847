"""Item diagnostics a researcher expects from a calibration.

Findings are reported, never silently fixed: an item whose parameters the
data cannot identify keeps its live parameters (or is left out) and the
finding says so.

Severity
    ``error``: only a person can resolve it (an item keyed in reverse, a
    scale whose direction flipped, EM that did not converge): the bank is
    written as a draft and cannot go live. ``warning``: the calibration
    handled it (the item is not written as operational, or kept its current
    parameters) but a researcher should know. ``info``: context.

Codes: ``few_responses``, ``unused_category``, ``reversed``,
``scale_direction``, ``scale_reversed``, ``low_discrimination``,
``very_low_discrimination``, ``at_bound``, ``out_of_range``, ``misfit``,
``local_dependence``, ``drift``, ``not_converged``,
``current_parameters_kept``.

Discrimination follows Baker's (2001, *The Basics of Item Response Theory*,
table 2-1; logistic metric with D = 1, as here) verbal labels: very low
below 0.35, low 0.35-0.64, moderate 0.65-1.34, high 1.35-1.69, very high
from 1.70. An estimate beyond the operational range (:data:`OPERATIONAL_RANGE`:
a above 4 or a location beyond 6 logits) is not a plausible item on this
scale: it is what maximum likelihood does with too little information (a
Heywood-like case), so such an item is not written as operational.

Item fit is the RMSD between the item's "observed" pseudo-proportions on the
quadrature grid (expected counts from persons' posteriors, which works for
sparse adaptive data where sum scores do not exist) and the model curve,
weighted by the posterior distribution of the item's respondents (the
statistic used in PISA since 2015; flagged above 0.12). For graded items it
is computed on the expected item score divided by the maximum score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nangluc.calibration import kernels

#: Largest slope and largest absolute location (b, thresholds) of an estimate
#: that may be written as operational.
OPERATIONAL_RANGE = {"a": 4.0, "location": 6.0}
#: Baker's (2001) bounds between "very low", "low" and "moderate" discrimination.
VERY_LOW_DISCRIMINATION = 0.35
LOW_DISCRIMINATION = 0.65
#: An item is reversed when its responses correlate negatively with the
#: area's ability (below -0.05, one-sided p < 0.005), or its slope is <= 0.
REVERSED_CORRELATION = -0.05
REVERSED_Z = -2.576


@dataclass(frozen=True)
class Diagnostic:
    """One finding: ``item_id`` (None for the whole calibration), code, severity, message."""

    item_id: str | None
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return {
            "item_id": self.item_id,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"item {self.item_id}: " if self.item_id else ""
        return f"{self.severity}: {where}{self.message} [{self.code}]"


def item_fit_rmsd(
    family: str, params: np.ndarray, expected_counts: np.ndarray, theta: np.ndarray
) -> float:
    """RMSD item fit from expected counts (K x Q) at the estimates.

    Parameters
    ----------
    family : {"graded", "3pl"}
    params : ndarray
        Slope-intercept parameters of the item.
    expected_counts : ndarray, shape (K, Q)
        Posterior-expected responses per category and quadrature point.
    theta : ndarray, shape (Q,)

    Returns
    -------
    float
        Root mean squared difference between observed and model expected
        score (as a fraction of the maximum score), weighted over the grid.
    """
    prob, _ = kernels.probabilities_and_derivatives(family, params[None, :], theta)
    prob = prob[0]  # (Q, K)
    n_q = expected_counts.sum(axis=0)
    total = n_q.sum()
    if total <= 0:
        return float("nan")
    k = prob.shape[1]
    scores = np.arange(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(n_q > 0, (scores @ expected_counts) / n_q, 0.0)
    model = prob @ scores
    weight = n_q / total
    return float(np.sqrt(weight @ (observed - model) ** 2) / (k - 1))


def orientation(expected_counts: np.ndarray, theta: np.ndarray) -> dict[str, float | bool]:
    """Correlation of an item's score with the area's ability, from the posterior.

    Computed over the posterior-expected counts (K x Q), so it works for
    sparse adaptive data where no sum score exists: the joint distribution
    of (theta, score) among the item's respondents. A positive value means
    that higher ability goes with a higher score, as a correctly keyed item
    should; the posteriors come mostly from the area's other items.

    Returns
    -------
    dict
        ``correlation``, ``n`` (respondents) and ``z`` (Fisher's z times
        sqrt(n - 3)).
    """
    counts = np.asarray(expected_counts, dtype=float)
    n = float(counts.sum())
    if n <= 3:
        return {"correlation": float("nan"), "n": n, "z": float("nan")}
    scores = np.arange(counts.shape[0], dtype=float)
    p_theta = counts.sum(axis=0) / n
    p_score = counts.sum(axis=1) / n
    mean_theta = p_theta @ theta
    mean_score = p_score @ scores
    cov = (scores - mean_score) @ (counts / n) @ (theta - mean_theta)
    var_theta = p_theta @ (theta - mean_theta) ** 2
    var_score = p_score @ (scores - mean_score) ** 2
    if var_theta <= 0 or var_score <= 0:
        return {"correlation": float("nan"), "n": n, "z": float("nan")}
    r = float(np.clip(cov / np.sqrt(var_theta * var_score), -0.999999, 0.999999))
    return {"correlation": r, "n": n, "z": float(np.arctanh(r) * np.sqrt(n - 3))}


def is_reversed(est: dict) -> bool:
    """An estimate that points against its area (see :data:`REVERSED_CORRELATION`)."""
    o = est["orientation"]
    return bool(est["a"] <= 0 or (o["correlation"] < REVERSED_CORRELATION and o["z"] < REVERSED_Z))


def orientation_findings(
    area: str, items: list[tuple[str, dict]], hints: dict[str, str]
) -> list[Diagnostic]:
    """Reversed items of one area, and a warning that the majority set the direction.

    Marks each estimate's ``orientation["reversed"]``.
    """
    out = []
    reversed_ids = []
    for item_id, est in items:
        flag = is_reversed(est)
        est["orientation"]["reversed"] = flag
        if not flag:
            continue
        reversed_ids.append(item_id)
        r = est["orientation"]["correlation"]
        out.append(
            Diagnostic(
                item_id,
                "reversed",
                "error",
                f"runs against area {area}: its score falls as ability rises (correlation "
                f"{r:+.2f} over {est['orientation']['n']:.0f} respondents, a = {est['a']:.2f}). "
                f"{hints.get(item_id) or 'Reverse its key or its scoring, then calibrate again.'}",
            )
        )
    if reversed_ids:
        out.append(
            Diagnostic(
                None,
                "scale_direction",
                "warning",
                f"area {area}: {len(reversed_ids)} of {len(items)} items run against the others "
                f"({', '.join(reversed_ids[:12])}). A scale's direction is set by the majority of "
                "its items: if it is the majority that is keyed in reverse, every estimate of this "
                "area is reversed. Check the keys of the flagged items first.",
            )
        )
    return out


def direction_against_live(area: str, pairs: list[tuple[dict, dict]]) -> Diagnostic | None:
    """An error when an area's new estimates run opposite to the live scale.

    ``pairs`` are (new estimate, live parameters) of the area's anchors
    before linking. Their locations correlate strongly and positively on
    the same scale; a clearly negative correlation means the fit turned the
    scale around (the majority of the area's items keyed in reverse in these
    data), which no linking can repair.
    """
    if len(pairs) < 3:
        return None
    new = np.array([np.mean(p[0]["thresholds"]) for p in pairs])
    live = np.array([np.mean(p[1]["thresholds"]) for p in pairs])
    if new.std() <= 0 or live.std() <= 0:
        return None
    r = float(np.corrcoef(new, live)[0, 1])
    if r >= -0.3:
        return None
    return Diagnostic(
        None,
        "scale_reversed",
        "error",
        f"area {area} runs in the opposite direction to the live scale: the locations of its "
        f"{len(pairs)} anchors correlate {r:+.2f} with their live values. Most likely most of "
        "the area's items are keyed or scored in reverse in these data (the majority sets a "
        "scale's direction); check the keys and the scoring of the export. The area is not linked.",
    )


@dataclass(frozen=True)
class ItemFindings:
    """What the diagnostics say about one item's new estimate.

    ``insufficient``: reasons the data cannot pin the item down (an item
    that is live keeps its current parameters); ``against``: reasons the
    data speak against the item (it does not go live on these estimates).
    """

    diagnostics: tuple[Diagnostic, ...]
    insufficient: tuple[str, ...]
    against: tuple[str, ...]


def item_findings(item_id: str, est: dict, n: int, min_responses: int) -> ItemFindings:
    """Findings on one item's estimate (on the output scale) and what they mean for going live."""
    found: list[Diagnostic] = []
    insufficient: list[str] = []
    against: list[str] = []
    a = est["a"]
    locations = np.asarray(est["thresholds"], dtype=float)
    if n < min_responses:
        message = f"only {n} responses (fewer than {min_responses}): too few for an estimate that goes live"
        found.append(Diagnostic(item_id, "few_responses", "warning", message))
        insufficient.append(message)
    if est.get("at_bound"):
        message = (
            f"{', '.join(est['at_bound'])} reached the estimation bound: the likelihood has no "
            "interior maximum for this item"
        )
        found.append(Diagnostic(item_id, "at_bound", "warning", message))
        insufficient.append(message)
    if a > OPERATIONAL_RANGE["a"] or np.any(np.abs(locations) > OPERATIONAL_RANGE["location"]):
        shown = ", ".join(f"{t:.2f}" for t in locations)
        message = (
            f"a = {a:.2f}, location(s) {shown}: outside the operational range "
            f"(a <= {OPERATIONAL_RANGE['a']:g}, |location| <= {OPERATIONAL_RANGE['location']:g})"
        )
        found.append(Diagnostic(item_id, "out_of_range", "warning", message))
        insufficient.append(message)
    if est["orientation"].get("reversed"):
        # reported by orientation_findings as an error
        against.append("runs against its area (reversed key or scoring)")
    elif 0 < a < VERY_LOW_DISCRIMINATION:
        message = (
            f"very low discrimination a = {a:.2f} (below {VERY_LOW_DISCRIMINATION}, Baker 2001): "
            "the item hardly measures its area"
        )
        found.append(Diagnostic(item_id, "very_low_discrimination", "warning", message))
        against.append(message)
    elif a < LOW_DISCRIMINATION:
        found.append(
            Diagnostic(
                item_id,
                "low_discrimination",
                "info",
                f"low discrimination a = {a:.2f} ({VERY_LOW_DISCRIMINATION}-"
                f"{LOW_DISCRIMINATION - 0.01:.2f}, Baker 2001): the item adds little information",
            )
        )
    return ItemFindings(tuple(found), tuple(insufficient), tuple(against))
