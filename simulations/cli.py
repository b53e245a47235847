"""``nangluc simulate``: accuracy simulations of an adaptive test from the shell."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import click

from nangluc.extras import missing_modules, require
from nangluc.simulations.core import plain_json
from nangluc.simulations.designs import (
    DESIGN_KEYS,
    ESTIMATOR_CHOICES,
    SELECTOR_CHOICES,
    build_design,
    read_grid,
)
from nangluc.simulations.population import DEFAULT_CORRELATION, draw_population, read_population
from nangluc.simulations.study import DEFAULT_REFERENCE_EXAMINEES, population_stream, run_designs

DEFAULT_EXAMINEES = 10_000


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@click.command(
    "simulate",
    epilog="Grid files (--grid) are TOML or JSON: a [designs.NAME] table per design with the settings "
    + ", ".join(DESIGN_KEYS)
    + " (same meaning as the flags), and an optional [defaults] table applied to every design.",
)
@click.option(
    "--bank",
    "bank_path",
    type=click.Path(dir_okay=False),
    help="Bank file (default: the shipped bank).",
)
@click.option(
    "--config",
    "config_name",
    default=None,
    help="Start from this named test config (default: citizen-v2, the citizen test).",
)
@click.option(
    "--test",
    "test_path",
    type=click.Path(dir_okay=False),
    help="Evaluate a test definition file (TOML or JSON; see `nangluc test validate`): its bank "
    "areas and rules, or its fixed form. The flags below override its rules; --bank its bank.",
)
@click.option(
    "--examinees",
    type=click.IntRange(min=1),
    default=DEFAULT_EXAMINEES,
    show_default=True,
    help="Simulees drawn from the population.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of every random draw; the same seed gives the same numbers.",
)
@click.option("--selector", type=click.Choice(SELECTOR_CHOICES), help=DESIGN_KEYS["selector"])
@click.option("--estimator", type=click.Choice(ESTIMATOR_CHOICES), help=DESIGN_KEYS["estimator"])
@click.option(
    "--stop-se",
    type=float,
    help=DESIGN_KEYS["stop_se"] + " (replaces the config's stopping rules).",
)
@click.option(
    "--stop-overall-se", type=float, help=DESIGN_KEYS["stop_overall_se"] + " (replaces them too)."
)
@click.option("--stop-level", type=float, help=DESIGN_KEYS["stop_level"] + " (replaces them too).")
@click.option(
    "--stop-level-probability",
    type=float,
    help=DESIGN_KEYS["stop_level_probability"] + " (replaces them too).",
)
@click.option("--min-items", type=int, help=DESIGN_KEYS["min_items"])
@click.option("--max-items", type=int, help=DESIGN_KEYS["max_items"])
@click.option("--exposure", help=DESIGN_KEYS["exposure"])
@click.option("--start", "start_rule", help=DESIGN_KEYS["start"])
@click.option(
    "--correlation",
    type=float,
    default=DEFAULT_CORRELATION,
    show_default=True,
    help="Correlation of the simulees' abilities between areas (mean 0, SD 1).",
)
@click.option(
    "--population",
    "population_path",
    type=click.Path(dir_okay=False),
    help="CSV of true abilities, one row per simulee: columns named by area code or "
    "theta_1..theta_A (replaces --examinees and --correlation).",
)
@click.option(
    "--responses",
    "responses_path",
    type=click.Path(dir_okay=False),
    help="Replay recorded answers instead of simulating them (post-hoc simulation): a long CSV "
    "respondent_id,item_id,response as calibration reads it. Items a respondent did not answer are "
    "unavailable to that respondent; the figures compare each test with the respondent's "
    "full-pattern score, by test length.",
)
@click.option(
    "--grid",
    "grid_path",
    type=click.Path(dir_okay=False),
    help="TOML/JSON file of named designs to compare on the same simulees (the flags above set "
    "their common base).",
)
@click.option(
    "--references/--no-references",
    default=True,
    show_default=True,
    help="Also compute the full-bank accuracy and the test with items chosen at the true theta.",
)
@click.option(
    "--reference-examinees",
    type=click.IntRange(min=1),
    default=DEFAULT_REFERENCE_EXAMINEES,
    show_default=True,
    help="Simulees (the first ones) used for the references.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to use (default: all available cores).",
)
@click.option(
    "--dask", "use_dask", is_flag=True, help="Run the designs of a grid as tasks on a Dask cluster."
)
@click.option("--scheduler", help="Dask scheduler address (default with --dask: a local cluster).")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Also write the JSON summary here."
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write a readable report (Markdown with PNG plots) into this directory.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars (default: when stderr is a terminal).",
)
def simulate(
    bank_path, config_name, test_path, examinees, seed, selector, estimator, stop_se, stop_overall_se, stop_level,
    stop_level_probability, min_items, max_items, exposure, start_rule, correlation, population_path, responses_path, grid_path, references, reference_examinees,
    workers, use_dask, scheduler, json_path, report_dir, progress,
):  # fmt: skip
    """Run simulated test takers through an adaptive test and report its accuracy.

    Starts from the default citizen test (or --config, or the definition in
    --test) and changes what the flags give. Prints a JSON summary: examinees, mean_items, rmse and bias
    of the overall score (0-100), level_accuracy (share whose overall level
    is right), seconds, per-area theta_rmse, length distribution, level
    confusion matrix, item exposure and test overlap, and reference points
    (full-bank accuracy; the same test with items chosen at the true theta).
    """
    started = time.perf_counter()
    if progress is None:
        # On by default on a terminal, when the progress bar's package is installed.
        progress = sys.stderr.isatty() and not missing_modules("simulations", ("tqdm",))
    elif progress:
        require("simulations", "tqdm", purpose="--progress needs the 'simulations' extra")
    if report_dir:
        require("simulations", "matplotlib", purpose="--report needs the 'simulations' extra")
    if use_dask:
        require(
            "simulations", "dask", "distributed", purpose="--dask needs the 'simulations' extra"
        )
    workers = workers or _cores()
    try:
        if scheduler and not use_dask:
            raise ValueError("--scheduler needs --dask")
        if use_dask and not grid_path:
            raise ValueError("--dask runs the designs of a grid; give --grid FILE")
        if json_path and Path(json_path).parent and not Path(json_path).resolve().parent.is_dir():
            raise ValueError(
                f"cannot write {json_path}: directory {Path(json_path).parent} does not exist"
            )
        if report_dir and Path(report_dir).exists() and not Path(report_dir).is_dir():
            raise ValueError(f"report directory {report_dir} is a file")
        definition = None
        if test_path:
            definition = _read_definition(test_path)
            if bank_path is None and definition.bank not in ("active", _shipped_version()):
                raise ValueError(
                    f"{test_path} is defined on bank {definition.bank}; give that bank with "
                    "--bank FILE"
                )
        document, bank = _load_bank(bank_path)
        if responses_path:
            for flag, given in (("--grid", grid_path), ("--population", population_path),
                                ("--dask", use_dask)):  # fmt: skip
                if given:
                    raise ValueError(
                        f"--responses replays recorded answers; it cannot be combined with {flag}"
                    )
        spec = {
            "config": config_name, "selector": selector, "estimator": estimator, "stop_se": stop_se,
            "stop_overall_se": stop_overall_se, "stop_level": stop_level,
            "stop_level_probability": stop_level_probability, "min_items": min_items,
            "max_items": max_items, "exposure": exposure, "start": start_rule,
        }  # fmt: skip
        if definition is not None:
            base, bank = _definition_design(definition, bank, spec)
        else:
            base = build_design(spec)
        if responses_path:
            text = _replay(bank, document, base, responses_path, seed, workers, progress, report_dir,
                           bank_path, started)  # fmt: skip
            if json_path:
                _write_atomic(Path(json_path), text + "\n")
            click.echo(text)
            return
        designs = read_grid(grid_path, base=base.config) if grid_path else (base,)
        if population_path:
            true_theta = read_population(population_path, bank.area_codes)
            population = {"source": str(population_path), "examinees": int(true_theta.shape[0])}
        else:
            true_theta = draw_population(
                examinees, bank.n_areas, correlation, population_stream(seed)
            )
            population = {"source": "normal", "examinees": examinees, "mean": 0.0, "sd": 1.0,
                          "correlation": correlation}  # fmt: skip
        results = run_designs(
            bank, designs, true_theta, seed, references=references, reference_examinees=reference_examinees,
            workers=workers, progress=progress, dask=use_dask, scheduler=scheduler,
        )  # fmt: skip
        context = {
            "bank": {
                "version": bank.version, "path": str(bank_path) if bank_path else "shipped default",
                "status": getattr(document, "status", None), "items": bank.n_items,
                "operational": int(bank.operational.sum()), "areas": list(bank.area_codes),
                "area_names": {k: v for k, v in _area_names(document).items()
                               if k in bank.area_codes},
            },
            "population": population, "seed": seed, "workers": workers,
        }  # fmt: skip
        if definition is not None:
            context["test"] = {
                "name": definition.name, "version": definition.version, "kind": definition.kind,
                "path": str(test_path), "areas": list(bank.area_codes),
                "overrides": {k: v for k, v in spec.items() if v is not None},
            }  # fmt: skip
        if grid_path:
            output = {"designs": [r.summary for r in results], **context}
        else:
            output = {**results[0].summary, **context}
        output["process_seconds"] = round(time.perf_counter() - started, 3)
        text = json.dumps(plain_json(output), ensure_ascii=False, indent=2, allow_nan=False)
        if report_dir:
            from nangluc.simulations.report import write_report

            write_report(report_dir, bank, results, context, grid=bool(grid_path))
        if json_path:
            _write_atomic(Path(json_path), text + "\n")
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(text)


def _replay(bank, document, design, responses_path, seed, workers, progress, report_dir, bank_path,
            started):  # fmt: skip
    """``--responses``: replay recorded answers; returns the JSON text."""
    import numpy as np

    from nangluc.calibration.data import read_responses
    from nangluc.simulations.replay import recorded_matrix, replay

    if design.sympson_hetter_rate is not None:
        raise ValueError(
            "--responses with sympson-hetter: derive the control parameters on simulated test "
            "takers first; replay with none or randomesque:K"
        )
    if not Path(responses_path).is_file():
        raise ValueError(f"response file {responses_path} does not exist")
    data = read_responses(responses_path, bank=document)
    recorded, ids = recorded_matrix(data, bank)
    result = replay(bank, design.config, recorded, np.random.default_rng([seed, 1]),
                    respondent_ids=ids, workers=workers, progress=progress)  # fmt: skip
    context = {
        "bank": {"version": bank.version, "path": str(bank_path) if bank_path else "shipped default",
                 "status": getattr(document, "status", None), "items": bank.n_items,
                 "operational": int(bank.operational.sum()), "areas": list(bank.area_codes)},
        "responses": {"source": str(responses_path), "respondents": data.n_respondents,
                      "responses": data.n_responses},
        "seed": seed, "workers": workers,
    }  # fmt: skip
    output = {**result.summary, **context}
    output["process_seconds"] = round(time.perf_counter() - started, 3)
    if report_dir:
        from nangluc.simulations.report import write_replay_report

        write_replay_report(report_dir, bank, result, context)
    return json.dumps(plain_json(output), ensure_ascii=False, indent=2, allow_nan=False)


def _read_definition(path):
    from nangluc.engine.definition import DefinitionError
    from nangluc.items.definitions import read_definition

    try:
        return read_definition(path)
    except DefinitionError as error:
        raise ValueError(str(error)) from None


def _shipped_version() -> str | None:
    from nangluc import items

    try:
        return items.load_bank().version
    except (FileNotFoundError, ValueError):
        return None


def _definition_design(definition, bank, spec):
    """The design of a test definition with the flags' overrides, and the bank it runs on.

    The bank is restricted to the definition's areas; Sympson–Hetter rules at a
    rate get their control parameters derived by the study, as for flags.
    """
    from nangluc.engine.definition import DefinitionError
    from nangluc.simulations.designs import Design

    overrides = {k: v for k, v in spec.items() if v is not None}
    if definition.form is not None and "config" in overrides:
        raise ValueError("--config: a fixed form has no base config")
    try:
        rules = definition.rules_config(overrides)
        if rules.sympson_hetter_rate is None:
            view, config = definition.build(bank, overrides=overrides, check_bank=False)
        else:
            view = definition.view(bank)
            config = rules.config
    except DefinitionError as error:
        raise ValueError(str(error)) from None
    design = Design(
        name=definition.key,
        config=config,
        sympson_hetter_rate=rules.sympson_hetter_rate,
        overrides=tuple(overrides.items()),
    )
    return design, view


def _area_names(document) -> dict[str, dict[str, str]]:
    """Area code -> {"vi": name, "en": name} from the bank's framework (empty for a bare bank)."""
    framework = getattr(document, "framework", None)
    names = {}
    for area in framework.areas if framework is not None else ():
        value = area.name
        vi = value.get("vi") if isinstance(value, dict) else getattr(value, "vi", str(value))
        en = value.get("en") if isinstance(value, dict) else getattr(value, "en", None)
        names[area.code] = {"vi": str(vi), "en": str(en or vi)}
    return names


def _load_bank(path):
    """The bank document and its engine form; clear errors for bad files."""
    from nangluc import items

    if path is not None and not Path(path).is_file():
        raise ValueError(f"bank file {path} does not exist")
    try:
        document = items.load_bank(path)
    except FileNotFoundError:
        raise ValueError("the shipped item bank is missing; give one with --bank FILE") from None
    return document, document.item_bank


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (no partial file)."""
    handle, temporary = tempfile.mkstemp(
        dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
