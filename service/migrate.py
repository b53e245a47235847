"""Schema migrations of the service's database (Alembic), as the service and ``nangluc db`` use them.

The revisions live in ``service/migrations/versions`` and ship in the package.
A database is in one of these states (:func:`schema_state`):

``empty``    no table of ours: ``nangluc serve`` creates it at the head revision;
``current``  at the head revision: ready;
``behind``   at an older revision: ``nangluc serve`` refuses to start and says to
             run ``nangluc db upgrade``;
``legacy``   created by nangluc 0.1.0 (tables, no migration history): the same;
             ``nangluc db upgrade`` stamps it at the first revision, then upgrades;
``unknown``  at a revision this release does not know (a newer release
             migrated it): refused, nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The revision databases made by nangluc 0.1.0 (``create_all``) are at.
BASELINE = "0001_initial"
#: Tables of nangluc 0.1.0: finding them without a migration history means "legacy".
LEGACY_TABLES = ("bank_version", "test_session", "response")


class SchemaError(RuntimeError):
    """The database's schema is not the one this release runs on; the message says what to do."""


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision this release knows (one head: revisions form a line)."""
    heads = ScriptDirectory.from_config(_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(
            f"the migrations have {len(heads)} heads ({', '.join(heads)}); merge them"
        )
    return heads[0]


@cache
def known_revisions() -> frozenset[str]:
    scripts = ScriptDirectory.from_config(_config()).walk_revisions()
    return frozenset(script.revision for script in scripts)


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands (see the module docstring for ``kind``)."""

    kind: str
    current: str | None
    head: str

    @property
    def ready(self) -> bool:
        return self.kind == "current"

    def problem(self, database: str) -> str:
        """What is wrong and what to do, for an operator."""
        upgrade = f"nangluc db upgrade --database-url {database}"
        if self.kind == "behind":
            return (
                f"the database schema is at revision {self.current}, this release needs "
                f"{self.head}: back up the database, then run `{upgrade}`"
            )
        if self.kind == "legacy":
            return (
                "the database was created by nangluc 0.1.0 and has no migration history: "
                f"back up the database, then run `{upgrade}`"
            )
        if self.kind == "unknown":
            return (
                f"the database schema is at revision {self.current}, which this release does "
                f"not know (its newest is {self.head}): a newer nangluc has migrated it; run "
                "that release or restore a backup"
            )
        return f"the database schema is {self.kind}"


def schema_state(connection: sa.Connection) -> SchemaState:
    """Where the database behind ``connection`` stands (reads only)."""
    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        tables = set(sa.inspect(connection).get_table_names())
        kind = "legacy" if tables & set(LEGACY_TABLES) else "empty"
    elif current == head:
        kind = "current"
    elif current in known_revisions():
        kind = "behind"
    else:
        kind = "unknown"
    return SchemaState(kind=kind, current=current, head=head)


def upgrade(connection: sa.Connection, revision: str = "head") -> SchemaState:
    """Bring the database behind ``connection`` to ``revision`` (default: the head).

    Runs in the caller's transaction (committed by the caller): on SQLite and
    PostgreSQL, DDL is transactional, so a failed upgrade changes nothing.

    Returns
    -------
    SchemaState
        The state before the upgrade.

    Raises
    ------
    SchemaError
        The database is at a revision this release does not know.
    """
    before = schema_state(connection)
    if before.kind == "unknown":
        raise SchemaError(before.problem("..."))
    config = _config(connection)
    if before.kind == "legacy":
        missing = [t for t in LEGACY_TABLES if t not in sa.inspect(connection).get_table_names()]
        if missing:
            raise SchemaError(
                f"the database has some of nangluc 0.1.0's tables but not {', '.join(missing)}; "
                "it was not made by nangluc: restore a backup"
            )
        command.stamp(config, BASELINE)
    command.upgrade(config, revision)
    return before


def downgrade(connection: sa.Connection, revision: str) -> None:
    """Take the database behind ``connection`` back to ``revision`` (``"base"``: no tables).

    For development and tests: a downgrade drops what later revisions added,
    data included.
    """
    command.downgrade(_config(connection), revision)
