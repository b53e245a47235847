"""``nangluc test …``: validate test definition files; store, list, show and activate them.

``validate`` works in the light core (no database). The other commands act
on the service's database, like ``nangluc bank add|activate``, through the
same functions as the admin API, so activation goes through the same go-live
gate and lands in the same audit log.

Exit codes: 0 success, 1 the definition has problems (or the gate refused),
2 the file cannot be read or the command is used wrongly. Errors are
messages, never tracebacks.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from nangluc.engine.definition import ACTIVE_BANK, DefinitionError, TestDefinition
from nangluc.items.cli_support import DATABASE_OPTION, fail, service_admin


def _read(file: str) -> TestDefinition:
    """Read and validate a definition file; exit 2 if unreadable, 1 (listing problems) if invalid."""
    from nangluc.items.definitions import read_document

    try:
        document = read_document(file)
    except DefinitionError as error:
        fail(f"error: {error}", 2)
    try:
        return TestDefinition.from_dict(document)
    except DefinitionError as error:
        for problem in error.problems:
            click.echo(problem)
        n = len(error.problems)
        fail(f"{file}: invalid, {n} problem{'s' if n != 1 else ''}", 1)


def describe(definition: TestDefinition, view: Any | None = None) -> str:
    """One line on what a definition is: kind, areas, length, bank."""
    low, high = definition.length()
    areas = (
        ", ".join(definition.areas)
        if definition.areas is not None
        else ("all " + str(view.n_areas) if view is not None else "all")
    )
    if definition.form is not None:
        length = f"{high} items in a fixed order"
    else:
        length = f"{low}-{high} items" if low != high else f"{high} items"
    return (
        f"{'fixed form' if definition.form is not None else 'adaptive test'} "
        f"{definition.name} version {definition.version}: "
        f"areas {areas}; {length}; bank {definition.bank}; "
        f"languages {', '.join(definition.languages)}"
    )


@click.group("test")
def test() -> None:
    """Test definitions: validate files; store, list, show and activate them in the service."""


@test.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--bank",
    "bank_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Check the areas and items against this bank file (default: the shipped bank, when "
    "the definition uses the active bank or the shipped version).",
)
def validate_command(file: str, bank_file: str | None) -> None:
    """Check a definition file (TOML or JSON) and print every problem, each naming its field."""
    from nangluc import items

    definition = _read(file)
    document = None
    try:
        if bank_file is not None:
            document = items.load_bank(bank_file)
        elif definition.bank == ACTIVE_BANK or definition.bank == items.load_bank().version:
            document = items.load_bank()
    except items.BankError as error:
        fail(f"error: {error}", 2)
    if document is None:
        click.echo(
            f"note: bank {definition.bank} was not given (--bank FILE): its areas and items "
            "are not checked"
        )
        click.echo(f"{file}: valid — {describe(definition)}")
        return
    try:
        view, _ = definition.build(document.item_bank, check_bank=bank_file is not None)
    except DefinitionError as error:
        for problem in error.problems:
            click.echo(problem)
        n = len(error.problems)
        fail(f"{file}: invalid on bank {document.version}, {n} problem{'s' if n != 1 else ''}", 1)
    if definition.bank not in (ACTIVE_BANK, document.version):
        click.echo(f"note: checked on bank {document.version}, not {definition.bank}")
    click.echo(f"{file}: valid — {describe(definition, view)} (checked on {document.version})")


@test.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@DATABASE_OPTION
def add_command(file: str, database_url: str) -> None:
    """Store a definition file in the service's database as a draft version."""
    definition = _read(file)
    info = service_admin().add_test(database_url, definition.to_dict())
    click.echo(
        f"stored test {info['name']} version {info['version']} as a draft; put it live with: "
        f"nangluc test activate {info['name']} --version {info['version']}"
    )


@test.command("list")
@DATABASE_OPTION
def list_command(database_url: str) -> None:
    """The stored definitions: name, version, status, kind, length, title (the default marked)."""
    for info in service_admin().list_tests(database_url):
        marks = " (default)" if info["default"] else ""
        simulated = info["simulated"] or {}
        accuracy = (
            f"accuracy {simulated['level_accuracy']:.3f}, {simulated['mean_items']:.1f} items"
            if simulated
            else "not simulated"
        )
        click.echo(
            f"{info['name']}\t{info['version']}\t{info['status']}{marks}\t{info['kind']}\t"
            f"{info['min_items']}-{info['max_items']} items\t{accuracy}\t{info['title']['vi']}"
        )


@test.command("show")
@click.argument("name")
@click.option("--version", "version", default=None, help="Which version (default: the active one).")
@DATABASE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print only the definition document (JSON).")
def show_command(name: str, version: str | None, database_url: str, as_json: bool) -> None:
    """A stored definition: its status and the document (JSON)."""
    info = service_admin().show_test(database_url, name, version)
    document = json.dumps(info["document"], ensure_ascii=False, indent=2)
    if as_json:
        click.echo(document)
        return
    definition = TestDefinition.from_dict(info["document"])
    click.echo(
        f"{info['name']} {info['version']}: {info['status']}"
        + (" (default)" if info["default"] else "")
    )
    click.echo(describe(definition))
    if info["simulated"]:
        s = info["simulated"]
        click.echo(
            f"simulated on bank {s['bank']}: level accuracy {s['level_accuracy']:.3f}, "
            f"{s['mean_items']:.1f} items on average (max {s['max_items']})"
        )
    click.echo(document)


@test.command("activate")
@click.argument("name")
@click.option("--version", "version", required=True, help="The version to put live.")
@click.option(
    "--default", "make_default", is_flag=True, help="Also make it the city's default test."
)
@DATABASE_OPTION
@click.option(
    "--force", is_flag=True, help="Override a refusal of the go-live gate (needs --reason)."
)
@click.option(
    "--reason", default=None, help="Why (written to the audit log; required with --force)."
)
def activate_command(
    name: str,
    version: str,
    make_default: bool,
    database_url: str,
    force: bool,
    reason: str | None,
) -> None:
    """Put a stored definition live through the go-live gate (reports accuracy and length first).

    The gate simulates the test with its rules on its bank and areas, and the
    active version of the same test on the same simulated citizens; it
    refuses a bank with error-level diagnostics or a drop of level accuracy
    beyond the tolerance (NANGLUC_GATE_TOLERANCE). Exit status: 0 activated,
    1 refused by the gate, 2 bad input.
    """
    if force and not (reason or "").strip():
        fail("error: --force needs --reason (it is written to the audit log)", 2)
    code, text = service_admin().activate_test(
        database_url, name, version, default=make_default, force=force, reason=reason
    )
    click.echo(text, err=code != 0)
    sys.exit(code)
