"""What the ``nangluc bank`` and ``nangluc test`` commands share: failing, the database option, the service admin."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

#: ``--database-url`` of every command that works on the service's database.
DATABASE_OPTION = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default="sqlite:///nangluc.db",
    show_default=True,
    help="The service's database: sqlite:///FILE.db or postgresql://user@host/db (also DATABASE_URL).",
)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code`` (no traceback)."""
    click.echo(message, err=True)
    sys.exit(code)


def service_admin():
    """:mod:`nangluc.service.admin`; the database-side commands need the service extra (exit 2 names it)."""
    from nangluc.extras import require

    require(
        "service",
        purpose="this command works on the service's database and needs the 'service' extra",
    )
    from nangluc.service import admin

    return admin
