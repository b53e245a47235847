"""``nangluc bank …``: validate, inspect, export and import item banks.

Exit codes: 0 success, 1 the bank (or spreadsheet) has problems, 2 the file
cannot be read at all or the command is used wrongly. Errors are printed as
messages, never as tracebacks.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import NoReturn

import click

from nangluc.items.bank import (
    BankDocument,
    BankError,
    BankFileError,
    atomic_write,
    bank_from_dict,
    load_bank,
    read_json,
    write_bank,
)
from nangluc.items.schema import validate_document
from nangluc.items.spreadsheet import bank_to_csv, decode_csv, import_csv, items_from_csv


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _load(path: str) -> BankDocument:
    """Load a bank for a command, exiting with a message (2: unreadable, 1: invalid)."""
    try:
        return load_bank(path)
    except BankFileError as exc:
        _fail(f"error: {exc.problems[0]}", 2)
    except BankError as exc:
        _fail(f"error: {exc}", 1)


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
        _fail(f"error: {exc.problems[0]}", 2)
    problems = validate_document(data)
    if problems:
        for problem in problems:
            click.echo(str(problem))
        n = len(problems)
        _fail(f"{file}: invalid, {n} problem{'s' if n != 1 else ''}", 1)
    try:
        doc = bank_from_dict(data)
        _ = doc.item_bank  # the engine's own checks: "valid" means the engine accepts it
    except ValueError as exc:
        _fail(f"{file}: invalid: {exc}", 1)
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
        _fail(f"error: CSV file not found: {file}", 2)
    except OSError as exc:
        _fail(f"error: cannot read {file}: {exc.strerror or exc}", 2)
    try:
        found = items_from_csv(decode_csv(data, name=file), framework=framework)
    except BankError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        n = len(exc.problems)
        _fail(f"{file}: invalid, {n} problem{'s' if n != 1 else ''}", 1)
    click.echo(f"{file}: valid — {len(found)} items")


@bank.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
def info_command(file: str) -> None:
    """Version, status and item counts by area, kind (ksa), model and status."""
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
            _fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
        click.echo(f"wrote {out} ({len(doc)} items)", err=True)
        return
    if out is None:
        click.echo(doc.to_json(), nl=False)
        return
    try:
        write_bank(doc, out)
    except BankError as exc:
        _fail(f"error: {exc}", 1)
    except OSError as exc:
        _fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
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
        _fail(f"error: CSV file not found: {csv_file}", 2)
    except OSError as exc:
        _fail(f"error: cannot read {csv_file}: {exc.strerror or exc}", 2)
    try:
        text = decode_csv(data, name=str(csv_file))
        doc, notes = import_csv(text, base, version=version, mode=mode, source_name=csv_file.name)
    except BankError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        n = len(exc.problems)
        _fail(f"{csv_file}: not imported, {n} problem{'s' if n != 1 else ''}", 1)
    try:
        write_bank(doc, out)
    except BankError as exc:
        _fail(f"error: {exc}", 1)
    except OSError as exc:
        _fail(f"error: cannot write {out}: {exc.strerror or exc}", 2)
    for note in notes:
        click.echo(note)
    click.echo(f"wrote {out}: version {doc.version} (parent {doc.parent}), {len(doc)} items")
