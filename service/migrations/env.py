"""Alembic environment of the service's database.

The service (``nangluc db upgrade``, ``nangluc serve`` on an empty database)
hands Alembic an open connection in ``config.attributes["connection"]``;
developers running the ``alembic`` command (``alembic.ini`` at the repository
root) give a URL in ``DATABASE_URL`` instead, for example to autogenerate a
revision against a database at the current head.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from nangluc.service.db import metadata
from nangluc.service.settings import sqlalchemy_url


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite alters tables by copying them (ALTER TABLE can do little there).
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (e.g. sqlite:///dev.db) to run alembic on a database")
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
