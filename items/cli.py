"""``nangluc bank …``: validate, inspect, export and import item banks.

Exit codes: 0 success, 1 the bank (or spreadsheet) has problems, 2 the file
cannot be read at all or the command is used wrongly. Errors are printed as
messages, never as tracebacks.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from pathlib import Path

import click

from nangluc.engine import CITIZEN_TEST, CONFIGS
from nangluc.items.bank import (
    DEFAULT_BANK_PATH,
    BankDocument,
    BankError,
    BankFileError,
    atomic_write,
    bank_from_dict,
    load_bank,
    read_json,
    write_bank,
)
from nangluc.items.cli_support import DATABASE_OPTION, fail, service_admin
from nangluc.items.schema import validate_document
from nangluc.items.spreadsheet import bank_to_csv, decode_csv, import_csv, items_from_csv
from nangluc.text import csv_writer


def _load(path: str) -> BankDocument:
    """Load a bank for a command, exiting with a message (2: unreadable, 1: invalid)."""
    try:
        return load_bank(path)
    except BankFileError as exc:
        fail(f"error: {exc.problems[0]}", 2)
    except BankError as exc:
        fail(f"error: {exc}", 1)


@click.group("bank")
def bank() -> None:
    """Validate, inspect, export and import item banks (JSON bank files, CSV sheets)."""


@bank.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--base",
    "base_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="for a CSV file: the bank whose framework its areas and competences must fit",
)
def validate_command(file: str, base_file: str | None) -> None:
    """Check a bank file (or a CSV sheet) and print every problem found (exit 1 if any)."""
    if file.lower().endswith(".csv"):
        _validate_csv(file, base_file)
        return
    try:
        data = read_json(file)
    except BankFileError as exc:
        fail(f"error: {exc.problems[0]}", 2)
    problems = validate_document(data)
    if problems:
        for problem in problems:
            click.echo(str(problem))
        n = len(problems)
        fail(f"{file}: invalid, {n} problem{'s' if n != 1 else ''}", 1)
    try:
        doc = bank_from_dict(data)
        _ = doc.item_bank  # the engine's own checks: "valid" means the engine accepts it
    except ValueError as exc:
        fail(f"{file}: invalid: {exc}", 1)
    if not doc.hash_matches:
        click.echo(
            f"warning: metadata.content_hash ({doc.declared_hash[:12]}) does not match the content "
            f"({doc.content_hash[:12]}): version {doc.version} was edited after it was written; "
            "give the edited bank a new version"
        )
    areas = len(doc.area_codes)
    click.echo(
        f"{file}: valid — version {doc.version} ({doc.status}), {len(doc)} items in {areas} "
        f"area{'s' if areas != 1 else ''}"
    )


def _validate_csv(file: str, base_file: str | None) -> None:
    framework = None
    if base_file is not None:
        base = _load(base_file)
        framework = base.framework.to_dict() if base.framework is not None else None
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        fail(f"error: CSV file not found: {file}", 2)
    except OSError as exc:
        fail(f"error: cannot read {file}: {exc.strerror or exc}", 2)
    try:
        found = items_from_csv(decode_csv(data, name=file), framework=framework)
    except BankError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        n = len(exc.problems)
        fail(f"{file}: invalid, {n} problem{'s' if n != 1 else ''}", 1)
    click.echo(f"{file}: valid — {len(found)} items")


@bank.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
def info_command(file: str) -> None:
    """Version, status, levels, overall rule and item counts by area, kind, model and status."""
    doc = _load(file)
    click.echo(f"version:  {doc.version}")
    click.echo(f"parent:   {doc.parent or '-'}")
    click.echo(f"status:   {doc.status}")
    click.echo(f"created:  {doc.created or '-'}")
    click.echo(f"hash:     {doc.content_hash}")
    source = doc.metadata.get("parameter_source")
    if isinstance(source, dict) and "method" in source:
        click.echo(f"parameters: {source['method']}")
    click.echo(f"items:    {len(doc)}")
    by_area = Counter(i.area for i in doc.items)
    for code in doc.area_codes:
        name = ""
        if doc.framework is not None:
            name = " " + doc.framework.area(code).name["vi"]
        kinds = Counter(i.kind for i in doc.items if i.area == code)
        detail = ", ".join(
            f"{k} {kinds[k]}" for k in ("knowledge", "skill", "attitude") if kinds[k]
        )
        click.echo(f"  area {code}{name}: {by_area[code]} ({detail})")
    scale = doc.item_bank.scale
    click.echo(
        "levels:   "
        + ", ".join(
            f"{lv.code} {lv.name_vi} [{lv.lower:g}, {lv.upper:g}{']' if lv is scale.top else ')'}"
            for lv in scale.levels
        )
    )
    weights = ", ".join(f"area {code} x {w:g}" for code, w in scale.weights or ())
    click.echo(f"overall:  {scale.rule}" + (f" ({weights})" if weights else " of the areas"))
    for label, counter in (
        ("ksa", Counter(i.kind for i in doc.items)),
        ("model", Counter(i.model for i in doc.items)),
        ("status", Counter(i.status for i in doc.items)),
    ):
        click.echo(f"{label + ':':<9} " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))


@bank.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    required=True,
    help="csv for a spreadsheet, json for a normalised bank file",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="file to write (default: standard output)",
)
def export_command(file: str, fmt: str, out: Path | None) -> None:
    """Write a bank as a CSV spreadsheet (UTF-8 with BOM) or as normalised JSON."""
    doc = _load(file)
    if fmt == "csv":
        data = bank_to_csv(doc).encode("utf-8")
        if out is None:
            click.echo(data, nl=False)  # bytes as is: keeps the BOM and CRLF line ends
            return
        try:
            atomic_write(out, data)
        except OSError as exc:
            fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
        click.echo(f"wrote {out} ({len(doc)} items)", err=True)
        return
    if out is None:
        click.echo(doc.to_json(), nl=False)
        return
    try:
        write_bank(doc, out)
    except BankError as exc:
        fail(f"error: {exc}", 1)
    except OSError as exc:
        fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
    click.echo(f"wrote {out} ({len(doc)} items)", err=True)


@bank.command("import")
@click.argument("csv_file", metavar="CSV", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--base",
    "base_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="the bank the new version derives from",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the new bank file",
)
@click.option(
    "--version",
    "version",
    required=True,
    help="id of the new version (its parent is the base's version)",
)
@click.option(
    "--mode",
    type=click.Choice(["text", "full"]),
    default="text",
    show_default=True,
    help="text: replace text, options and key, keep parameters; full: the CSV is the whole item list",
)
def import_command(csv_file: Path, base_file: str, out: Path, version: str, mode: str) -> None:
    """Make a new bank version from a spreadsheet (e.g. the official criteria text).

    In the CSV, key is the number of the correct option column (1 = option1).
    """
    base = _load(base_file)
    try:
        data = csv_file.read_bytes()
    except FileNotFoundError:
        fail(f"error: CSV file not found: {csv_file}", 2)
    except OSError as exc:
        fail(f"error: cannot read {csv_file}: {exc.strerror or exc}", 2)
    try:
        text = decode_csv(data, name=str(csv_file))
        doc, notes = import_csv(text, base, version=version, mode=mode, source_name=csv_file.name)
    except BankError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        n = len(exc.problems)
        fail(f"{csv_file}: not imported, {n} problem{'s' if n != 1 else ''}", 1)
    try:
        write_bank(doc, out)
    except BankError as exc:
        fail(f"error: {exc}", 1)
    except OSError as exc:
        fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
    for note in notes:
        click.echo(note)
    click.echo(f"wrote {out}: version {doc.version} (parent {doc.parent}), {len(doc)} items")


# ------------------------------------------------------------ a service database


@bank.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@DATABASE_OPTION
def add_command(file: Path, database_url: str) -> None:
    """Store a bank file (e.g. a calibrated one) in the service's database as a draft version."""
    info = service_admin().add(database_url, file)
    click.echo(
        f"stored bank {info['version']} as a draft ({info['items']} items); "
        f"put it live with: nangluc bank activate {info['version']}"
    )


