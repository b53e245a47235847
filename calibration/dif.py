"""Differential item functioning: items that work differently for groups of citizens.

An item shows DIF when citizens of equal ability but different groups (age
group, ward, sex) have different chances on it; it makes the test unfair to
one of them. :func:`dif_analysis` compares every focal group with a reference
group (the largest, unless named), item by item, in each area, with two
methods and controls the false discovery rate over all comparisons
(Benjamini-Hochberg, :func:`scipy.stats.false_discovery_control`):

Mantel-Haenszel (Holland & Thayer 1988)
    Respondents are matched on their ability in the item's area (strata of
    the EAP estimate from all their answers in the area, under the bank's
    parameters: the sum score of a fixed form does not exist in adaptive
    data; Zwick, Thayer & Wingersky 1994 matched CAT data the same way).
    Dichotomous items: the common odds ratio, ``MH D-DIF = -2.35 ln(alpha_MH)``
    with the Robins-Breslow-Greenland standard error and the continuity-
    corrected MH chi-square; ETS class A (|D| < 1 or not significant), C
    (|D| >= 1.5 and significantly above 1), otherwise B. Graded items:
    Mantel's (1963) chi-square for ordered responses and the standardized
    mean difference (SMD) over the item's SD; A (not significant or |SMD/SD|
    <= 0.17), C (significant and |SMD/SD| > 0.25), otherwise B (Zwick,
    Thayer & Mazzeo 1997).

IRT likelihood ratio (Thissen, Steinberg & Wainer 1993)
    The other items of the area are anchors at their bank parameters, each
    group's latent mean and SD are estimated, and the studied item is fitted
    once for both groups together and once per group (the 3PL lower
    asymptote stays at its bank value). ``G2 = 2 (l_groups - l_common)`` is
    chi-square with as many degrees of freedom as the item has free
    parameters. The effect size is the expected score difference (ESD):
    focal minus reference expected item score, averaged over the focal
    group's ability distribution, as a fraction of the maximum score
    (negative: the item is harder for the focal group).

An item is **flagged** when the likelihood-ratio test is significant after
the false discovery rate control *and* the effect is at least
:data:`MIN_EFFECT` (a practically negligible difference in a large sample
is reported, not flagged), or when Mantel-Haenszel puts it in class C. One
round of purification follows: flagged items leave the anchors and the
matching, and every item is tested again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, stats

from nangluc.calibration import kernels
from nangluc.calibration.data import ResponseData

if TYPE_CHECKING:
    from nangluc.items import BankDocument

#: Smallest |expected score difference| (fraction of the maximum score) flagged.
MIN_EFFECT = 0.03
#: Ability strata for Mantel-Haenszel.
N_STRATA = 10
#: Quadrature grid for the IRT likelihood ratio.
GRID = np.linspace(-6.0, 6.0, 61)


@dataclass(frozen=True)
class DifRow:
    """One item compared between the reference and one focal group."""

    item_id: str
    area: str
    model: str
    focal: str
    n_reference: int
    n_focal: int
    mh_statistic: float  # MH D-DIF (dichotomous) or SMD / SD (graded)
    mh_chi2: float
    mh_p: float
    ets: str  # "A", "B", "C" ("-" when not computable)
    lr_g2: float
    lr_df: int
    lr_p: float
    lr_q: float = float("nan")  # BH-adjusted
    mh_q: float = float("nan")
    effect: float = float("nan")  # ESD: focal - reference expected score / max score
    delta_a: float = float("nan")
    delta_b: float = float("nan")  # focal - reference mean location
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key, value in out.items():
            if isinstance(value, float) and not np.isfinite(value):
                out[key] = None
            elif isinstance(value, np.generic):
                out[key] = value.item()
        return out


@dataclass(frozen=True)
class DifResult:
    """Every comparison, the groups and the settings."""

    rows: tuple[DifRow, ...]
    reference: str
    groups: dict[str, int]
    alpha: float
    min_effect: float
    skipped: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> tuple[DifRow, ...]:
        return tuple(r for r in self.rows if r.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "groups": self.groups,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "method": "Mantel-Haenszel (ETS A/B/C) and IRT likelihood ratio with purification; "
            "Benjamini-Hochberg over all comparisons",
            "rows": [r.to_dict() for r in self.rows],
            "skipped": list(self.skipped),
        }


def dif_analysis(
    data: ResponseData,
    bank: BankDocument,
    groups: np.ndarray,
    *,
    reference: str | None = None,
    alpha: float = 0.05,
    min_effect: float = MIN_EFFECT,
    min_group: int = 50,
    purify: bool = True,
) -> DifResult:
    """DIF of every item between a reference group and each focal group.

    Parameters
    ----------
    data : ResponseData
        Responses (every item must be in ``bank``).
    bank : BankDocument
        The parameters that define each area's ability scale (anchors).
    groups : array of str, shape (n_respondents,)
        Group of each respondent in ``data.respondent_ids`` order; empty
        strings are left out.
    reference : str, optional
        The reference group (default: the largest).
    alpha : float
        False discovery rate.
    min_effect : float
        Smallest |ESD| flagged by the likelihood-ratio test.
    min_group : int
        Groups with fewer respondents are left out (reported in ``skipped``).
    purify : bool
        Test again with the flagged items out of the anchors and matching.

    Raises
    ------
    ValueError
        Groups of the wrong length, fewer than two usable groups, an unknown
        reference group, or items not in the bank.
    """
    groups = np.asarray(groups, dtype=object).astype(str)
    if groups.shape != (data.n_respondents,):
        raise ValueError(
            f"need one group per respondent ({data.n_respondents}), got {groups.shape[0]}"
        )
    unknown = [i for i in data.item_ids if i not in bank]
    if unknown:
        raise ValueError(f"items not in bank {bank.version}: {', '.join(unknown[:20])}")
    labels, counts = np.unique(groups[groups != ""], return_counts=True)
    sizes = {str(g): int(n) for g, n in zip(labels, counts, strict=True)}
    usable = [g for g, n in sizes.items() if n >= min_group]
    skipped = tuple(
        f"group {g!r}: {n} respondents (fewer than {min_group})"
        for g, n in sizes.items()
        if n < min_group
    )
    if reference is None:
        reference = max(usable, key=lambda g: sizes[g]) if usable else None
    elif reference not in sizes:
        raise ValueError(
            f"reference group {reference!r} is not in the data (groups: {', '.join(sizes)})"
        )
    focal = [g for g in usable if g != reference]
    if reference is None or not focal:
        raise ValueError(
            f"DIF needs a reference group and at least one focal group with {min_group} or more "
            f"respondents; the data have {', '.join(f'{g} ({n})' for g, n in sizes.items()) or 'none'}"
        )
    rows = _all_rows(data, bank, groups, reference, focal, alpha, min_effect, excluded=set())
    if purify and any(r.flagged for r in rows):
        excluded = {r.item_id for r in rows if r.flagged}
        rows = _all_rows(data, bank, groups, reference, focal, alpha, min_effect, excluded=excluded)
    return DifResult(
        rows=tuple(rows),
        reference=reference,
        groups=sizes,
        alpha=alpha,
        min_effect=min_effect,
        skipped=skipped,
    )


# ------------------------------------------------------------------ internals
@dataclass
class _Area:
    code: str
    items: list[str]
    family: list[str]
    params: list[np.ndarray]
    n_categories: np.ndarray
    unit_person: np.ndarray  # person index of each unit
    log_like: np.ndarray  # (units, Q): log-likelihood of all the unit's answers
    answers: dict[int, tuple[np.ndarray, np.ndarray]]  # local item -> (units, responses)
    log_prob: list[np.ndarray]  # per item (Q, K)


def _areas(data: ResponseData, bank: BankDocument, excluded: set[str]) -> list[_Area]:
    out = []
    codes = sorted(
        set(data.areas), key=lambda c: [int(p) if p.isdigit() else p for p in c.split(".")]
    )
    for code in codes:
        idx = [i for i in range(data.n_items) if data.areas[i] == code]
        rows = np.flatnonzero(np.isin(data.item, idx))
        if rows.size == 0:
            continue
        persons, unit = np.unique(data.person[rows], return_inverse=True)
        local = {g: j for j, g in enumerate(idx)}
        item_local = np.array([local[i] for i in data.item[rows]])
        response = data.response[rows].astype(np.int64)
        families, params, log_prob = [], [], []
        for i in idx:
            record = bank.item(data.item_ids[i])
            fam = kernels.THREEPL if record.model == "3pl" else kernels.GRADED
            p = kernels.from_irt(
                fam,
                np.array([record.a]),
                np.array([record.thresholds]),
                np.array([record.c or 0.0]),
            )[0]
            families.append(fam)
            params.append(p)
            log_prob.append(kernels.log_probabilities(fam, p[None, :], GRID)[0])
        # log-likelihood of each unit's anchor answers (excluded items do not count)
        log_like = np.zeros((persons.size, GRID.size))
        answers = {}
        for j, i in enumerate(idx):
            mine = item_local == j
            units, resp = unit[mine], response[mine]
            answers[j] = (units, resp)
            if data.item_ids[i] not in excluded:
                np.add.at(log_like, units, log_prob[j][:, resp].T)
        out.append(
            _Area(
                code=code,
                items=[data.item_ids[i] for i in idx],
                family=families,
                params=params,
                n_categories=np.array([data.n_categories[i] for i in idx]),
                unit_person=persons,
                log_like=log_like,
                answers=answers,
                log_prob=log_prob,
            )
        )
    return out


def _latent(log_like: np.ndarray, iterations: int = 30) -> tuple[float, float]:
    """Mean and SD of a group's ability with the anchors fixed (EM on the grid)."""
    mean, sd = 0.0, 1.0
    shifted = log_like - log_like.max(axis=1, keepdims=True)
    like = np.exp(shifted)
    for _ in range(iterations):
        prior = np.exp(-0.5 * ((GRID - mean) / sd) ** 2)
        post = like * prior
        post /= post.sum(axis=1, keepdims=True)
        mass = post.sum(axis=0)
        new_mean = float(mass @ GRID / mass.sum())
        new_sd = float(np.sqrt(mass @ (GRID - new_mean) ** 2 / mass.sum()))
        if abs(new_mean - mean) < 1e-5 and abs(new_sd - sd) < 1e-5:
            mean, sd = new_mean, new_sd
            break
        mean, sd = new_mean, max(new_sd, 0.05)
    return mean, sd


