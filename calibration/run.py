"""From response data to a new bank version: fit, link, diagnose, document.

:func:`calibrate_bank` is the one entry point of the CLI, the service and
researchers' scripts; :func:`online_calibrate` is its fixed-parameter form
for pretest items seeded into live tests.

Choices (documented for researchers)
------------------------------------
* Each area is its own latent scale (DESIGN §4): the areas are calibrated
  separately; a person's responses in area A only inform their theta_A.
* Free calibration fixes every area's latent distribution at N(0, 1). With a
  current bank the new estimates are then linked to the live scale per area
  (Stocking-Lord by default, Haebara on request) through the anchors; the
  live-scale latent mean/SD of the calibration sample are then (B, A).
* Fixed-parameter (online) calibration holds the named items at their live
  values, so the scale needs no linking, and estimates each area's latent
  mean and SD alongside the free items.
* ``model="auto"``: items with more than two categories (in the bank or the
  data) are graded; a dichotomous item is 3PL when the current bank says it
  is 3PL, or it is a knowledge item with a keyed multiple-choice question;
  otherwise 2PL. Every item's model is checked against its bank record
  (keys, options, categories) before anything is fitted.
* Priors (:mod:`nangluc.calibration.priors`, on by default, ``Priors.none()``
  for plain marginal ML): log-normal on a, normal on b and the thresholds,
  Beta on c, as in BILOG-MG. The fit then maximises the marginal posterior;
  ``fit.loglik`` is still the marginal log-likelihood and
  ``fit.log_posterior`` adds the log prior.
* Which estimates go live: an item's new estimate is written as operational
  only when it rests on at least ``min_responses`` responses (default
  :data:`DEFAULT_MIN_RESPONSES`), no parameter sits on its bound, it points
  the same way as its area, and it lies in the operational range
  (:data:`nangluc.calibration.diagnostics.OPERATIONAL_RANGE`). Otherwise an
  item that is operational in the current bank keeps its current parameters
  (which are on the live scale), and any other item is written as
  ``pretest`` with its ``status_reason``.
* Severity: an *error* is a problem only a person can resolve (an item
  keyed in reverse, a scale whose direction flipped, EM that did not
  converge); the bank is then written with status ``draft`` and cannot go
  live (:mod:`nangluc.calibration.gate`). Warnings and notes describe what
  the calibration already handled.
* Standard errors: empirical cross-product (XPD) information of the
  marginal likelihood (plus the priors' curvature), carried to (a, b, c) by
  the delta method; linking error is not included. On very large data the
  cross-products come from a systematic sample of persons scaled to the full
  sample (see :func:`nangluc.calibration.mml._cross_product_covariance`).
* EM: Bock-Aitkin over an equally spaced grid chosen per area from the data
  (:func:`nangluc.calibration.mml.grid_for`) and verified against a grid
  twice as fine (:func:`nangluc.calibration.mml.fit_scale`), accelerated by
  SQUAREM; stops when no free parameter (slope-intercept form) moves by more
  than ``tol`` in a cycle. ``fit.iterations`` counts E-steps (the largest
  over the areas).
* The inter-area correlation is the correlation of persons' EAP estimates
  over the persons who answered both areas, divided by the square root of
  the product of the two areas' empirical reliabilities
  (var EAP / (var EAP + mean posterior variance)), i.e. corrected for
  unreliability.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logit
from scipy.stats import false_discovery_control

from nangluc.calibration import diagnostics as diag
from nangluc.calibration import itemfit, kernels, mml
from nangluc.calibration.data import ResponseData
from nangluc.calibration.diagnostics import Diagnostic
from nangluc.calibration.linking import METHODS, Linking, link
from nangluc.calibration.priors import DEFAULT_PRIORS, Priors
from nangluc.items.schema import ITEM_KEYS

if TYPE_CHECKING:
    from nangluc.items import BankDocument

MODEL_CHOICES = ("auto", "2pl", "3pl", "grm", "gpcm", "1pl", "pcm")
#: The estimation family of each bank model: 1PL and PCM items of an area
#: share one slope (a Rasch-family scale with the latent SD absorbed into it).
FAMILY = {
    "3pl": kernels.THREEPL,
    "gpcm": kernels.GPCM,
    "1pl": kernels.SHARED,
    "pcm": kernels.SHARED,
}
POLYTOMOUS_MODELS = ("grm", "gpcm", "pcm")
DICHOTOMOUS_MODELS = ("2pl", "3pl", "1pl")


def _family(model: str) -> str:
    return FAMILY.get(model, kernels.GRADED)


#: Fewest responses on which a new estimate may be written as operational.
#: About 200 responses per item is the usual minimum for stable 2PL/graded
#: estimates with priors (de Ayala 2009, ch. 4 and 8); fewer leave the SE of
#: a near 0.2 or more.
DEFAULT_MIN_RESPONSES = 200
#: EM convergence: largest change of a free parameter in one cycle.
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MAX_ITERATIONS = 2000
#: Drift against the current bank is reported when |z| > DRIFT_Z and the
#: change is at least DRIFT_B logits in location, or DRIFT_A of the slope.
DRIFT_Z = 3.0
DRIFT_B = 0.3
DRIFT_A = 0.3


@dataclass(frozen=True)
class FitInfo:
    """Convergence summary: marginal log-likelihood, log prior and per-area details.

    ``loglik`` is the marginal log-likelihood of the data at the estimates;
    ``log_prior`` the log density of the item priors there (0 without
    priors); ``log_posterior`` their sum, the quantity EM maximised.
    """

    loglik: float
    iterations: int
    converged: bool
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_prior: float = 0.0

    @property
    def log_posterior(self) -> float:
        return self.loglik + self.log_prior

    def to_dict(self) -> dict[str, Any]:
        return {
            "loglik": self.loglik,
            "log_prior": self.log_prior,
            "log_posterior": self.log_posterior,
            "iterations": self.iterations,
            "converged": self.converged,
            "areas": self.areas,
        }


@dataclass(frozen=True)
class CalibrationRun:
    """What a calibration produced.

    Attributes
    ----------
    document : dict
        The new bank document (DESIGN §3): status ``calibrated`` (``draft``
        when there are error-level diagnostics), ``parent`` = the current
        version, per-item ``se``; ``metadata["calibration"]`` holds the fit,
        linking, latent distribution, priors and diagnostics.
    linking : tuple of Linking
        One entry per linked area (empty without a current bank or in a
        fixed-parameter calibration).
    diagnostics : tuple of Diagnostic
    fit : FitInfo
    latent : dict
        Per area ``{"mean", "sd", "estimated"}`` on the output scale.
    correlation : dict or None
        ``{"areas": [...], "matrix": [[...]], "n": [[...]], "method": ...}``.
    items : tuple of dict
        Per estimated item: id, area, model, responses, the estimates (a,
        thresholds, c) and their SEs on the output scale, fit statistics,
        orientation and the decision (``operational``, ``pretest``, ``kept``
        or ``left out``) with its reasons. Reports and the gate read this.
    """

    document: dict[str, Any]
    linking: tuple[Linking, ...]
    diagnostics: tuple[Diagnostic, ...]
    fit: FitInfo
    latent: dict[str, dict[str, Any]]
    correlation: dict[str, Any] | None
    items: tuple[dict[str, Any], ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


@dataclass(frozen=True)
class _ItemPlan:
    item_id: str
    area: str
    model: str  # bank model name: 2pl / 3pl / grm / gpcm
    family: str
    n_categories: int
    fixed: bool
    start: np.ndarray
    prior: np.ndarray


def calibrate_bank(
    data: ResponseData,
    *,
    model: str = "auto",
    current: BankDocument | None = None,
    anchors: Sequence[str] | None = None,
    fixed: Sequence[str] | None = None,
    progress: bool = False,
    version: str | None = None,
    linking_method: str = "stocking-lord",
    n_quadrature: int | None = None,
    quadrature_bound: float | None = None,
    tol: float = DEFAULT_TOLERANCE,
    max_iter: int = DEFAULT_MAX_ITERATIONS,
    min_responses: int = DEFAULT_MIN_RESPONSES,
    priors: Priors = DEFAULT_PRIORS,
) -> CalibrationRun:
    """Calibrate item parameters from response data into a new bank version.

    Parameters
    ----------
    data : ResponseData
        From :func:`nangluc.calibration.read_responses` (validated).
    model : {"auto", "2pl", "3pl", "grm", "gpcm", "1pl", "pcm"}
        Item model; ``2pl``/``3pl``/``1pl`` apply to dichotomous items
        (graded items are an error then), ``grm`` fits every item as graded,
        ``gpcm`` as generalized partial credit and ``pcm`` as partial credit
        (keyed multiple-choice items of the current bank are an error then).
        1PL and PCM items of an area share one slope ``a``. ``auto`` keeps the
        1PL, GPCM and PCM models of items that have them in the current bank
        and otherwise chooses grm, 3pl or 2pl.
    current : BankDocument, optional
        The live bank: the parent of the new version, the source of item
        texts and keys, and the scale to link to.
    anchors : sequence of str, optional
        Anchor items for linking (default: every estimated item of an area
        that is operational in ``current``).
    fixed : sequence of str, optional
        Items held at their ``current`` parameters (fixed-parameter / online
        calibration); no linking is then needed.
    progress : bool
        Show a progress bar per area on stderr.
    version : str, optional
        The new version id (default: ``<parent>-cal<UTC time>-<6 random hex
        digits>``, unique even for calibrations started in the same second).
    linking_method : {"stocking-lord", "haebara"}
    n_quadrature, quadrature_bound, tol, max_iter : int or None, float or None, float, int
        EM settings: grid points and half-width (default: chosen per area
        from the data and verified against a finer grid, see
        :func:`nangluc.calibration.mml.fit_scale`); stop when
        no free parameter (slope-intercept form) changes by more than ``tol``
        in a cycle, or after ``max_iter`` E-steps (an error: not converged).
    min_responses : int
        A new estimate from fewer responses is never written as operational.
    priors : Priors
        Item priors (default: :data:`nangluc.calibration.priors.DEFAULT_PRIORS`;
        ``Priors.none()`` for marginal maximum likelihood).

    Returns
    -------
    CalibrationRun

    Raises
    ------
    ValueError
        Unknown model or linking method, bad EM settings, anchors or fixed
        items that are not in the data/current bank, items not in the current
        bank, a model that does not suit an item of the current bank, an
        area without anchors, or a dichotomous model asked for graded items.
        Everything is checked before fitting.
    """
    if model not in MODEL_CHOICES:
        raise ValueError(f"unknown model {model!r} (expected one of {', '.join(MODEL_CHOICES)})")
    if linking_method not in METHODS:
        raise ValueError(
            f"unknown linking method {linking_method!r} (expected one of {', '.join(METHODS)})"
        )
    if not isinstance(priors, Priors):
        raise TypeError(f"priors must be a Priors object, got {type(priors).__name__}")
    if not (isinstance(tol, int | float) and tol > 0):
        raise ValueError(f"tolerance must be a number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 3:
        raise ValueError(f"max_iter must be an integer >= 3, got {max_iter!r}")
    if isinstance(min_responses, bool) or not isinstance(min_responses, int) or min_responses < 1:
        raise ValueError(f"min_responses must be an integer >= 1, got {min_responses!r}")
    if data.n_responses == 0:
        raise ValueError("no responses to calibrate")
    fixed_ids = tuple(dict.fromkeys(fixed or ()))
    anchor_ids = tuple(dict.fromkeys(anchors or ()))
    _check_ids(data, current, anchor_ids, fixed_ids)
    diagnostics: list[Diagnostic] = []
    plans = _plan_items(data, model, current, set(fixed_ids), priors)
    _check_models(plans, current)
    counts = data.category_counts()
    n_responses = counts.sum(axis=1)

    # Items whose parameters the data cannot identify (a category never used)
    # are left out of the fit and reported; they keep their live values.
    estimable = np.ones(data.n_items, dtype=bool)
    for i, plan in enumerate(plans):
        if plan.fixed:
            continue
        unused = (
            [k for k in range(plan.n_categories) if counts[i, k] == 0]
            if plan.n_categories <= counts.shape[1]
            else []
        )
        unused += list(range(counts.shape[1], plan.n_categories))
        if unused:
            estimable[i] = False
            kept = current is not None and plan.item_id in current
            diagnostics.append(
                Diagnostic(
                    plan.item_id,
                    "unused_category",
                    "warning",
                    f"category {', '.join(map(str, unused))} never used in {int(n_responses[i])} "
                    "responses: parameters not estimable; "
                    + ("current parameters kept" if kept else "item left out of the new bank")
                    + "; if the category stays unused with more data, merge it with its neighbour",
                )
            )

    jobs = [(*job, _scale_items(plans, job[1])) for job in _area_jobs(data, plans, estimable)]

    def fit_area(job, slot):
        code, local, persons, unit, item, response, items = job
        callback, close = _progress(code, progress, slot)
        try:
            fit = mml.fit_scale(
                unit,
                item,
                response,
                items,
                estimate_latent=bool(items.fixed.any()),
                n_quadrature=n_quadrature,
                quadrature_bound=quadrature_bound,
                max_iter=max_iter,
                tol=tol,
                on_iteration=callback,
            )
        finally:
            close()
        return code, (local, fit, persons)

    # The areas are independent scales: fit them side by side (numpy and
    # scipy's sparse kernels release the GIL in their loops).
    workers = max(1, min(len(jobs), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(fit_area, jobs, range(len(jobs))))
    results: dict[str, tuple[np.ndarray, mml.ScaleFit, np.ndarray]] = dict(done)
    for code, (_, fit, _) in results.items():
        if not fit.converged:
            diagnostics.append(
                Diagnostic(
                    None,
                    "not_converged",
                    "error",
                    f"area {code}: EM stopped after {fit.iterations} E-steps without converging "
                    f"(tolerance {tol:g}); the estimates are not a maximum. Raise --max-iterations, "
                    "or look for items without enough responses",
                )
            )

    # Per-item estimates on the calibration scale, their fit and orientation.
    estimates: dict[int, dict[str, Any]] = {}
    for local, fit, _ in results.values():
        for j, i in enumerate(local):
            if plans[i].fixed:
                continue
            est = _item_estimate(plans[i], fit.params[j], fit.cov[j])
            est["rmsd"] = diag.item_fit_rmsd(
                plans[i].family, fit.params[j], fit.expected_counts[j], fit.theta
            )
            est["orientation"] = diag.orientation(fit.expected_counts[j], fit.theta)
            est["at_bound"] = mml.at_bound(plans[i].family, fit.params[j])
            estimates[i] = est

    # Item fit (S-X² on common forms, BH over items) and local dependence (Q3).
    jobs_by_code = {job[0]: job for job in jobs}
    sx2: dict[int, dict[str, float]] = {}
    for code, (local, fit, _) in results.items():
        _, _, _, unit, item, response, items = jobs_by_code[code]
        weights = fit.latent_weights / fit.latent_weights.sum()
        families = list(items.family)
        found = itemfit.sum_score_fit(
            families, fit.params, items.n_categories, unit, item, response, fit.theta, weights
        )
        for j, entry in found.items():
            if not plans[local[j]].fixed:
                sx2[int(local[j])] = entry
        pairs, average = itemfit.residual_q3(
            families, fit.params, unit, item, response, fit.eap, len(local)
        )
        for j, k, q3, n in pairs:
            if q3 - average > itemfit.Q3_EXCESS:
                diagnostics.append(
                    Diagnostic(
                        plans[local[j]].item_id,
                        "local_dependence",
                        "warning",
                        f"with item {plans[local[k]].item_id}: Q3 = {q3:.2f} over {n} respondents "
                        f"(area average {average:+.2f}; Yen 1984, cut: average + {itemfit.Q3_EXCESS}): "
                        "the two items share something beyond the area (a common stem, one "
                        "answer giving the other away); consider keeping only one in a test",
                    )
                )
    if sx2:
        order = sorted(sx2)
        q_values = false_discovery_control([sx2[i]["p"] for i in order], method="bh")
        for i, q in zip(order, q_values, strict=True):
            sx2[i]["q"] = float(q)
            if i in estimates:
                estimates[i]["fit"] = sx2[i]
            if q < 0.05:
                diagnostics.append(
                    Diagnostic(
                        plans[i].item_id,
                        "misfit",
                        "warning",
                        f"S-X² = {sx2[i]['s_x2']:.1f} (df {sx2[i]['df']:.0f}, p {sx2[i]['p']:.2g}, "
                        f"q {q:.2g} after Benjamini-Hochberg; Orlando & Thissen 2000): observed "
                        "scores depart from the model's at some summed scores",
                    )
                )

    # Orientation: items that run against their area, and areas whose
    # direction the majority of their items decided.
    flipped: set[str] = set()
    for code, (local, _, _) in results.items():
        found = diag.orientation_findings(
            code,
            [(plans[i].item_id, estimates[i]) for i in local if i in estimates],
            {plans[i].item_id: _reversal_hint(current, plans[i].item_id) for i in local},
        )
        diagnostics.extend(found)
        if current is not None and not fixed_ids:
            check = diag.direction_against_live(
                code,
                [
                    (estimates[i], _live_params(current.item(plans[i].item_id)))
                    for i in local
                    if i in estimates
                    and _is_anchor(plans[i], current, anchor_ids)
                    and not estimates[i]["orientation"]["reversed"]
                ],
            )
            if check is not None:
                diagnostics.append(check)
                flipped.add(code)

    linkings: list[Linking] = []
    latent: dict[str, dict[str, Any]] = {}
    for code, (local, fit, _) in results.items():
        if any(plans[i].fixed for i in local):
            latent[code] = {
                "mean": fit.latent_mean,
                "sd": fit.latent_sd,
                "estimated": True,
                "scale": "fixed items",
            }
            continue
        if current is None or fixed_ids:
            latent[code] = {"mean": 0.0, "sd": 1.0, "estimated": False, "scale": "fixed at N(0, 1)"}
            continue
        if code in flipped:
            latent[code] = {
                "mean": 0.0,
                "sd": 1.0,
                "estimated": False,
                "scale": "not linked: the area's direction is reversed against the live scale",
            }
            continue
        chosen = [
            i
            for i in local
            if i in estimates
            and _is_anchor(plans[i], current, anchor_ids)
            and estimates[i]["a"] > 0
            and not estimates[i]["orientation"]["reversed"]
        ]
        if not chosen:
            raise ValueError(
                f"area {code} has no anchor items (items of the current bank estimated from these data); "
                "name anchors with --anchor, or calibrate without --bank"
            )
        new = _stack([estimates[i] for i in chosen])
        live = _stack([_live_params(current.item(plans[i].item_id)) for i in chosen])
        partial = (
            np.array([plans[i].family == kernels.GPCM for i in chosen]),
            np.array(
                [_family(current.item(plans[i].item_id).model) == kernels.GPCM for i in chosen]
            ),
        )
        result = link(
            code,
            tuple(plans[i].item_id for i in chosen),
            new,
            live,
            method=linking_method,
            partial_credit=partial,
        )
        linkings.append(result)
        for i in local:
            if i in estimates:
                _apply_linking(estimates[i], result.A, result.B)
        latent[code] = {
            "mean": result.B,
            "sd": result.A,
            "estimated": True,
            "scale": f"linked ({linking_method})",
        }

    # What each estimate becomes: operational, pretest (with reasons), or the
    # current parameters kept.
    reviews: list[dict[str, Any]] = []
    for i, est in estimates.items():
        plan = plans[i]
        n = int(n_responses[i])
        findings = diag.item_findings(plan.item_id, est, n, min_responses)
        diagnostics.extend(findings.diagnostics)
        against = list(findings.against)
        if plan.area in flipped:
            against.append("its area's direction is reversed against the live scale")
        live = (
            current.item(plan.item_id) if current is not None and plan.item_id in current else None
        )
        if live is not None and plan.area not in flipped and not fixed_ids:
            est["drift"] = itemfit.drift(est, {**_live_params(live), "se": live.se})
            shift = est["drift"]
            if shift is not None and (
                (abs(shift["z_b"]) > DRIFT_Z and abs(shift["delta_b"]) >= DRIFT_B)
                or (abs(shift["z_a"]) > DRIFT_Z and abs(shift["delta_a"]) >= DRIFT_A * live.a)
            ):
                diagnostics.append(
                    Diagnostic(
                        plan.item_id,
                        "drift",
                        "warning",
                        f"moved against the current bank: a {live.a:.2f} -> {est['a']:.2f} "
                        f"(z {shift['z_a']:+.1f}), location {np.mean(live.thresholds):.2f} -> "
                        f"{np.mean(est['thresholds']):.2f} (z {shift['z_b']:+.1f}); check its "
                        "wording and whether it became known or easier (e.g. taught in classes)",
                    )
                )
        est["decision"], est["reasons"] = _decide(
            list(findings.insufficient), against, live, _writable(est)
        )
        reviews.append(_review(plan, est, n, live))
    kept = [r for r in reviews if r["decision"] == "kept"]
    if kept:
        diagnostics.append(
            Diagnostic(
                None,
                "current_parameters_kept",
                "info",
                f"{len(kept)} operational item(s) keep their current parameters because their new "
                "estimates cannot go live (see their findings): "
                + ", ".join(r["id"] for r in kept[:30]),
            )
        )

    fit_info = FitInfo(
        loglik=float(sum(f.loglik for _, f, _ in results.values())),
        log_prior=float(sum(f.log_prior for _, f, _ in results.values())),
        iterations=max((f.iterations for _, f, _ in results.values()), default=0),
        converged=all(f.converged for _, f, _ in results.values()),
        areas={
            code: {
                "loglik": f.loglik,
                "log_prior": f.log_prior,
                "iterations": f.iterations,
                "converged": f.converged,
                "respondents": int(persons.size),
                "items": int(sum(1 for i in local if not plans[i].fixed)),
                "fixed_items": int(sum(1 for i in local if plans[i].fixed)),
                "quadrature": {
                    "points": int(f.theta.size),
                    "range": [float(f.theta[0]), float(f.theta[-1])],
                    "checks": list(f.grid_checks),
                },
            }
            for code, (local, f, persons) in results.items()
        },
    )
    correlation = _area_correlation(results, data.n_respondents)
    document = _document(
        data,
        plans,
        estimates,
        current,
        version,
        diagnostics,
        fit_info,
        linkings,
        latent,
        correlation,
        model=model,
        priors=priors,
        min_responses=min_responses,
        settings={
            "tolerance": tol,
            "max_iterations": max_iter,
            "quadrature": n_quadrature,
            "quadrature_bound": quadrature_bound,
        },
    )
    return CalibrationRun(
        document=document,
        linking=tuple(linkings),
        diagnostics=tuple(diagnostics),
        fit=fit_info,
        latent=latent,
        correlation=correlation,
        items=tuple(reviews),
    )


def _area_jobs(data: ResponseData, plans: list[_ItemPlan], estimable: np.ndarray) -> list[tuple]:
    """Per area: (code, items, persons, unit, local item, response) of its responses.

    ``unit`` numbers the area's respondents 0..U-1 (``persons[unit]`` is the
    respondent), ``local item`` indexes ``items``.
    """
    area_codes = sorted({p.area for p in plans}, key=_natural_key)
    item_area = np.array([area_codes.index(p.area) for p in plans])
    # area of every response (-1 for items left out), computed once
    row_area = np.where(estimable, item_area, -1).astype(np.int16)[data.item]
    jobs = []
    for position, code in enumerate(area_codes):
        local = np.flatnonzero((item_area == position) & estimable)
        if local.size == 0:
            continue
        rows = np.flatnonzero(row_area == position)
        if rows.size == 0:
            continue
        person = data.person[rows]
        seen = np.zeros(data.n_respondents, dtype=bool)
        seen[person] = True
        unit_of_person = np.cumsum(seen) - 1
        local_of_item = np.full(data.n_items, -1)
        local_of_item[local] = np.arange(local.size)
        jobs.append(
            (
                code,
                local,
                np.flatnonzero(seen),
                unit_of_person[person],
                local_of_item[data.item[rows]],
                data.response[rows].astype(np.int64),
            )
        )
    return jobs


def _scale_items(plans: list[_ItemPlan], local: np.ndarray) -> mml.ScaleItems:
    return mml.ScaleItems(
        family=tuple(plans[i].family for i in local),
        n_categories=np.array([plans[i].n_categories for i in local]),
        fixed=np.array([plans[i].fixed for i in local]),
        start=[plans[i].start for i in local],
        prior=np.array([plans[i].prior for i in local], dtype=float),
    )


def bank_loglik(
    data: ResponseData,
    bank: BankDocument,
    *,
    n_quadrature: int = 321,
    quadrature_bound: float = 8.0,
    latent: dict[str, tuple[float, float]] | None = None,
) -> dict[str, float]:
    """Marginal log-likelihood of ``data`` under the parameters of ``bank``, per area.

    A check and a reference: by default on a fine grid (321 points on
    [-8, 8], spacing 0.05), with each area's latent distribution N(0, 1)
    unless ``latent`` gives (mean, sd) for it. Every item of the data must
    be in the bank.

    Returns
    -------
    dict
        area code -> log-likelihood, and ``"total"``.
    """
    unknown = [i for i in data.item_ids if i not in bank]
    if unknown:
        raise ValueError(f"items not in bank {bank.version}: {', '.join(unknown[:20])}")
    plans = []
    for item_id in data.item_ids:
        record = bank.item(item_id)
        family = _family(record.model)
        start = kernels.from_irt(
            family,
            np.array([record.a]),
            np.array([record.thresholds]),
            np.array([record.c or 0.0]),
        )[0]
        plans.append(
            _ItemPlan(
                item_id,
                record.area,
                record.model,
                family,
                record.n_categories,
                True,
                start,
                Priors.none().row(None),
            )
        )
    theta = mml.quadrature(n_quadrature, quadrature_bound)
    out: dict[str, float] = {}
    for code, local, _, unit, item, response in _area_jobs(
        data, plans, np.ones(len(plans), dtype=bool)
    ):
        mean, sd = (latent or {}).get(code, (0.0, 1.0))
        out[code] = mml.marginal_loglik(
            unit, item, response, _scale_items(plans, local), theta, mean=mean, sd=sd
        )
    out["total"] = float(sum(out.values()))
    return out


def online_calibrate(
    data: ResponseData,
    current: BankDocument,
    pretest_ids: Sequence[str] | None = None,
    **options: Any,
) -> CalibrationRun:
    """Calibrate pretest items with the operational items fixed at their live values.

    Parameters
    ----------
    data : ResponseData
        Responses from live tests, including the (unscored) pretest items.
    current : BankDocument
        The live bank.
    pretest_ids : sequence of str, optional
        Items to estimate (default: the items with status ``pretest`` in
        ``current`` that have responses).
    **options
        Passed to :func:`calibrate_bank` (``model``, ``progress``, ``version``...).

    Returns
    -------
    CalibrationRun
    """
    present = set(data.item_ids)
    if pretest_ids is None:
        pretest_ids = [r.id for r in current.items if r.status == "pretest" and r.id in present]
    pretest = set(pretest_ids)
    unknown = sorted(pretest - {r.id for r in current.items})
    if unknown:
        raise ValueError(f"pretest item(s) not in bank {current.version}: {', '.join(unknown)}")
    if not pretest & present:
        raise ValueError("none of the pretest items has responses in the data")
    fixed = [i for i in data.item_ids if i not in pretest]
    if not fixed:
        raise ValueError("online calibration needs operational items in the data to fix the scale")
    return calibrate_bank(data, current=current, fixed=fixed, **options)


# ----------------------------------------------------------------------------- helpers


def _natural_key(code: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in str(code).split("."))


def _check_ids(
    data: ResponseData, current, anchors: tuple[str, ...], fixed: tuple[str, ...]
) -> None:
    present = set(data.item_ids)
    if current is not None:
        unknown = [i for i in data.item_ids if i not in current]
        if unknown:
            raise ValueError(
                f"{len(unknown)} item id(s) in the data are not in bank {current.version}: {', '.join(unknown[:20])}"
            )
    if (anchors or fixed) and current is None:
        raise ValueError("anchors and fixed items need the current bank (--bank)")
    for label, ids in (("anchor", anchors), ("fixed", fixed)):
        missing = [i for i in ids if i not in current] if current is not None else []
        if missing:
            raise ValueError(f"{label} item(s) not in bank {current.version}: {', '.join(missing)}")
    absent = [i for i in anchors if i not in present]
    if absent:
        raise ValueError(f"anchor item(s) without responses in the data: {', '.join(absent)}")
    if anchors and fixed:
        raise ValueError(
            "give either anchors (linking) or fixed items (fixed-parameter calibration), not both"
        )
    if fixed and all(i in set(fixed) for i in present):
        raise ValueError("every item is fixed: nothing to calibrate")


def _n_options(record) -> int | None:
    return len(record.options) if record is not None and record.options else None


def _plan_items(
    data: ResponseData, model: str, current, fixed: set[str], priors: Priors
) -> list[_ItemPlan]:
    counts = data.category_counts()
    total = np.maximum(counts.sum(axis=1), 1)
    plans = []
    problems = []
    for i, item_id in enumerate(data.item_ids):
        record = current.item(item_id) if current is not None and item_id in current else None
        k = int(data.n_categories[i])
        if item_id in fixed:
            name = record.model
        elif model == "auto":
            if record is not None and record.model in ("1pl", "gpcm", "pcm"):
                # Rasch-family and partial-credit items keep their model.
                name = "pcm" if record.model == "1pl" and k > 2 else record.model
            elif k > 2:
                name = "grm"
            elif record is not None and (
                record.model == "3pl"
                or (
                    record.kind == "knowledge"
                    and record.key is not None
                    and len(record.options) >= 2
                )
            ):
                name = "3pl"
            else:
                name = "2pl"
        elif model in DICHOTOMOUS_MODELS and k > 2:
            problems.append(item_id)
            continue
        else:
            name = model
        family = _family(name)
        prior = priors.row(_n_options(record))
        if family == kernels.SHARED:
            # No prior on a shared slope: one prior per item would count it n times.
            prior = prior.copy()
            prior[:2] = np.nan
        if record is not None and record.model == name and record.n_categories == k:
            # the live parameters: fixed values, or the starting point of a
            # recalibration (EM then needs far fewer cycles than from scratch)
            start = kernels.from_irt(
                family,
                np.array([record.a]),
                np.array([record.thresholds]),
                np.array([record.c or 0.0]),
            )[0]
        elif item_id in fixed:
            raise ValueError(
                f"fixed item {item_id}: its {k} categories in the data do not match the bank's {record.model} item"
            )
        else:
            guess = 1.0 / max(_n_options(record) or 5, 2)
            start = _start_values(family, counts[i, :k] / total[i], guess)
        plans.append(
            _ItemPlan(item_id, data.areas[i], name, family, k, item_id in fixed, start, prior)
        )
    if problems:
        raise ValueError(
            f"--model {model} fits dichotomous items only, but {len(problems)} item(s) have more than two "
            f"categories: {', '.join(problems[:20])}; use --model grm or auto"
        )
    return plans


def _check_models(plans: list[_ItemPlan], current) -> None:
    """Refuse, before fitting, every item whose planned model its bank record cannot take.

    Each planned item (its current record with the new model and placeholder
    parameters) goes through the bank validator, so whatever would make the
    written bank invalid (a key on a graded item, options that do not match
    the categories, ...) is found now, for every item at once.
    """
    if current is None:
        return
    from nangluc.items.schema import validate_document

    planned = {plan.item_id: plan for plan in plans if not plan.fixed and plan.item_id in current}
    document = current.to_dict()
    for entry in document["items"]:
        plan = planned.get(entry["id"])
        if plan is None:
            continue
        for key in ("b", "c", "thresholds", "se"):
            entry.pop(key, None)
        entry["model"] = plan.model
        entry["a"] = 1.0
        if plan.model in POLYTOMOUS_MODELS:
            entry["thresholds"] = [float(k) for k in range(plan.n_categories - 1)]
        else:
            entry["b"] = 0.0
        if plan.model == "3pl":
            entry["c"] = 0.2
    problems = [
        f"item {p.item_id} as {planned[p.item_id].model}: {p.message}"
        for p in validate_document(document)
        if p.item_id in planned
    ]
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(
            f"the model does not suit {len(problems)} item(s) of bank {current.version} "
            f"(use --model auto to choose per item); nothing was fitted:\n  {shown}{more}"
        )


def _start_values(family: str, proportions: np.ndarray, guess: float) -> np.ndarray:
    """Slope 1 and intercepts from the observed proportions (theta ~ N(0, 1))."""
    at_least = np.clip(np.cumsum(proportions[::-1])[::-1][1:], 0.005, 0.995)
    if family == kernels.THREEPL:
        p = np.clip((at_least[0] - guess) / (1 - guess), 0.02, 0.98)
        return np.array([1.0, 1.2 * logit(p), logit(guess)])
    if family in (kernels.GPCM, kernels.SHARED):
        # P(X = v) / P(X = v - 1) = exp(a theta + d_v): d_v from adjacent proportions.
        p = np.clip(proportions, 0.005, 1.0)
        return np.concatenate([[1.0], np.log(p[1:] / p[:-1])])
    d = 1.2 * logit(at_least)
    # strictly decreasing intercepts even when two proportions coincide
    d = d - 1e-3 * np.arange(d.size)
    return np.concatenate([[1.0], d])


def _decide(
    insufficient: list[str], against: list[str], live, writable: bool
) -> tuple[str, list[str]]:
    """What an estimate becomes, and why.

    ``operational``/``pretest``: the new estimate is written with that status
    (``pretest`` with its reasons); ``kept``: the live record stays as it is;
    ``retired``: the live parameters stay but the item becomes pretest;
    ``left out``: nothing usable to write.
    """
    if not insufficient and not against:
        return ("operational" if live is None else live.status), []
    reasons = against + insufficient
    if against:
        if writable:
            return "pretest", reasons
        return ("retired" if live is not None else "left out"), reasons
    if live is not None and live.operational:
        return "kept", reasons
    if writable:
        return "pretest", reasons
    return ("kept" if live is not None else "left out"), reasons


def _reversal_hint(current, item_id: str) -> str:
    """What to do about an item that runs against its area, in the bank's terms."""
    record = current.item(item_id) if current is not None and item_id in current else None
    if record is not None and record.key is not None:
        return (
            f"Its key is probably wrong: check which option is correct (the key is now option "
            f"{record.key}, 0-based), correct the key, then calibrate again."
        )
    if record is not None and record.n_categories > 2:
        top = record.n_categories - 1
        return (
            f"If its statement is worded negatively, reverse its scoring (category k becomes {top} - k) "
            "and calibrate again."
        )
    return "Reverse its key (or its scoring), then calibrate again."