@bank.command("versions")
@DATABASE_OPTION
def versions_command(database_url: str) -> None:
    """List the bank versions stored in the service's database, newest first."""
    for info in service_admin().versions(database_url):
        click.echo(
            f"{info['version']}\t{info['status']}\t{info['document_status'] or ''}\t"
            f"{info['items']} items\tcreated {info['created']:%Y-%m-%d %H:%M}"
        )


@bank.command("activate")
@click.argument("version")
@DATABASE_OPTION
@click.option(
    "--force", is_flag=True, help="Override a refusal of the go-live gate (needs --reason)."
)
@click.option(
    "--reason", default=None, help="Why (written to the audit log; required with --force)."
)
def activate_command(version: str, database_url: str, force: bool, reason: str | None) -> None:
    """Put a stored bank version live for new tests, through the go-live gate.

    The gate refuses a version with error-level diagnostics, or whose
    simulated level accuracy on the citizen test falls more than 0.02 below
    the active version's. Exit status: 0 activated, 1 refused by the gate,
    2 bad input. Every attempt is written to the audit log.
    """
    if force and not (reason or "").strip():
        fail("error: --force needs --reason (it is written to the audit log)", 2)
    code, text = service_admin().activate(database_url, version, force=force, reason=reason)
    click.echo(text, err=code != 0)
    sys.exit(code)