def _all_rows(data, bank, groups, reference, focal, alpha, min_effect, excluded) -> list[DifRow]:
    rows: list[DifRow] = []
    for area in _areas(data, bank, excluded):
        unit_group = groups[area.unit_person]
        latent = {
            g: _latent(area.log_like[unit_group == g])
            for g in [reference, *focal]
            if (unit_group == g).any()
        }
        weights = {g: np.exp(-0.5 * ((GRID - m) / s) ** 2) for g, (m, s) in latent.items()}
        # EAP under the reference distribution: the matching variable of MH
        post = np.exp(area.log_like - area.log_like.max(axis=1, keepdims=True)) * weights[reference]
        eap = (post @ GRID) / post.sum(axis=1)
        for j, item_id in enumerate(area.items):
            units, resp = area.answers[j]
            # the studied item's own answer leaves the anchors
            own = area.log_prob[j][:, resp].T
            rest = area.log_like[units] - (0.0 if item_id in excluded else own)
            for f in focal:
                if f not in latent or reference not in latent:
                    continue
                rows.append(
                    _compare(
                        area,
                        j,
                        units,
                        resp,
                        rest,
                        unit_group[units],
                        eap[units],
                        reference,
                        f,
                        weights,
                    )
                )
    _adjust(rows, alpha, min_effect)
    return rows


