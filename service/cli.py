"""``nangluc serve``: run the service with uvicorn."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile

import click

from nangluc.service.protocol import PROTOCOL_PATH
from nangluc.service.settings import DEFAULT_DATABASE_URL, LOG_LEVELS, Settings, safe_url


def _database_problem(database_url: str, error: Exception) -> click.ClickException:
    """A clear message for a database that cannot be used (no traceback)."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return click.ClickException(f"cannot use the database {safe_url(database_url)}: {reason}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///FILE.db or postgresql://user@host/db (also DATABASE_URL).",
)
@click.option(
    "--bank",
    "bank_path",
    envvar="NANGLUC_BANK",
    type=click.Path(dir_okay=False),
    default=None,
    help="Bank file stored (and activated if none is) on first start; default: the shipped bank.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (they share the database; use PostgreSQL for more than one).",
)
@click.option(
    "--access-log/--no-access-log",
    envvar="NANGLUC_REQUEST_LOG",
    default=True,
    show_default=True,
    help="Log every request as a JSON line: route, status, duration; never a session id (also NANGLUC_REQUEST_LOG).",
)
@click.option(
    "--log-level",
    envvar="NANGLUC_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(list(LOG_LEVELS)),
    help="Level of the service's log (also NANGLUC_LOG_LEVEL).",
)
def serve(
    host: str,
    port: int,
    database_url: str,
    bank_path: str | None,
    workers: int,
    access_log: bool,
    log_level: str,
) -> None:
    """Serve the HTTP API and the citizen pages.

    Researcher keys come from the environment: NANGLUC_ADMIN_KEY (plain
    keys, comma-separated; hashed at start) or NANGLUC_ADMIN_KEYS (SHA-256
    hex digests). Only the digests are kept.
    """
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from nangluc.service.migrate import SchemaError
    from nangluc.service.store import Database

    try:
        # Every NANGLUC_* setting from the environment; the flags override theirs.
        settings = dataclasses.replace(
            Settings.from_env(),
            database_url=database_url,
            bank_path=bank_path,
            request_log=access_log,
            log_level=log_level,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    # Set the database up once here, so that a bad URL, bank or schema is one
    # clear message and worker processes never race to create tables.
    try:
        db = Database(settings)
        try:
            db.setup()
        finally:
            db.dispose()
    except SQLAlchemyError as error:
        raise _database_problem(database_url, error) from None
    except SchemaError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:  # includes items.BankError
        raise click.ClickException(str(error)) from None
    if workers > 1 and db.backend == "sqlite":
        click.echo(
            "note: several workers on one SQLite file queue on its write lock; PostgreSQL scales better",
            err=True,
        )
    if not settings.admin_key_hashes:
        click.echo(
            "note: no admin key configured (NANGLUC_ADMIN_KEY); researcher endpoints refuse every request",
            err=True,
        )
    # Worker processes (and the HTTP protocol's limits in every process) read
    # the settings from the environment: all of them, hashes only.
    os.environ.update(settings.to_env())
    metrics_dir = None
    if settings.metrics and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its counts here; /metrics on any of them sums all.
        metrics_dir = tempfile.mkdtemp(prefix="nangluc-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        # Our own request log replaces uvicorn's, which writes paths (session ids).
        "access_log": False,
        "http": PROTOCOL_PATH,
        # Idle keep-alive connections are closed after this long.
        "timeout_keep_alive": 5,
    }
    try:
        if workers == 1:
            from nangluc.service.app import serve_app

            uvicorn.run(serve_app(settings), **options)
        else:
            from nangluc.service.workers import run_workers

            config = uvicorn.Config(
                "nangluc.service.app:serve_app", factory=True, workers=workers, **options
            )
            with contextlib.suppress(KeyboardInterrupt):
                run_workers(config, host, port)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


DATABASE_URL_OPTION = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///FILE.db or postgresql://user@host/db (also DATABASE_URL).",
)


@click.group("db")
def db() -> None:
    """Upgrade or inspect the schema of the service's database.

    Back up the database before an upgrade. `nangluc serve` creates an empty
    database at the newest revision and refuses to run on an older one.
    """


def _open(database_url: str):  # noqa: ANN202 - the service's Database, imported lazily
    from nangluc.service.store import Database

    try:
        settings = dataclasses.replace(Settings.from_env(), database_url=database_url)
        return Database(settings)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


@db.command("upgrade")
@DATABASE_URL_OPTION
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
def db_upgrade(database_url: str, revision: str) -> None:
    """Upgrade the database schema in place (sessions and answers are kept)."""
    from sqlalchemy.exc import SQLAlchemyError

    from nangluc.service import migrate

    database = _open(database_url)
    try:
        with database.schema_transaction() as conn:
            before = migrate.upgrade(conn, revision)
            after = migrate.schema_state(conn)
    except SQLAlchemyError as error:
        raise _database_problem(database_url, error) from None
    except migrate.SchemaError as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:  # an unknown --revision (alembic's CommandError, KeyError)
        raise click.ClickException(f"cannot upgrade to {revision!r}: {error}") from None
    finally:
        database.dispose()
    if before.current == after.current:
        click.echo(f"{safe_url(database_url)}: already at revision {after.current}")
    else:
        start = before.current or ("nangluc 0.1.0" if before.kind == "legacy" else "empty")
        click.echo(f"{safe_url(database_url)}: upgraded from {start} to {after.current}")


@db.command("status")
@DATABASE_URL_OPTION
def db_status(database_url: str) -> None:
    """Print the schema revision; exit 1 if `nangluc serve` would refuse the database."""
    from sqlalchemy.exc import SQLAlchemyError

    from nangluc.service import migrate

    database = _open(database_url)
    try:
        with database.engine.connect() as conn:
            state = migrate.schema_state(conn)
    except SQLAlchemyError as error:
        raise _database_problem(database_url, error) from None
    finally:
        database.dispose()
    click.echo(f"revision: {state.current or '-'} ({state.kind}); newest: {state.head}")
    if state.kind not in ("current", "empty"):
        raise click.ClickException(state.problem(safe_url(database_url)))


def main() -> None:
    serve(prog_name="python -m nangluc.service")


if __name__ == "__main__":
    main()