@bank.command("activations")
@DATABASE_OPTION
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the entries as JSON (with the gate's results)."
)
def activations_command(database_url: str, limit: int, as_json: bool) -> None:
    """The audit log of bank activations, newest first: when, who, which, outcome, why."""
    admin = service_admin()
    entries = admin.activations(database_url, limit)
    if as_json:
        click.echo(admin.dumps(entries))
        return
    for e in entries:
        click.echo(
            f"{e['at']:%Y-%m-%d %H:%M:%S}\t{e['actor']}\t{e['version']}\t{e['outcome']}"
            + ("\tFORCED" if e["forced"] else "")
            + (f"\t{e['reason']}" if e["reason"] else "")
        )


@click.command("score")
@click.argument("responses", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--test",
    "test_name",
    default=None,
    help="the test whose rules score the forms: a definition file (.toml or .json), a "
    "shipped test's name (citizen, an-toan-so, phieu-truoc-sau) or engine rules "
    f"({', '.join(sorted(CONFIGS))}); default: the citizen test. A test of some areas "
    "scores those areas; a fixed form takes its own items only",
)
@click.option(
    "--bank",
    "bank_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="the bank file the forms were drawn from (default: the shipped bank)",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV file to write (default: standard output); written whole or not at all",
)
@click.option(
    "--language",
    type=click.Choice(["vi", "en"]),
    default="vi",
    show_default=True,
    help="language of the level names",
)
def score(
    responses: Path, test_name: str | None, bank_file: str | None, out: Path | None, language: str
) -> None:
    """Score paper forms or survey answers in bulk: one result row per respondent.

    RESPONSES is a CSV file, long (respondent_id,item_id,response or option:
    the calibration input and the service's export) or wide (respondent_id
    and one column per item id, cells the option letter A, B, …, empty when
    not answered); see nangluc.items.forms. Every row is checked first: a bad
    row is reported with its line number and nothing is written (exit 1).
    Exit 2: the file or an option cannot be used.
    """
    from nangluc.engine import score_patterns
    from nangluc.items.forms import FormError, FormFileError, read_forms

    doc = _load(bank_file) if bank_file is not None else None
    definition = _definition(test_name)
    if doc is None:
        doc = _load_default()
        if definition is not None and definition.bank not in ("active", doc.version):
            fail(
                f"error: --test: {definition.key} is defined on bank {definition.bank}, not the "
                f"shipped {doc.version}: give that bank file with --bank",
                2,
            )
    bank, config, label = _test_on(definition, test_name, doc)
    allowed = set(definition.form.items) if definition and definition.form else set(bank.item_ids)
    scope = f"test {label} (bank {doc.version})" if definition is not None else None
    try:
        patterns = read_forms(responses, doc, items=allowed, scope=scope)
    except FormFileError as exc:
        fail(f"error: {exc.problems[0]}", 2)
    except FormError as exc:
        for problem in exc.problems:
            click.echo(f"{responses}: {problem}", err=True)
        n = len(exc.problems)
        fail(f"{responses}: nothing scored, {n} problem{'s' if n != 1 else ''} to fix", 1)
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerow(_score_columns(bank.area_codes))
    results = score_patterns(bank, [pattern.answers for pattern in patterns], config=config)
    for pattern, result in zip(patterns, results, strict=True):
        writer.writerow(_score_row(pattern.respondent_id, result, doc.version, label, language))
    data = buffer.getvalue().encode("utf-8")
    if out is None:
        click.echo(data, nl=False)
        return
    try:
        atomic_write(out, data)
    except OSError as exc:
        fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
    click.echo(f"wrote {out} ({len(patterns)} respondents)", err=True)


