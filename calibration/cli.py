"""``nangluc calibrate``: response CSV in, calibrated bank file out.

Everything is validated and fitted before the output file is touched; the
bank file is then written atomically by :func:`nangluc.items.write_bank`.

Exit status
-----------
0  clean: the bank is written with status ``calibrated``;
1  error-level diagnostics: the bank is written with status ``draft`` and
   its problems are listed (it cannot go live until they are resolved);
2  bad input or options: a clear message, nothing written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from nangluc.calibration import priors as _priors
from nangluc.calibration.data import ResponseDataError, read_responses
from nangluc.calibration.linking import METHODS
from nangluc.calibration.run import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_MIN_RESPONSES,
    DEFAULT_TOLERANCE,
    MODEL_CHOICES,
    CalibrationRun,
    calibrate_bank,
    online_calibrate,
)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command("calibrate")
@click.argument("responses", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    type=click.Choice(MODEL_CHOICES),
    default="auto",
    show_default=True,
    help="Item model (auto: per item; gpcm = generalized partial credit, the partial-credit "
    "items of the current bank keep it under auto).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bank file to write.",
)
@click.option(
    "--bank",
    "bank_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Current bank: parent version and the scale to link to.",
)
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="Anchor item id for linking (repeatable; default: all operational items).",
)
@click.option(
    "--online",
    is_flag=True,
    help="Online calibration: estimate the bank's pretest items with the others fixed.",
)
@click.option(
    "--pretest",
    "pretest",
    multiple=True,
    help="With --online: pretest item id to estimate (repeatable).",
)
@click.option(
    "--linking",
    "linking_method",
    type=click.Choice(METHODS),
    default="stocking-lord",
    show_default=True,
)
@click.option(
    "--version",
    "version",
    default=None,
    help="Version id of the new bank (default: derived from the parent and the time).",
)
@click.option(
    "--quadrature",
    "n_quadrature",
    type=click.IntRange(5, 201),
    default=None,
    help="Quadrature points (default: chosen from the data).",
)
@click.option(
    "--prior",
    "prior",
    type=click.Choice(_priors.CHOICES),
    default="default",
    show_default=True,
    help="Item priors: default = log-normal on a, normal on b and thresholds, Beta on c "
    "(BILOG-MG's); none = plain marginal maximum likelihood.",
)
@click.option(
    "--min-responses",
    type=click.IntRange(1, None),
    default=DEFAULT_MIN_RESPONSES,
    show_default=True,
    help="A new estimate from fewer responses is never written as operational.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1, min_open=True),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="EM stops when no parameter changes by more than this in a cycle.",
)
@click.option(
    "--max-iterations",
    type=click.IntRange(3, None),
    default=DEFAULT_MAX_ITERATIONS,
    show_default=True,
    help="Most E-steps per area; a fit that needs more is an error (not converged).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a report (report.md with PNG plots) into this folder.",
)
@click.option(
    "--group",
    "group_column",
    default=None,
    help="With --report: a column of RESPONSES naming each respondent's group (age_group, ward) "
    "for the report's DIF table.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress (default: when stderr is a terminal).",
)
def calibrate(
    responses: Path,
    model: str,
    out: Path,
    bank_path: Path | None,
    anchors: tuple[str, ...],
    online: bool,
    pretest: tuple[str, ...],
    linking_method: str,
    version: str | None,
    n_quadrature: int | None,
    prior: str,
    min_responses: int,
    tolerance: float,
    max_iterations: int,
    report_dir: Path | None,
    group_column: str | None,
    progress: bool | None,
) -> None:
    """Fit item parameters from RESPONSES (long CSV: respondent_id,item_id,response) into a new bank.

    Exit status: 0 clean (bank status "calibrated"); 1 error-level
    diagnostics (bank written as "draft", problems listed); 2 bad input
    (nothing written).
    """
    from nangluc.items import BankError, load_bank, write_bank
    from nangluc.items import bank_from_dict as load_bank_document

    if progress is None:
        progress = sys.stderr.isatty()
    if group_column is not None and report_dir is None:
        _fail("--group is for the report's DIF table: give --report DIR too")
    if report_dir is not None:
        from nangluc.extras import require

        require("calibration", "matplotlib", purpose="--report draws plots with matplotlib")
    if (online or pretest) and bank_path is None:
        _fail("--online needs the current bank (--bank)")
    if pretest and not online:
        _fail("--pretest is only used with --online")
    if online and anchors:
        _fail("--anchor is for linking; an online calibration fixes the operational items instead")
    started = time.perf_counter()
    current = None
    if bank_path is not None:
        try:
            current = load_bank(bank_path)
        except BankError as exc:
            _fail(str(exc))
    try:
        data = read_responses(responses, bank=current)
    except ResponseDataError as exc:
        _fail(f"{responses}: " + "\n  ".join(["cannot use the response data:", *exc.problems]))
    if progress:
        click.echo(
            f"read {data.n_responses:,} responses of {data.n_respondents:,} respondents "
            f"to {data.n_items} items in {time.perf_counter() - started:.1f} s",
            err=True,
        )
    options = {
        "model": model,
        "progress": progress,
        "version": version,
        "linking_method": linking_method,
        "n_quadrature": n_quadrature,
        "priors": _priors.Priors.named(prior),
        "min_responses": min_responses,
        "tol": tolerance,
        "max_iter": max_iterations,
    }
    try:
        if online:
            run = online_calibrate(data, current, list(pretest) or None, **options)
        else:
            run = calibrate_bank(data, current=current, anchors=anchors or None, **options)
    except ValueError as exc:
        _fail(str(exc))
    if progress:
        click.echo(f"fitted in {time.perf_counter() - started:.1f} s (from the start)", err=True)
    dif_result = None
    if group_column is not None:
        from nangluc.calibration.dif import dif_analysis
        from nangluc.calibration.dif import group_column as read_groups

        try:
            groups = read_groups(responses, data, group_column)
            dif_result = dif_analysis(data, load_bank_document(run.document), groups)
        except ValueError as exc:
            _fail(str(exc))
    try:
        written = write_bank(run.document, out)
    except BankError as exc:
        _fail(str(exc))
    _summary(run, out, written.version)
    if report_dir is not None:
        from nangluc.calibration.report import write_report

        path = write_report(run, report_dir, dif=dif_result)
        click.echo(f"wrote the report {path}")
    if run.errors:
        click.echo(
            f"status draft: {len(run.errors)} error(s) above must be resolved before this bank "
            "can go live",
            err=True,
        )
        sys.exit(1)


def _summary(run: CalibrationRun, out: Path, version: str) -> None:
    doc = run.document
    fit = run.fit
    click.echo(f"wrote {out}: bank {version} (parent {doc.get('parent')}, status {doc['status']})")
    posterior = f", log-posterior {fit.log_posterior:.3f}" if fit.log_prior else ""
    click.echo(
        f"fit: log-likelihood {fit.loglik:.3f}{posterior}, {fit.iterations} E-steps, "
        f"{'converged' if fit.converged else 'NOT converged'}"
    )
    decisions: dict[str, list[str]] = {}
    for row in run.items:
        decisions.setdefault(row["decision"], []).append(row["id"])
    click.echo(
        "items: "
        + ", ".join(
            f"{len(decisions.get(d, []))} {d}"
            for d in ("operational", "pretest", "kept", "retired", "left out")
            if decisions.get(d)
        )
        + " (kept = current parameters kept; see the findings)"
    )
    for area, latent in run.latent.items():
        click.echo(
            f"area {area}: latent mean {latent['mean']:.3f}, SD {latent['sd']:.3f} ({latent['scale']})"
        )
    for lk in run.linking:
        click.echo(
            f"linking area {lk.area} ({lk.method}, {len(lk.anchors)} anchors): A = {lk.A:.4f}, B = {lk.B:.4f}"
        )
    if run.correlation is not None:
        codes = run.correlation["areas"]
        click.echo("inter-area correlation (corrected for unreliability):")
        for code, row in zip(codes, run.correlation["matrix"], strict=True):
            click.echo(f"  {code}: " + " ".join("  n/a" if v is None else f"{v:5.2f}" for v in row))
    counts = {
        s: sum(1 for d in run.diagnostics if d.severity == s) for s in ("error", "warning", "info")
    }
    click.echo(
        f"diagnostics: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s)"
    )
    for finding in run.diagnostics[:40]:
        click.echo(f"  {finding}")
    if len(run.diagnostics) > 40:
        click.echo(
            f"  ... and {len(run.diagnostics) - 40} more (see metadata.calibration.diagnostics in {out})"
        )


if __name__ == "__main__":
    calibrate()


@click.command("dif")
@click.argument("responses", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--bank",
    "bank_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bank whose parameters define the ability scales (the anchors).",
)
@click.option(
    "--group",
    "column",
    required=True,
    help="Column of the response CSV that names each respondent's group (e.g. age_group, ward).",
)
@click.option("--reference", default=None, help="Reference group (default: the largest).")
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="False discovery rate (Benjamini-Hochberg over all comparisons).",
)
@click.option(
    "--min-group",
    type=click.IntRange(2, None),
    default=50,
    show_default=True,
    help="Groups with fewer respondents are left out.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every comparison as JSON.",
)
def dif(
    responses: Path,
    bank_path: Path,
    column: str,
    reference: str | None,
    alpha: float,
    min_group: int,
    json_out: Path | None,
) -> None:
    """Differential item functioning of every item between groups of respondents.

    Mantel-Haenszel with the ETS A/B/C classes and an IRT likelihood-ratio
    test with effect sizes, Benjamini-Hochberg control over all comparisons.
    Exit status 0 (whether or not DIF is found), 2 on bad input.
    """
    import json

    from nangluc.calibration.dif import dif_analysis, group_column
    from nangluc.items import BankError, load_bank
    from nangluc.items.bank import atomic_write

    try:
        current = load_bank(bank_path)
    except BankError as exc:
        _fail(str(exc))
    try:
        data = read_responses(responses, bank=current)
    except ResponseDataError as exc:
        _fail(f"{responses}: " + "\n  ".join(["cannot use the response data:", *exc.problems]))
    try:
        groups = group_column(responses, data, column)
        result = dif_analysis(
            data, current, groups, reference=reference, alpha=alpha, min_group=min_group
        )
    except ValueError as exc:
        _fail(str(exc))
    click.echo(
        f"groups: {', '.join(f'{g} ({n:,})' for g, n in result.groups.items())}; "
        f"reference {result.reference}"
    )
    for note in result.skipped:
        click.echo(f"left out: {note}")
    for line in dif_table(result):
        click.echo(line)
    if json_out is not None:
        atomic_write(json_out, json.dumps(result.to_dict(), ensure_ascii=False, indent=2).encode())
        click.echo(f"wrote {json_out}")


def dif_table(result) -> list[str]:
    """Plain-text lines: counts, then one line per flagged comparison."""
    flagged = result.flagged
    lines = [
        f"{len(result.rows)} comparisons, {len(flagged)} flagged "
        f"(likelihood ratio significant at FDR {result.alpha:g} with |ESD| >= {result.min_effect:g}, "
        "or Mantel-Haenszel class C); ETS classes: "
        + ", ".join(f"{c} {sum(1 for r in result.rows if r.ets == c)}" for c in "ABC")
    ]
    for r in sorted(flagged, key=lambda r: -abs(r.effect)):
        harder = "harder" if r.effect < 0 else "easier"
        lines.append(
            f"  {r.item_id} ({r.focal} vs {result.reference}): ESD {r.effect:+.3f} ({harder} for "
            f"{r.focal}), MH {'D-DIF' if r.model != 'grm' else 'SMD/SD'} {r.mh_statistic:+.2f} "
            f"class {r.ets}, G2 {r.lr_g2:.1f} (df {r.lr_df}, q {r.lr_q:.3g})"
        )
    return lines
