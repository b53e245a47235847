"""Researcher operations on a service database from the command line.

``nangluc bank add|versions|activate|activations --database-url URL`` (see
:mod:`nangluc.items.cli`) call these. They act on the same database and
through the same functions as the HTTP API (:mod:`nangluc.service.research`),
so activation from the command line goes through the same go-live gate and
lands in the same audit log, with ``actor`` = ``cli:<operating-system user>``.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from nangluc.service import research
from nangluc.service.banks import ConflictError, GateRefusedError, NotFoundError
from nangluc.service.migrate import SchemaError
from nangluc.service.settings import Settings
from nangluc.service.store import Database


class AdminError(click.ClickException):
    """Bad input for an admin command: message and exit status 2."""

    exit_code = 2


@contextmanager
def database(url: str) -> Iterator[Database]:
    """The service database at ``url`` (created at the newest migration if empty; no bank stored).

    A database at an older schema is refused: the message says to run
    ``nangluc db upgrade``.

    Other settings (the gate's ``NANGLUC_GATE_SIMULEES``, ``NANGLUC_GATE_TOLERANCE``)
    come from the environment, as for ``nangluc serve``.
    """
    try:
        db = Database(dataclasses.replace(Settings.from_env(), database_url=url))
    except ValueError as error:
        raise AdminError(str(error)) from error
    try:
        try:
            db.ensure_schema()
        except SchemaError as error:
            raise AdminError(str(error)) from None
        except Exception as error:  # unreachable server, unreadable file: say which
            raise AdminError(f"cannot open the database: {type(error).__name__}: {error}") from None
        yield db
    finally:
        db.dispose()


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


def add(url: str, path: Path) -> dict[str, Any]:
    from nangluc.items import BankError, load_bank

    try:
        document = load_bank(path)
    except BankError as error:
        raise AdminError(str(error)) from error
    with database(url) as db:
        try:
            return research.store_bank(db, document.to_dict())
        except ConflictError as error:
            raise AdminError(str(error)) from error


def versions(url: str) -> list[dict[str, Any]]:
    with database(url) as db:
        return research.list_banks(db)


def activations(url: str, limit: int) -> list[dict[str, Any]]:
    with database(url) as db:
        return research.activation_log(db, limit=limit)


def activate(url: str, version: str, *, force: bool, reason: str | None) -> tuple[int, str]:
    """Activate ``version``; returns (exit status, what to print). 1 when the gate refused."""
    with database(url) as db:
        try:
            out = research.activate_bank(db, version, actor=actor(), force=force, reason=reason)
        except GateRefusedError as error:
            return 1, _gate_text(error.gate) + f"\nerror: {error}"
        except (NotFoundError, ConflictError, ValueError) as error:
            raise AdminError(str(error.args[0]) if error.args else str(error)) from error
    if out["gate"] is None:
        return 0, f"bank {version} is already active"
    head = f"bank {version} is active (previous: {out['gate']['current']['bank'] if out['gate']['current'] else 'none'})"
    if out["forced"]:
        head += f"; the gate's refusal was overridden: {out['reason']}"
    return 0, _gate_text(out["gate"]) + "\n" + head


# ------------------------------------------------------------ test definitions
def _with_citizen_test(db: Database) -> None:
    # A database the CLI created has no shipped citizen test yet (serve stores it).
    from nangluc.service.tests import ensure_citizen_test

    with db.transaction() as conn:
        ensure_citizen_test(conn)


def add_test(url: str, document: dict[str, Any]) -> dict[str, Any]:
    from nangluc.service import tests

    with database(url) as db:
        _with_citizen_test(db)
        try:
            return tests.store_definition(db, document)
        except (ConflictError, ValueError) as error:
            raise AdminError(str(error)) from error


def list_tests(url: str) -> list[dict[str, Any]]:
    from nangluc.service import tests

    with database(url) as db:
        _with_citizen_test(db)
        return tests.list_definitions(db)


def show_test(url: str, name: str, version: str | None) -> dict[str, Any]:
    from nangluc.service import tests

    with database(url) as db:
        _with_citizen_test(db)
        try:
            return tests.definition_info(db, name, version)
        except NotFoundError as error:
            raise AdminError(str(error.args[0])) from error


def activate_test(
    url: str, name: str, version: str, *, default: bool, force: bool, reason: str | None
) -> tuple[int, str]:
    """Activate test ``name`` ``version``; returns (exit status, what to print). 1: refused."""
    from nangluc.service import tests

    with database(url) as db:
        _with_citizen_test(db)
        try:
            out = tests.activate_test(
                db, name, version, actor=actor(), default=default, force=force, reason=reason
            )
        except GateRefusedError as error:
            return 1, _gate_text(error.gate) + f"\nerror: {error}"
        except (NotFoundError, ConflictError, ValueError) as error:
            raise AdminError(str(error.args[0]) if error.args else str(error)) from error
    key = f"{name}@{version}"
    if out["gate"] is None:
        head = f"test {key} is already active"
        return 0, head + ("; it is the city's default test" if out["default"] else "")
    head = f"test {key} is active"
    if out["forced"]:
        head += f"; the gate's refusal was overridden: {out['reason']}"
    if out["default"]:
        head += "; it is the city's default test"
    return 0, _gate_text(out["gate"]) + "\n" + head


def _gate_text(gate: dict[str, Any]) -> str:
    lines = [f"go-live gate: {'passed' if gate['passed'] else 'REFUSED'}"]
    for label in ("candidate", "current"):
        figures = gate.get(label)
        if figures:
            lines.append(
                f"  {label}: {figures['bank']} ({figures['test']}): level accuracy "
                f"{figures['level_accuracy']:.3f}, {figures['mean_items']:.1f} items on average "
                f"(max {figures['max_items']})"
            )
    if gate.get("accuracy_difference") is not None:
        lines.append(
            f"  difference {gate['accuracy_difference']:+.3f} (SE {gate['accuracy_difference_se']:.3f}; "
            f"tolerance -{gate['tolerance']:.3f}; {gate['simulees']:,} simulees)"
        )
    lines += [f"  refused: {r}" for r in gate["reasons"]]
    return "\n".join(lines)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, indent=2)
