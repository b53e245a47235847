"""Persistence: SQLModel tables, the database engine and first-start setup.

Tables
------
``bank_version``  every bank document the service knows, with its lifecycle
                  (draft -> active -> retired); sessions refer to it by version.
``test_session``  one adaptive test: its engine state (JSON), respondent
                  attributes a planner groups by (ward, age group; never a name
                  or ID number), a lock version for optimistic concurrency and,
                  once finished, the result columns the reports read.
``response``      one row per acknowledged answer; unique per (session, seq)
                  and (session, item), so an answer can never be stored twice.

SQLite is the embedded default: WAL journal, ``synchronous=FULL`` (a commit is
on disk before we reply, so SIGKILL loses no acknowledged answer) and
``BEGIN IMMEDIATE`` transactions (writers queue on ``busy_timeout`` instead of
failing when another writer committed first). PostgreSQL is the production
database; its default READ COMMITTED isolation plus ``UPDATE ... WHERE
lock_version = x`` is what lets only one of two concurrent answers win.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import JSON, Column, Field, SQLModel

from nangluc.service.settings import Settings

BANK_STATUSES = ("draft", "active", "retired")
SESSION_STATUSES = ("in_progress", "finished")


def utcnow() -> datetime:
    return datetime.now(UTC)


class BankVersion(SQLModel, table=True):
    """A stored bank document and where it is in its lifecycle."""

    __tablename__ = "bank_version"
    # At most one active version, even when two activations race.
    __table_args__ = (
        sa.Index(
            "uq_bank_version_one_active",
            "status",
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        ),
    )

    version: str = Field(primary_key=True, max_length=200)
    parent: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=16)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    activated: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class TestSession(SQLModel, table=True):
    """One adaptive test in progress or finished."""

    __tablename__ = "test_session"
    __test__ = False  # not a pytest test class

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    bank_version: str = Field(foreign_key="bank_version.version", max_length=200, index=True)
    config: str = Field(max_length=100)
    language: str = Field(max_length=8)
    ward: str | None = Field(default=None, max_length=100, index=True)
    age_group: str | None = Field(default=None, max_length=16, index=True)
    status: str = Field(max_length=16, index=True)
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    answered: int = 0
    lock_version: int = 0
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    finished: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    overall_score: float | None = None
    overall_se: float | None = None
    overall_level: int | None = None
    overall_decided: bool | None = None
    area_scores: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )


class Response(SQLModel, table=True):
    """One acknowledged answer: the option the respondent chose and its score."""

    __tablename__ = "response"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "seq", name="uq_response_session_seq"),
        sa.UniqueConstraint("session_id", "item_id", name="uq_response_session_item"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="test_session.id", index=True)
    seq: int  # 1-based position in the session
    item_id: str = Field(max_length=100)
    response: int  # the option index the client sent
    score: int  # the scored category the engine used (0/1 for keyed items)
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


BANK = BankVersion.__table__
SESSION = TestSession.__table__
RESPONSE = Response.__table__


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off so that we can
    # issue BEGIN IMMEDIATE ourselves (see module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# msgspec is several times faster than the json module for the state column,
# which is written on every answer.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": msgspec.json.decode}


def create_db_engine(settings: Settings) -> Engine:
    """A pooled engine for the settings' database (drivers chosen here).

    Raises
    ------
    ValueError
        If the URL is not a supported database.
    """
    url = sa.make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the service; use a file"
            )
        engine = sa.create_engine(
            url,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
            **_JSON,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(
            url,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            pool_recycle=3600,
            **_JSON,
        )
    raise ValueError(f"unsupported database backend {url.get_backend_name()!r}")


def create_tables(bind: Engine | sa.Connection) -> None:
    """Create missing tables (safe to call on every start)."""
    SQLModel.metadata.create_all(bind, tables=[BANK, SESSION, RESPONSE])


def drop_tables(bind: Engine | sa.Connection) -> None:
    """Drop the service's tables (tests and benchmarks only)."""
    SQLModel.metadata.drop_all(bind, tables=[BANK, SESSION, RESPONSE])
