"""The service's database handle: engine, bank cache, transactions, first start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import items as item_bank
from service.banks import BankStore, ConflictError
from service.db import BANK, create_db_engine, create_tables, utcnow
from service.settings import Settings

logger = logging.getLogger("nangluc.service")

# Any constant works; it only has to be the same in every worker process.
_SETUP_LOCK_ID = 0x6E616E67


class Database:
    """Engine and bank cache of one database, shared by a process's requests.

    Handlers call the functions of :mod:`service.sessions` and friends with
    it; each unit of work runs in :meth:`transaction`, which commits before
    it returns (so a reply is only sent for what is on disk) and turns an
    integrity error into :class:`~service.banks.ConflictError` (HTTP 409).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_db_engine(settings)
        self.banks = BankStore(self.engine)

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError as error:
            raise ConflictError(
                "the request conflicts with stored data (it may have been sent twice)"
            ) from error

    def setup(self) -> None:
        """Create missing tables and store the configured bank (first start).

        The configured bank (``settings.bank_path``, default the shipped bank)
        is inserted if its version is not stored yet, and activated if no
        version is active. Several worker processes may call this at once;
        on PostgreSQL an advisory lock serialises them, on SQLite the
        immediate transaction does.
        """
        document = item_bank.load_bank(self.settings.bank_path)
        with self.engine.begin() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SETUP_LOCK_ID})
            create_tables(conn)
            stored = conn.execute(
                sa.select(BANK.c.version).where(BANK.c.version == document.version)
            ).first()
            active = conn.execute(
                sa.select(BANK.c.version).where(BANK.c.status == "active")
            ).first()
            if stored is None:
                now = utcnow()
                conn.execute(
                    BANK.insert().values(
                        version=document.version,
                        parent=document.parent,
                        status="draft" if active else "active",
                        document=document.to_dict(),
                        created=now,
                        activated=None if active else now,
                    )
                )
                logger.info(
                    "stored bank %s (%s)", document.version, "draft" if active else "active"
                )
            elif active is None:
                conn.execute(
                    BANK.update()
                    .where(BANK.c.version == document.version)
                    .values(status="active", activated=utcnow())
                )

    def dispose(self) -> None:
        self.engine.dispose()
