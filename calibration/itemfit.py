"""Item fit, local dependence and drift: the statistics behind the calibration's findings.

Orlando-Thissen S-X² (Orlando & Thissen 2000; the graded form of Kang & Chen
2008)
    Compares, per summed score, the observed mean item score with the one the
    model implies given that summed score (Lord-Wingersky recursion over the
    quadrature grid). It needs a common set of items behind each summed score,
    so it is computed for every *form* (a set of items answered by at least
    :data:`MIN_FORM` respondents of an area: a fixed questionnaire, a survey
    block). Adaptive data rarely share forms; then S-X² is not computable and
    the RMSD on the grid stays the fit statistic. Summed scores with fewer
    than :data:`MIN_CELL` respondents are pooled with their neighbours.
    Degrees of freedom: score groups minus the item's free parameters. p-values
    over all items are controlled for the false discovery rate
    (Benjamini-Hochberg).

Yen's Q3 (Yen 1984)
    The correlation, over persons who answered both items, of the residuals
    ``x - E[x | EAP]``; pairs with at least :data:`MIN_PAIR` such persons. A
    pair is locally dependent when Q3 exceeds the average Q3 of the area by
    more than 0.2 (Christensen, Makransky & Horton 2017, who show that the
    raw Q3 is biased by about -1/(n - 1) and that the cut must be relative to
    the average).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from nangluc.calibration import kernels

MIN_FORM = 100
MIN_CELL = 10
MIN_PAIR = 100
Q3_EXCESS = 0.2


def _lord_wingersky(prob: list[np.ndarray]) -> np.ndarray:
    """Summed-score distribution on the grid: prob is a list of (Q, K_i); returns (S_max + 1, Q)."""
    q = prob[0].shape[0]
    dist = np.ones((1, q))
    for p in prob:
        k = p.shape[1]
        new = np.zeros((dist.shape[0] + k - 1, q))
        for c in range(k):
            new[c : c + dist.shape[0]] += dist * p[:, c][None, :]
        dist = new
    return dist


def sum_score_fit(
    families: list[str],
    params: list[np.ndarray],
    n_categories: np.ndarray,
    unit: np.ndarray,
    item: np.ndarray,
    response: np.ndarray,
    theta: np.ndarray,
    weights: np.ndarray,
) -> dict[int, dict[str, float]]:
    """S-X² per item (local index) over the forms of one area.

    ``weights`` are the latent distribution's weights on ``theta`` (sum 1).
    Items on no form are absent from the result.
    """
    n_units = int(unit.max()) + 1 if unit.size else 0
    # Each unit's set of items, hashed (sum of random 64-bit keys per item):
    # only sets shared by MIN_FORM units are forms, found without a Python
    # loop over units (a million units are common).
    keys = np.random.default_rng(0).integers(1, 2**62, size=int(item.max()) + 1, dtype=np.int64)
    signature = np.zeros(n_units, dtype=np.int64)
    np.add.at(signature, unit, keys[item])
    values, inverse, counts = np.unique(signature, return_inverse=True, return_counts=True)
    forms: dict[tuple[int, ...], list[int]] = {}
    for form_index in np.flatnonzero(counts >= MIN_FORM):
        members = np.flatnonzero(inverse == form_index)
        form = tuple(np.sort(item[unit == members[0]]).tolist())
        forms[form] = members.tolist()
    if not forms:
        return {}
    score = np.zeros(n_units)
    np.add.at(score, unit, response)
    import scipy.sparse as sp

    # response + 1 of every (unit, item), 0 = not answered
    answered = sp.csr_matrix(
        (response.astype(np.int64) + 1, (unit, item)), shape=(n_units, int(item.max()) + 1)
    )
    prob = [
        kernels.probabilities_and_derivatives(f, p[None, :], theta)[0][0]
        for f, p in zip(families, params, strict=True)
    ]
    parts: dict[int, list[float]] = {}
    for form, members in forms.items():
        if len(members) < MIN_FORM or len(form) < 3:
            continue
        members = np.array(members)
        full = _lord_wingersky([prob[i] for i in form])
        denominator = full @ weights  # P(S = s)
        for i in form:
            rest = _lord_wingersky([prob[j] for j in form if j != i])
            k = prob[i].shape[1]
            # E[x_i | S = s] = sum_c c P(x_i = c, rest = s - c) / P(S = s)
            numerator = np.zeros(full.shape[0])
            for c in range(1, k):
                numerator[c : c + rest.shape[0]] += c * ((rest * prob[i][:, c][None, :]) @ weights)
            expected = numerator / np.maximum(denominator, 1e-300)
            second = np.zeros(full.shape[0])
            for c in range(1, k):
                second[c : c + rest.shape[0]] += c * c * ((rest * prob[i][:, c][None, :]) @ weights)
            variance = np.maximum(second / np.maximum(denominator, 1e-300) - expected**2, 1e-12)
            s = score[members].astype(int)
            x = np.asarray(answered[members, i].todense()).ravel().astype(float) - 1.0
            # pool sparse summed scores with their neighbours
            groups, n, obs, exp, var = [], 0, 0.0, 0.0, 0.0
            for value in range(full.shape[0]):
                mine = s == value
                n += int(mine.sum())
                obs += float(x[mine].sum())
                exp += float(mine.sum() * expected[value])
                var += float(mine.sum() * variance[value])
                if n >= MIN_CELL:
                    groups.append((n, obs, exp, var))
                    n, obs, exp, var = 0, 0.0, 0.0, 0.0
            if n and groups:
                g = groups[-1]
                groups[-1] = (g[0] + n, g[1] + obs, g[2] + exp, g[3] + var)
            chi2 = sum((o - e) ** 2 / v for _, o, e, v in groups if v > 0)
            free = 3 if families[i] == kernels.THREEPL else k
            entry = parts.setdefault(i, [0.0, 0.0, 0.0])
            entry[0] += chi2
            entry[1] += max(len(groups) - free, 1)
            entry[2] += len(members)
    return {
        i: {"s_x2": chi2, "df": df, "p": float(stats.chi2.sf(chi2, df)), "n": n}
        for i, (chi2, df, n) in parts.items()
    }


def residual_q3(
    families: list[str],
    params: list[np.ndarray],
    unit: np.ndarray,
    item: np.ndarray,
    response: np.ndarray,
    eap: np.ndarray,
    n_items: int,
) -> tuple[list[tuple[int, int, float, int]], float]:
    """Yen's Q3 of every pair of items with at least :data:`MIN_PAIR` common respondents.

    Returns (pairs as (i, j, Q3, n), the average Q3 over those pairs).
    """
    # expected item score at each respondent's EAP, read off a fine grid
    # (spacing 0.05) rather than computed per response
    grid = np.linspace(-6.0, 6.0, 241)
    table = np.zeros((n_items, grid.size))
    for i in range(n_items):
        prob = kernels.probabilities_and_derivatives(families[i], params[i][None, :], grid)[0][0]
        table[i] = prob @ np.arange(prob.shape[1])
    position = np.clip(np.rint((eap[unit] + 6.0) / 0.05), 0, grid.size - 1).astype(np.intp)
    expected = table[item, position]
    residual = response - expected
    import scipy.sparse as sp

    n_units = int(unit.max()) + 1
    shape = (n_units, n_items)
    r = sp.csr_matrix((residual, (unit, item)), shape=shape)
    m = sp.csr_matrix((np.ones(unit.size), (unit, item)), shape=shape)
    # per pair over the common respondents: n, sums, sums of squares, cross-products
    n = (m.T @ m).toarray()
    s_i = (r.T @ m).toarray()  # s_i[i, j] = sum of r_i over units with both
    ss_i = (r.multiply(r).T @ m).toarray()
    cross = (r.T @ r).toarray()
    var_i = ss_i - s_i**2 / np.maximum(n, 1)  # of r_i over the common respondents
    with np.errstate(invalid="ignore", divide="ignore"):
        q3 = (cross - s_i * s_i.T / np.maximum(n, 1)) / np.sqrt(var_i * var_i.T)
    upper = np.triu(np.ones((n_items, n_items), dtype=bool), 1)
    ok = upper & (n >= MIN_PAIR) & (var_i > 0) & (var_i.T > 0) & np.isfinite(q3)
    pairs = [
        (int(i), int(j), float(q3[i, j]), int(n[i, j]))
        for i, j in zip(*np.nonzero(ok), strict=True)
    ]
    average = float(np.mean([p[2] for p in pairs])) if pairs else 0.0
    return pairs, average


def drift(new: dict, live: dict) -> dict[str, float] | None:
    """Change of an item's slope and mean location against the live bank, with z statistics.

    ``new`` and ``live`` hold ``a``, ``thresholds`` and ``se`` (new SEs; the
    live ones when the live bank has them). Returns None without new SEs.
    """
    se = new.get("se") or {}
    if se.get("a") is None or se.get("thresholds") is None:
        return None
    live_se = live.get("se") or {}
    d_a = float(new["a"] - live["a"])
    d_b = float(np.mean(new["thresholds"]) - np.mean(live["thresholds"]))
    se_b_new = float(np.sqrt(np.mean(np.square(se["thresholds"]))))
    live_b = live_se.get("thresholds") or ([live_se["b"]] if live_se.get("b") is not None else None)
    se_b = np.sqrt(se_b_new**2 + (float(np.mean(np.square(live_b))) if live_b else 0.0))
    se_a = np.sqrt(float(se["a"]) ** 2 + (float(live_se["a"]) ** 2 if live_se.get("a") else 0.0))
    return {
        "delta_a": d_a,
        "se_a": float(se_a),
        "z_a": d_a / se_a if se_a > 0 else float("nan"),
        "delta_b": d_b,
        "se_b": float(se_b),
        "z_b": d_b / se_b if se_b > 0 else float("nan"),
    }