def _compare(area, j, units, resp, rest, group, eap, reference, focal, weights) -> DifRow:
    fam = area.family[j]
    k = int(area.n_categories[j])
    model = "3pl" if fam == kernels.THREEPL else ("2pl" if k == 2 else "grm")
    is_ref, is_foc = group == reference, group == focal
    mh = _mantel_haenszel(resp, eap, is_ref, is_foc, k)
    # posterior weights of each respondent over the grid, without the studied item
    w = np.exp(rest - rest.max(axis=1, keepdims=True))
    w[is_ref] *= weights[reference]
    w[is_foc] *= weights[focal]
    w /= w.sum(axis=1, keepdims=True)
    start = area.params[j]
    free = 2 if fam == kernels.THREEPL else k  # 3PL: c stays at the bank's value
    both = is_ref | is_foc
    common, l_common = _fit_item(fam, start, free, w[both], resp[both])
    ref_params, l_ref = _fit_item(fam, common, free, w[is_ref], resp[is_ref])
    foc_params, l_foc = _fit_item(fam, common, free, w[is_foc], resp[is_foc])
    g2 = max(0.0, 2.0 * (l_ref + l_foc - l_common))
    scores = np.arange(k)
    expected_ref = kernels.probabilities_and_derivatives(fam, ref_params[None], GRID)[0][0] @ scores
    expected_foc = kernels.probabilities_and_derivatives(fam, foc_params[None], GRID)[0][0] @ scores
    focal_density = weights[focal] / weights[focal].sum()
    effect = float(focal_density @ (expected_foc - expected_ref) / (k - 1))
    irt_ref, irt_foc = kernels.to_irt(fam, ref_params[None]), kernels.to_irt(fam, foc_params[None])
    return DifRow(
        item_id=area.items[j],
        area=area.code,
        model=model,
        focal=focal,
        n_reference=int(is_ref.sum()),
        n_focal=int(is_foc.sum()),
        mh_statistic=mh[0],
        mh_chi2=mh[1],
        mh_p=mh[2],
        ets=mh[3],
        lr_g2=g2,
        lr_df=free,
        lr_p=float(stats.chi2.sf(g2, free)),
        effect=effect,
        delta_a=float(irt_foc["a"][0] - irt_ref["a"][0]),
        delta_b=float(np.mean(irt_foc["b"][0]) - np.mean(irt_ref["b"][0])),
    )