def _definition(value: str | None):
    """The test definition ``--test`` names (a file or a shipped test), None for engine rules."""
    from nangluc.engine.definition import DefinitionError
    from nangluc.items.definitions import read_definition, shipped_definitions

    if value is None or value in CONFIGS:
        return None
    path = Path(value)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        try:
            return read_definition(path)
        except DefinitionError as exc:
            fail(f"error: --test: {exc}", 2)
    shipped = [d for d in shipped_definitions().values() if d.name == value]
    if not shipped:
        names = sorted({d.name for d in shipped_definitions().values()} | set(CONFIGS))
        fail(
            f"error: --test: no test named {value!r} (known: {', '.join(names)}), and no such file",
            2,
        )
    return max(shipped, key=lambda d: d.version)


def _test_on(definition, value: str | None, doc: BankDocument):
    """(bank the test scores on, its config, its name for the output) on the bank ``doc``."""
    from nangluc.engine.definition import DefinitionError

    if definition is None:
        return doc.item_bank, _test_config(value), _test_config(value).name
    # Exposure control does not change a score; Sympson–Hetter rules would need
    # parameters derived by simulation first, so scoring runs without it.
    overrides = {"exposure": "none"} if definition.form is None else None
    try:
        bank, config = definition.build(doc.item_bank, overrides=overrides, check_bank=False)
    except DefinitionError as exc:
        fail(f"error: --test: {exc}", 2)
    return bank, config, definition.key


def _test_config(name: str | None):
    if name is None:
        return CITIZEN_TEST
    return CONFIGS[name]


def _load_default() -> BankDocument:
    return _load(str(DEFAULT_BANK_PATH))


#: Columns of one part (overall or an area) of a scored form.
SCORE_PARTS = ("score", "low", "high", "se", "level", "level_name", "probability", "settled")


def _score_columns(area_codes) -> list[str]:
    columns = ["respondent_id", "bank_version", "test", "answered"]
    columns += [f"overall_{part}" for part in SCORE_PARTS]
    for code in area_codes:
        columns += [f"area_{code}_{part}" for part in SCORE_PARTS] + [f"area_{code}_answered"]
    return columns


def _score_row(respondent: str, result, version: str, test: str, language: str) -> list:
    def part(p) -> list:
        name = p.level_name if language == "vi" else p.level_name_en
        return [
            round(p.score, 4),
            round(p.interval[0], 4),
            round(p.interval[1], 4),
            round(p.se, 4),
            p.level,
            name,
            round(p.probability, 4),
            int(p.settled),
        ]

    row = [respondent, version, test, result.answered, *part(result.overall)]
    for area in result.areas:
        row += [*part(area), area.answered]
    return row