def _review(plan: _ItemPlan, est: dict[str, Any], n: int, live) -> dict[str, Any]:
    """One row of the calibration's item table (reports, the gate, the service)."""
    se = est["se"] or {}
    return {
        "id": plan.item_id,
        "area": plan.area,
        "model": plan.model,
        "responses": n,
        "a": est["a"],
        "thresholds": [float(t) for t in est["thresholds"]],
        "c": est["c"] if plan.family == kernels.THREEPL else None,
        "se": {
            "a": se.get("a"),
            "thresholds": None if se.get("thresholds") is None else list(se["thresholds"]),
            "c": se.get("c"),
        },
        "rmsd": est["rmsd"],
        "fit": est.get("fit"),
        "drift": est.get("drift"),
        "orientation": dict(est["orientation"]),
        "at_bound": list(est["at_bound"]),
        "decision": est["decision"],
        "reasons": list(est["reasons"]),
        "live": None
        if live is None
        else {
            "a": live.a,
            "thresholds": list(live.thresholds),
            "c": live.c,
            "status": live.status,
            "se": live.se,
        },
        "params": est["params"],
        "family": plan.family,
    }


def _item_estimate(plan: _ItemPlan, params: np.ndarray, cov: np.ndarray | None) -> dict[str, Any]:
    irt = kernels.to_irt(plan.family, params[None, :])
    out: dict[str, Any] = {
        "a": float(irt["a"][0]),
        "thresholds": np.asarray(irt["b"][0], dtype=float),
        "c": float(irt["c"][0]),
        "params": params,
        "se": None,
    }
    if cov is not None:
        jac = kernels.irt_jacobian(plan.family, params[None, :])[0]
        var = np.diag(jac @ cov @ jac.T)
        se = np.sqrt(np.where(var > 0, var, np.nan))
        n_b = out["thresholds"].size
        out["se"] = {
            "a": se[0],
            "thresholds": se[1 : 1 + n_b],
            "c": se[2] if plan.family == kernels.THREEPL else None,
        }
    return out