def _fit_item(fam: str, start: np.ndarray, free: int, w: np.ndarray, resp: np.ndarray):
    """Maximise sum_u log sum_q w[u, q] P(resp_u | theta_q) over the first ``free`` parameters."""
    fixed_tail = start[free:]

    def objective(x):
        params = np.concatenate([x, fixed_tail])
        if fam == kernels.GRADED and free > 2 and np.any(np.diff(params[1:]) >= 0):
            return 1e12, np.zeros_like(x)
        prob, dprob = kernels.probabilities_and_derivatives(fam, params[None], GRID)
        p = np.maximum(prob[0][:, resp].T, 1e-300)  # (n, Q)
        dp = dprob[0][:, resp, :free].transpose(1, 0, 2)  # (n, Q, free)
        denom = (w * p).sum(axis=1)
        value = np.log(np.maximum(denom, 1e-300)).sum()
        grad = np.einsum("nq,nqp->p", w, dp / np.maximum(denom, 1e-300)[:, None, None])
        return -value, -grad

    result = optimize.minimize(
        objective, start[:free], jac=True, method="BFGS", options={"gtol": 1e-3}
    )
    return np.concatenate([result.x, fixed_tail]), -float(result.fun)


def _mantel_haenszel(resp, eap, is_ref, is_foc, k) -> tuple[float, float, float, str]:
    use = is_ref | is_foc
    if use.sum() < 20:
        return float("nan"), float("nan"), float("nan"), "-"
    edges = np.unique(np.quantile(eap[use], np.linspace(0, 1, N_STRATA + 1)[1:-1]))
    stratum = np.searchsorted(edges, eap[use])
    x, ref = resp[use], is_ref[use]
    if k == 2:
        return _mh_dichotomous(x, ref, stratum)
    return _mantel_ordinal(x, ref, stratum, k)


def _mh_dichotomous(x, ref, stratum) -> tuple[float, float, float, str]:
    """MH D-DIF, continuity-corrected chi-square, p and ETS class (Holland & Thayer 1988)."""
    n_s = stratum.max() + 1
    a = np.bincount(stratum, weights=(ref & (x == 1)), minlength=n_s)  # reference right
    b = np.bincount(stratum, weights=(ref & (x == 0)), minlength=n_s)
    c = np.bincount(stratum, weights=(~ref & (x == 1)), minlength=n_s)  # focal right
    d = np.bincount(stratum, weights=(~ref & (x == 0)), minlength=n_s)
    t = a + b + c + d
    ok = (t > 1) & (a + b > 0) & (c + d > 0)
    a, b, c, d, t = a[ok], b[ok], c[ok], d[ok], t[ok]
    r_num, s_den = (a * d / t).sum(), (b * c / t).sum()
    if r_num <= 0 or s_den <= 0:
        return float("nan"), float("nan"), float("nan"), "-"
    alpha_mh = r_num / s_den
    # Robins, Breslow & Greenland (1986) variance of log(alpha_MH)
    p_, q_ = (a + d) / t, (b + c) / t
    r_, s_ = a * d / t, b * c / t
    var = (
        (p_ * r_).sum() / (2 * r_num**2)
        + (p_ * s_ + q_ * r_).sum() / (2 * r_num * s_den)
        + (q_ * s_).sum() / (2 * s_den**2)
    )
    delta = -2.35 * np.log(alpha_mh)
    se = 2.35 * np.sqrt(var)
    m1, n1 = a + c, a + b  # right answers, reference size
    expected = n1 * m1 / t
    variance = n1 * (t - n1) * m1 * (t - m1) / (t**2 * (t - 1))
    chi2 = (
        (abs(a.sum() - expected.sum()) - 0.5) ** 2 / variance.sum() if variance.sum() > 0 else 0.0
    )
    p = float(stats.chi2.sf(chi2, 1))
    if abs(delta) < 1.0 or p >= 0.05:
        ets = "A"
    elif abs(delta) >= 1.5 and (abs(delta) - 1.0) / se > 1.645:
        ets = "C"
    else:
        ets = "B"
    return float(delta), float(chi2), p, ets


