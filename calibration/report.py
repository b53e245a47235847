"""The calibration report: what can go live, and what cannot and why.

``nangluc calibrate ... --report DIR`` writes ``DIR/report.md`` with PNG
plots beside it:

* a plain summary first: the bank's status, how many items go live with
  new estimates, which keep their current parameters or stay pretest, and
  every error that blocks the bank;
* the fit (log-likelihood, priors, convergence, grid) and the linking
  constants per area;
* the item table: estimates and standard errors, responses, RMSD and
  S-X² fit, orientation, drift against the current bank, the decision;
* the item characteristic curves of the flagged items (``icc_<area>.png``);
* the test information per area, current and new (``information.png``);
* the DIF table when groups were given;
* every finding.

Plots need matplotlib (in the ``calibration`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nangluc.calibration import kernels

if TYPE_CHECKING:
    from nangluc.calibration.dif import DifResult
    from nangluc.calibration.run import CalibrationRun

THETA = np.linspace(-4, 4, 161)


def write_report(run: CalibrationRun, out: str | Path, *, dif: DifResult | None = None) -> Path:
    """Write ``report.md`` and its plots into ``out`` (created); returns the Markdown path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "information": _information_plot(run, out / "information.png"),
        **_icc_plots(run, out),
    }
    text = _markdown(run, figures, dif)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def _curve(family: str, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected score and information of one item over THETA (slope-intercept params)."""
    prob, dprob = kernels.probabilities_and_derivatives(family, params[None, :], THETA)
    prob, dprob = prob[0], dprob[0]
    expected = prob @ np.arange(prob.shape[1])
    # Fisher information in theta: sum_k (dP_k/dtheta)^2 / P_k, dP/dtheta = a * dP/dd for graded
    a = params[0]
    if family == kernels.THREEPL:
        star = 1 / (1 + np.exp(-(a * THETA + params[1])))
        c = 1 / (1 + np.exp(-params[2]))
        dp1 = (1 - c) * a * star * (1 - star)
        dtheta = np.stack([-dp1, dp1], axis=1)
    else:
        # dP_k/dtheta = a * sum over intercepts of dP_k/dd_j
        dtheta = a * dprob[:, :, 1:].sum(axis=2)
    info = (dtheta**2 / np.maximum(prob, 1e-12)).sum(axis=1)
    return expected, info


def _live_params(row: dict[str, Any]) -> np.ndarray | None:
    live = row.get("live")
    if live is None:
        return None
    family = row["family"]
    return kernels.from_irt(
        family, np.array([live["a"]]), np.array([live["thresholds"]]), np.array([live["c"] or 0.0])
    )[0]


def _new_params(row: dict[str, Any]) -> np.ndarray:
    return kernels.from_irt(
        row["family"],
        np.array([row["a"]]),
        np.array([row["thresholds"]]),
        np.array([row["c"] or 0.0]),
    )[0]


def _information_plot(run: CalibrationRun, path: Path) -> str:
    import matplotlib.pyplot as plt

    areas = sorted({row["area"] for row in run.items})
    fig, axes = plt.subplots(1, len(areas), figsize=(3.2 * len(areas), 3), squeeze=False)
    for ax, area in zip(axes[0], areas, strict=True):
        new = np.zeros_like(THETA)
        live = np.zeros_like(THETA)
        for row in run.items:
            if row["area"] != area:
                continue
            if row["decision"] == "operational":
                new += _curve(row["family"], _new_params(row))[1]
            params = _live_params(row)
            if params is not None and row["live"]["status"] == "operational":
                live += _curve(row["family"], params)[1]
                if row["decision"] == "kept":
                    new += _curve(row["family"], params)[1]
        ax.plot(THETA, new, label="new")
        if live.any():
            ax.plot(THETA, live, "--", label="current")
        ax.set_title(f"area {area}")
        ax.set_xlabel("θ")
    axes[0][0].set_ylabel("test information")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def _flagged(run: CalibrationRun) -> list[dict[str, Any]]:
    """Items with a warning or an error, or whose new estimate does not go live."""
    noted = {d.item_id for d in run.diagnostics if d.severity in ("warning", "error")}
    return [r for r in run.items if r["decision"] != "operational" or r["id"] in noted]


def _icc_plots(run: CalibrationRun, out: Path) -> dict[str, str]:
    import matplotlib.pyplot as plt

    names = {}
    flagged = _flagged(run)
    for area in sorted({r["area"] for r in flagged}):
        rows = [r for r in flagged if r["area"] == area][:12]
        cols = min(4, len(rows))
        lines = -(-len(rows) // cols)
        fig, axes = plt.subplots(lines, cols, figsize=(3.2 * cols, 2.6 * lines), squeeze=False)
        for ax in axes.ravel()[len(rows) :]:
            ax.axis("off")
        for ax, row in zip(axes.ravel(), rows, strict=False):
            top = len(row["thresholds"]) if row["model"] == "grm" else 1
            ax.plot(THETA, _curve(row["family"], _new_params(row))[0] / top, label="new")
            params = _live_params(row)
            if params is not None:
                ax.plot(THETA, _curve(row["family"], params)[0] / top, "--", label="current")
            ax.set_ylim(0, 1)
            ax.set_title(f"{row['id']} ({row['decision']})", fontsize=9)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        name = f"icc_{area}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        names[f"icc_{area}"] = name
    return names


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _markdown(run: CalibrationRun, figures: dict[str, str], dif: DifResult | None) -> str:
    doc = run.document
    meta = doc["metadata"]["calibration"]
    errors = [d for d in run.diagnostics if d.severity == "error"]
    decisions: dict[str, list[dict[str, Any]]] = {}
    for row in run.items:
        decisions.setdefault(row["decision"], []).append(row)
    lines = [f"# Calibration report: bank {doc['version']}", ""]
    lines.append(f"Parent version: {doc.get('parent') or 'none'}; created {doc['created']}.")
    lines.append(
        f"{meta['respondents']:,} respondents, {meta['responses']:,} responses; "
        f"model `{meta['model']}`; {meta['method']}."
    )
    lines += ["", "## Summary", ""]
    if errors:
        lines.append(
            f"**This bank cannot go live (status `draft`): {len(errors)} error(s) must be resolved.**"
        )
        lines += [f"- {d}" for d in errors]
    else:
        lines.append(
            "**No error-level findings: this bank may go through the go-live gate** "
            "(`nangluc bank activate`, which also simulates the citizen test on it)."
        )
    lines.append("")
    lines.append(f"- {len(decisions.get('operational', []))} item(s) go live with new estimates.")
    for key, words in (
        ("kept", "keep their current parameters (the new estimates cannot go live)"),
        ("pretest", "are written as pretest (not scored)"),
        ("retired", "become pretest with their current parameters"),
        ("left out", "are left out"),
    ):
        rows = decisions.get(key, [])
        if rows:
            lines.append(f"- {len(rows)} item(s) {words}:")
            lines += [
                f"  - {r['id']}: {'; '.join(r['reasons']) or 'as in the current bank'}"
                for r in rows[:60]
            ]
    fit = run.fit
    lines += ["", "## Fit", ""]
    lines.append(
        f"Log-likelihood {fit.loglik:.3f}; log prior {fit.log_prior:.3f}; log-posterior "
        f"{fit.log_posterior:.3f}; {fit.iterations} E-steps; "
        f"{'converged' if fit.converged else 'NOT converged'}."
    )
    lines += [
        "",
        "| area | respondents | items | E-steps | grid points | range |",
        "|---|---|---|---|---|---|",
    ]
    for code, area in fit.areas.items():
        q = area["quadrature"]
        lines.append(
            f"| {code} | {area['respondents']:,} | {area['items']} | {area['iterations']} | "
            f"{q['points']} | {q['range'][0]:g} to {q['range'][1]:g} |"
        )
    if run.linking:
        lines += [
            "",
            "## Linking to the live scale",
            "",
            "θ_live = A θ_new + B, per area.",
            "",
            "| area | method | anchors | A | B |",
            "|---|---|---|---|---|",
        ]
        for lk in run.linking:
            lines.append(
                f"| {lk.area} | {lk.method} | {len(lk.anchors)} | {lk.A:.4f} | {lk.B:.4f} |"
            )
    lines += [
        "",
        "## Items",
        "",
        "| item | area | model | n | a (SE) | location(s) | S-X² p | RMSD | r(θ) | drift Δb (z) | decision |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in run.items:
        se_a = row["se"]["a"]
        fitstat = row.get("fit") or {}
        drift = row.get("drift") or {}
        lines.append(
            f"| {row['id']} | {row['area']} | {row['model']} | {row['responses']:,} | "
            f"{row['a']:.2f} ({_fmt(se_a)}) | {', '.join(f'{t:.2f}' for t in row['thresholds'])} | "
            f"{_fmt(fitstat.get('p'), 3)} | {_fmt(row['rmsd'], 3)} | "
            f"{_fmt(row['orientation'].get('correlation'))} | "
            f"{_fmt(drift.get('delta_b'))} ({_fmt(drift.get('z_b'), 1)}) | {row['decision']} |"
        )
    lines += [
        "",
        "## Test information",
        "",
        f"![test information per area]({figures['information']})",
    ]
    iccs = [name for key, name in figures.items() if key.startswith("icc_")]
    if iccs:
        lines += [
            "",
            "## Item characteristic curves of the flagged items",
            "",
            "Expected score as a fraction of the maximum; dashed: current parameters.",
            "",
        ]
        lines += [f"![{name}]({name})" for name in iccs]
    if dif is not None:
        lines += [
            "",
            "## Differential item functioning",
            "",
            f"Reference group `{dif.reference}`; groups: "
            + ", ".join(f"{g} ({n:,})" for g, n in dif.groups.items())
            + f". Flagged: likelihood ratio significant at FDR {dif.alpha:g} with |ESD| ≥ "
            f"{dif.min_effect:g}, or Mantel-Haenszel class C.",
            "",
            "| item | focal | n ref / focal | MH | ETS | G² (df) | q | ESD | flagged |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(dif.rows, key=lambda r: (not r.flagged, -abs(r.effect))):
            if not r.flagged and r.ets == "A":
                continue
            lines.append(
                f"| {r.item_id} | {r.focal} | {r.n_reference:,} / {r.n_focal:,} | {_fmt(r.mh_statistic)} | "
                f"{r.ets} | {r.lr_g2:.1f} ({r.lr_df}) | {_fmt(r.lr_q, 3)} | {r.effect:+.3f} | "
                f"{'yes' if r.flagged else ''} |"
            )
        lines.append(
            f"\n{sum(1 for r in dif.rows if not r.flagged and r.ets == 'A')} comparisons in class A "
            "and not flagged are not listed."
        )
    lines += ["", "## Every finding", ""]
    lines += [f"- {d}" for d in run.diagnostics] or ["None."]
    return "\n".join(lines) + "\n"
