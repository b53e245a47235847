"""``nangluc serve``: run the service with uvicorn."""

from __future__ import annotations

import dataclasses
import logging
import os

import click

from nangluc.service.protocol import PROTOCOL_PATH
from nangluc.service.settings import DEFAULT_DATABASE_URL, Settings


def _safe_url(url: str) -> str:
    """The URL with any password hidden (for messages)."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password to hide worth the risk
        return "<database URL>"


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
    "--access-log/--no-access-log", default=True, show_default=True, help="Log every request."
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
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

    from nangluc.service.store import Database

    try:
        # Every NANGLUC_* setting from the environment; the flags override theirs.
        settings = dataclasses.replace(
            Settings.from_env(), database_url=database_url, bank_path=bank_path
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    # Set the database up once here, so that a bad URL or bank is one clear
    # message and worker processes never race to create tables.
    try:
        db = Database(settings)
        try:
            db.setup()
        finally:
            db.dispose()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise click.ClickException(
            f"cannot use the database {_safe_url(database_url)}: {reason}"
        ) from None
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
    logging.getLogger("nangluc.service").setLevel(log_level.upper())
    # Worker processes (and the HTTP protocol's limits in every process) read
    # the settings from the environment: all of them, hashes only.
    os.environ.update(settings.to_env())
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "http": PROTOCOL_PATH,
        # Idle keep-alive connections are closed after this long.
        "timeout_keep_alive": 5,
    }
    if workers == 1:
        from nangluc.service.app import create_app

        uvicorn.run(create_app(settings), **options)
    else:
        uvicorn.run("nangluc.service.app:create_app", factory=True, workers=workers, **options)


def main() -> None:
    serve(prog_name="python -m nangluc.service")


if __name__ == "__main__":
    main()