def _apply_linking(est: dict[str, Any], A: float, B: float) -> None:
    est["a"] = est["a"] / A
    est["thresholds"] = A * est["thresholds"] + B
    if est["se"] is not None:
        est["se"]["a"] = est["se"]["a"] / A
        est["se"]["thresholds"] = A * est["se"]["thresholds"]


def _is_anchor(plan: _ItemPlan, current, anchor_ids: tuple[str, ...]) -> bool:
    if anchor_ids:
        return plan.item_id in anchor_ids
    return plan.item_id in current and current.item(plan.item_id).status == "operational"


def _stack(params: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(np.asarray(p["thresholds"]).size for p in params)
    table = np.full((len(params), width), np.inf)
    for r, p in enumerate(params):
        t = np.asarray(p["thresholds"], dtype=float)
        table[r, : t.size] = t
    return (
        np.array([p["a"] for p in params], dtype=float),
        table,
        np.array([p["c"] or 0.0 for p in params], dtype=float),
    )


def _live_params(record) -> dict[str, Any]:
    return {
        "a": record.a,
        "thresholds": np.array(record.thresholds, dtype=float),
        "c": record.c or 0.0,
    }


def _area_correlation(
    results: dict[str, tuple[np.ndarray, mml.ScaleFit, np.ndarray]], n_persons: int
):
    codes = list(results)
    if len(codes) < 2:
        return None
    k = len(codes)
    eap = np.full((k, n_persons), np.nan)
    var = np.full((k, n_persons), np.nan)
    for j, code in enumerate(codes):
        _, fit, persons = results[code]
        eap[j, persons] = fit.eap
        var[j, persons] = fit.psd**2
    matrix = np.eye(k)
    counts = np.zeros((k, k), dtype=np.int64)
    for x in range(k):
        counts[x, x] = int(np.isfinite(eap[x]).sum())
        for y in range(x + 1, k):
            both = np.isfinite(eap[x]) & np.isfinite(eap[y])
            n = int(both.sum())
            counts[x, y] = counts[y, x] = n
            if n < 30:
                matrix[x, y] = matrix[y, x] = np.nan
                continue
            ex, ey = eap[x, both], eap[y, both]
            raw = np.corrcoef(ex, ey)[0, 1]
            rel_x = ex.var() / (ex.var() + var[x, both].mean())
            rel_y = ey.var() / (ey.var() + var[y, both].mean())
            value = raw / np.sqrt(rel_x * rel_y) if rel_x > 0 and rel_y > 0 else np.nan
            matrix[x, y] = matrix[y, x] = float(np.clip(value, -1.0, 1.0))
    if np.all(counts[np.triu_indices(k, 1)] < 30):
        return None
    return {
        "areas": codes,
        "matrix": [
            [None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in matrix
        ],
        "n": counts.tolist(),
        "method": "correlation of EAP estimates over persons who answered both areas, "
        "divided by sqrt(reliability_A * reliability_B) (empirical reliabilities)",
    }


def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or not np.isfinite(x):
        return None
    return round(float(x), digits)


def _record_params(plan: _ItemPlan, est: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"model": plan.model, "a": _round(est["a"])}
    t = [_round(v) for v in est["thresholds"]]
    if plan.model in POLYTOMOUS_MODELS:
        out["thresholds"] = t
    else:
        out["b"] = t[0]
    if plan.model == "3pl":
        out["c"] = _round(est["c"])
    se = est["se"]
    if se is not None:
        entry: dict[str, Any] = {"a": _round(se["a"])}
        if plan.model in POLYTOMOUS_MODELS:
            entry["thresholds"] = [_round(v) for v in se["thresholds"]]
        else:
            entry["b"] = _round(se["thresholds"][0])
        if plan.model == "3pl":
            entry["c"] = _round(se["c"])
        out["se"] = entry
    return out


def _writable(est: dict[str, Any]) -> bool:
    t = np.asarray(est["thresholds"])
    return (
        est["a"] > 0 and np.all(np.isfinite(t)) and np.all(np.diff(t) > 0) and np.isfinite(est["a"])
    )


def default_version(parent: str | None, now: _dt.datetime | None = None) -> str:
    """A new version id: ``<parent>-cal<UTC time>-<6 random hex digits>``.

    The random part keeps ids of calibrations started in the same second
    apart (the service also retries on the rare clash); the parent is cut
    so the id stays within the bank schema's 64 characters.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    suffix = secrets.token_hex(3)
    return f"{parent[:36]}-cal{stamp}-{suffix}" if parent else f"cal{stamp}-{suffix}"


def _description(data, current, version: str, n_errors: int, when: _dt.datetime) -> dict:
    """The bank's plain description (vi/en): what it is and whether it may go live."""
    people = f"{data.n_respondents:,}"
    day_vi = when.strftime("%d/%m/%Y")
    day_en = when.strftime("%Y-%m-%d")
    vi = (
        f"Ngân hàng câu hỏi có tham số IRT hiệu chỉnh từ câu trả lời của {people.replace(',', '.')} "
        f"người (ngày {day_vi})"
    )
    en = (
        f"Item bank with IRT parameters calibrated from the responses of {people} people ({day_en})"
    )
    if current is not None:
        vi += f", liên kết với thang đo của phiên bản {current.version}."
        en += f", linked to the scale of version {current.version}."
    else:
        vi += "."
        en += "."
    if n_errors:
        vi += f" Bản nháp: còn {n_errors} lỗi cần xử lý trước khi đưa vào sử dụng."
        en += f" Draft: {n_errors} error(s) to resolve before it can go live."
    return {"vi": vi, "en": en}


def _document(
    data,
    plans,
    estimates,
    current,
    version,
    diagnostics,
    fit_info,
    linkings,
    latent,
    correlation,
    *,
    model,
    priors: Priors,
    min_responses: int,
    settings: dict[str, Any],
):
    now = _dt.datetime.now(_dt.UTC)
    errors = [d for d in diagnostics if d.severity == "error"]
    by_id = {plan.item_id: (i, plan) for i, plan in enumerate(plans)}
    parent = current.version if current is not None else None
    new_version = version or default_version(parent, now)
    items: list[dict[str, Any]] = []
    if current is not None:
        source = [r.to_dict() for r in current.items]
    else:
        source = []
        for i, plan in enumerate(plans):
            entry = {"id": plan.item_id, "area": plan.area}
            if data.competences[i]:
                entry["competence"] = data.competences[i]
            source.append(entry)
    for entry in source:
        hit = by_id.get(entry["id"])
        est = estimates.get(hit[0]) if hit is not None else None
        decision = est["decision"] if est is not None else None
        reason = (
            f"calibration {new_version}: " + "; ".join(est["reasons"])
            if est is not None and est["reasons"]
            else None
        )
        if decision in ("operational", "pretest"):
            for key in ("b", "c", "thresholds", "se", "status_reason"):
                entry.pop(key, None)
            entry.update(_record_params(hit[1], est))
            entry["status"] = decision
            if decision == "pretest" and reason:
                entry["status_reason"] = reason
        elif decision == "retired":
            entry["status"] = "pretest"
            entry["status_reason"] = reason
        elif "a" not in entry:
            continue  # no current parameters and nothing estimable: left out (reported)
        items.append(_ordered(entry))
    if not items:
        raise ValueError("no item could be estimated from these data (see the diagnostics)")
    metadata: dict[str, Any] = {}
    if current is not None:
        metadata = {
            k: v for k, v in current.metadata.items() if k not in ("content_hash", "calibration")
        }
    metadata["description"] = _description(data, current, new_version, len(errors), now)
    method = "maximum a posteriori" if priors.active else "maximum likelihood"
    metadata["parameter_source"] = f"calibrated: marginal {method} (EM) from response data"
    metadata["calibration"] = {
        "method": "MML-EM (Bock-Aitkin), SQUAREM-accelerated"
        + (", with item priors (Bayes modal)" if priors.active else ""),
        "model": model,
        "priors": priors.to_dict(),
        "min_responses": min_responses,
        "settings": settings,
        "standard_errors": "empirical cross-product (XPD) information"
        + (" plus the priors' curvature" if priors.active else "")
        + ", delta method to (a, b, c)",
        "respondents": data.n_respondents,
        "responses": data.n_responses,
        "fit": fit_info.to_dict(),
        "latent": latent,
        "correlation": correlation,
        "linking": [lk.to_dict() for lk in linkings],
        "statuses": {
            decision: sorted(
                plans[i].item_id for i, e in estimates.items() if e["decision"] == decision
            )
            for decision in ("pretest", "kept", "retired", "left out")
        },
        "diagnostics": [d.to_dict() for d in diagnostics],
    }
    doc: dict[str, Any] = {
        "version": new_version,
        "parent": parent,
        "status": "draft" if errors else "calibrated",
        "created": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "metadata": _jsonable(metadata),
    }
    if current is not None and current.framework is not None:
        doc["framework"] = current.framework.to_dict()
    doc["items"] = items
    return doc


# The bank schema's key order up to the parameters' status (text follows).
_ORDER = ITEM_KEYS[: ITEM_KEYS.index("status_reason") + 1]


def _ordered(entry: dict[str, Any]) -> dict[str, Any]:
    head = {k: entry[k] for k in _ORDER if k in entry}
    return {**head, **{k: v for k, v in entry.items() if k not in head}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _progress(area: str, enabled: bool, slot: int):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=None, desc=f"area {area}", unit=" E-steps", leave=True, position=slot)

    def update(evaluations: int, loglik: float, change: float) -> None:
        bar.n = evaluations
        bar.set_postfix(loglik=f"{loglik:.1f}", change=f"{change:.1e}", refresh=False)
        bar.refresh()

    return update, bar.close


__all__ = [
    "CalibrationRun",
    "FitInfo",
    "bank_loglik",
    "calibrate_bank",
    "default_version",
    "online_calibrate",
]