def _mantel_ordinal(x, ref, stratum, k) -> tuple[float, float, float, str]:
    """Mantel (1963) chi-square and SMD / SD for an ordered item (Zwick, Thayer & Mazzeo 1997)."""
    focal = ~ref
    n_s = stratum.max() + 1
    scores = x.astype(float)
    big_f = np.bincount(stratum, weights=focal * scores, minlength=n_s)  # focal score sum
    n_f = np.bincount(stratum, weights=focal.astype(float), minlength=n_s)
    n_r = np.bincount(stratum, weights=ref.astype(float), minlength=n_s)
    t = n_f + n_r
    sum_y = np.bincount(stratum, weights=scores, minlength=n_s)
    sum_y2 = np.bincount(stratum, weights=scores**2, minlength=n_s)
    ok = (t > 1) & (n_f > 0) & (n_r > 0)
    expected = n_f * sum_y / np.where(t > 0, t, 1)
    variance = n_r * n_f / np.where(t > 1, t**2 * (t - 1), 1) * (t * sum_y2 - sum_y**2)
    v = variance[ok].sum()
    chi2 = (big_f[ok].sum() - expected[ok].sum()) ** 2 / v if v > 0 else 0.0
    p = float(stats.chi2.sf(chi2, 1))
    mean_f = big_f / np.where(n_f > 0, n_f, 1)
    ref_sum = np.bincount(stratum, weights=ref * scores, minlength=n_s)
    mean_r = ref_sum / np.where(n_r > 0, n_r, 1)
    smd = float((n_f[ok] / n_f[ok].sum()) @ (mean_f[ok] - mean_r[ok]))
    sd = float(scores.std(ddof=1)) if scores.size > 1 else 0.0
    effect = smd / sd if sd > 0 else 0.0
    if p >= 0.05 or abs(effect) <= 0.17:
        ets = "A"
    elif abs(effect) > 0.25:
        ets = "C"
    else:
        ets = "B"
    return effect, float(chi2), p, ets


def _adjust(rows: list[DifRow], alpha: float, min_effect: float) -> None:
    if not rows:
        return
    lr_p = np.array([r.lr_p for r in rows])
    mh_p = np.array([r.mh_p if np.isfinite(r.mh_p) else 1.0 for r in rows])
    lr_q = stats.false_discovery_control(np.clip(lr_p, 0, 1), method="bh")
    mh_q = stats.false_discovery_control(np.clip(mh_p, 0, 1), method="bh")
    for n, row in enumerate(rows):
        flagged = bool(
            (lr_q[n] < alpha and abs(row.effect) >= min_effect)
            or (row.ets == "C" and mh_q[n] < alpha)
        )
        object.__setattr__(row, "lr_q", float(lr_q[n]))
        object.__setattr__(row, "mh_q", float(mh_q[n]))
        object.__setattr__(row, "flagged", flagged)


def group_column(path, data: ResponseData, column: str) -> np.ndarray:
    """The value of ``column`` for each respondent of ``data``, read from the response CSV.

    A respondent whose rows disagree gets the first value; an empty value
    leaves the respondent out of the comparison.
    """
    import csv

    values: dict[str, str] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise ValueError(
                f"{path}: no column {column!r} (columns: {', '.join(reader.fieldnames or [])})"
            )
        for row in reader:
            values.setdefault(row["respondent_id"], (row[column] or "").strip())
    return np.array([values.get(r, "") for r in data.respondent_ids], dtype=object)


__all__ = ["MIN_EFFECT", "DifResult", "DifRow", "dif_analysis", "group_column"]
