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
``activation_log`` every attempt to activate a bank version: who, when, which
                  version, why, forced or not, and the go-live gate's result.
``service_key``   secrets the service keeps for itself (the export pseudonym key).
``cohort``        a training class's link code (planners make them); tests
                  taken through the link carry the code and before/after.
``report_release`` a differentially private release of planner statistics:
                  the noisy histograms of one period's tests (or of one
                  cohort's), drawn once and kept, so every report of the same
                  data gives the same figures.
``measurement_model`` per bank version and test rules, how observed scores
                  spread around true ones (tabulated by simulation).
``ward_alias``    an administrator's mapping of a ward text that matched no
                  unit of the ward list to a unit.
``test_definition`` every test definition the service knows (name, version,
                  the document, what activation derived from it), with its
                  lifecycle (draft -> active -> retired), one active version
                  per name; sessions record the name and version they run.
``service_setting`` settings an administrator changes while the service runs
                  (``default_test``: the test a session starts without a name).

The schema is built and changed by the Alembic revisions in
``service/migrations`` (:mod:`nangluc.service.migrate`), never by
``create_all``.

SQLite is the embedded default: WAL journal, ``synchronous=FULL`` (a commit is
on disk before we reply, so SIGKILL loses no acknowledged answer) and
``BEGIN IMMEDIATE`` transactions for writers (they queue on ``busy_timeout``
instead of failing when another writer committed first; readers never wait). PostgreSQL is the production
database; its default READ COMMITTED isolation plus ``UPDATE ... WHERE
lock_version = x`` is what lets only one of two concurrent answers win.
"""

from __future__ import annotations

import math
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
TEST_STATUSES = ("draft", "active", "retired")
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
    finished: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True), index=True)
    # The result when the test finished (engine.score_test), for planner reports:
    # levels are the codes of the bank's framework (Đà Nẵng: 1..5; rows finished
    # before that change hold 0..4; reports derive the level from the score),
    # and overall_decided is whether the overall level is settled.
    overall_score: float | None = None
    overall_se: float | None = None
    overall_level: int | None = None
    overall_decided: bool | None = None
    area_scores: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    # Planner releases count, per finished test, the bin (0..9) of its overall
    # score and of each area's score from the area's own answers
    # (service.statistics.encode_bins): one digit each, overall first.
    report_bins: str | None = Field(default=None, max_length=64)
    # A test taken through a training cohort's link: its code and whether it
    # was taken before or after the training ("before" / "after").
    cohort: str | None = Field(default=None, max_length=16, index=True)
    cohort_phase: str | None = Field(default=None, max_length=8)
    # The test definition the session runs (name and version, see test_definition);
    # ``config`` is the engine config name it records in its state.
    test_name: str | None = Field(default=None, max_length=64, index=True)
    test_version: str | None = Field(default=None, max_length=32)


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


class Activation(SQLModel, table=True):
    """Audit log: every attempt to put a bank version live, granted or refused.

    ``actor`` is who asked: ``key:<first 12 hex digits of the admin key's
    SHA-256>`` for the API (never the key), ``cli:<operating-system user>``
    for ``nangluc bank activate``. ``gate`` holds the go-live gate's result
    (:meth:`nangluc.calibration.gate.GateResult.to_dict`).
    """

    __tablename__ = "activation_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    actor: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # "bank" or "test" (version: NAME@VERSION)
    version: str = Field(max_length=200, index=True)
    previous: str | None = Field(default=None, max_length=200)
    outcome: str = Field(max_length=16)  # "activated" | "refused"
    forced: bool = False
    reason: str | None = Field(default=None, max_length=2000)
    gate: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class ServiceKey(SQLModel, table=True):
    """A secret the service made for itself (never sent to a client).

    ``respondent_id``: the HMAC key that turns a session id into the
    pseudonym researchers see in exports (made at random by migration
    ``0002_service_key``).
    """

    __tablename__ = "service_key"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=128)
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class Cohort(SQLModel, table=True):
    """A training class: the code its link carries, a planner's name for it, when it closes.

    Tests are tagged through the link until ``closes``; after that (and a
    short grace) the cohort's tests are released once, together.
    """

    __tablename__ = "cohort"

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=200)
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    closes: datetime = Field(sa_type=sa.DateTime(timezone=True))


class ReportRelease(SQLModel, table=True):
    """One differentially private release of planner statistics (immutable once stored)."""

    __tablename__ = "report_release"

    key: str = Field(primary_key=True, max_length=64)  # "period:2026-Q3", "cohort:K7M2QX"
    kind: str = Field(max_length=16)  # "period" | "cohort"
    start: datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    end: datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    epsilon: float
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class MeasurementModelRow(SQLModel, table=True):
    """A stored :class:`nangluc.simulations.measurement.MeasurementModel`."""

    __tablename__ = "measurement_model"

    bank_version: str = Field(primary_key=True, max_length=200)
    config: str = Field(primary_key=True, max_length=100)
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class WardAlias(SQLModel, table=True):
    """A ward text (by its matching key) an administrator mapped to a unit of the ward list."""

    __tablename__ = "ward_alias"

    key: str = Field(primary_key=True, max_length=200)
    code: str = Field(max_length=64)
    example: str = Field(max_length=100)  # one text as typed, for the admin's list
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class TestDefinitionRow(SQLModel, table=True):
    """A stored test definition (immutable once stored) and where it is in its lifecycle.

    ``document`` is the definition (:meth:`nangluc.engine.TestDefinition.to_dict`);
    ``derived`` what activation derived from it: the Sympson–Hetter control
    parameters of ``sympson-hetter:RATE`` rules (by item id and bank version)
    and the gate's simulated figures (level accuracy, mean length).
    """

    __tablename__ = "test_definition"
    __test__ = False  # not a pytest test class
    # At most one active version of each test, even when two activations race.
    __table_args__ = (
        sa.Index(
            "uq_test_definition_one_active",
            "name",
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        ),
    )

    name: str = Field(primary_key=True, max_length=64)
    version: str = Field(primary_key=True, max_length=32)
    status: str = Field(max_length=16)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    derived: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    activated: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class ServiceSetting(SQLModel, table=True):
    """A setting an administrator changes at run time (``default_test``: a test's name)."""

    __tablename__ = "service_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    updated: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


BANK = BankVersion.__table__
SESSION = TestSession.__table__
RESPONSE = Response.__table__
ACTIVATION = Activation.__table__
SERVICE_KEY = ServiceKey.__table__
COHORT = Cohort.__table__
RELEASE = ReportRelease.__table__
MEASUREMENT_MODEL = MeasurementModelRow.__table__
WARD_ALIAS = WardAlias.__table__
TEST_DEFINITION = TestDefinitionRow.__table__
SERVICE_SETTING = ServiceSetting.__table__
#: The tables the migrations in ``service/migrations`` build (Alembic's target).
metadata = SQLModel.metadata


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is switched off so that we can
        # issue BEGIN IMMEDIATE ourselves (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        # How long a writer queues on another's write lock before "database is
        # locked" (a 503 with Retry-After): the settings' lock_timeout.
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _postgres_timeouts(lock_timeout_ms: int, statement_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Session-level settings: they hold for the pooled connection's life.
        # A row lock (another transaction's SELECT ... FOR UPDATE) is waited
        # for at most lock_timeout; a statement runs at most statement_timeout.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute(f"SET lock_timeout = {lock_timeout_ms:d}")
            dbapi_connection.execute(f"SET statement_timeout = {statement_timeout_ms:d}")
        finally:
            dbapi_connection.autocommit = autocommit

    return on_connect


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock at BEGIN (they queue on the busy timeout
    # instead of failing at their first write); readers begin deferred, so in
    # WAL mode they never wait for a writer.
    if conn.get_execution_options().get(IMMEDIATE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


#: Execution option of a connection that will write (SQLite: ``BEGIN IMMEDIATE``).
IMMEDIATE = "nangluc_immediate"


def is_read_only_error(error: BaseException) -> bool:
    """Whether a database error says the database cannot be written (SQLite's SQLITE_READONLY)."""
    return "readonly database" in str(getattr(error, "orig", None) or error).lower()


def _drop_read_only_connections(context: Any) -> None:
    # SQLite opens a file it may not write read-only and stays so: without
    # this, the pooled connections would refuse every write even after the
    # file is writable again. Treating the error as a disconnect makes the
    # pool open fresh connections on the next request.
    if is_read_only_error(context.original_exception):
        context.is_disconnect = True


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# msgspec is several times faster than the json module for the state column,
# which is written on every answer.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": msgspec.json.decode}


def create_db_engine(settings: Settings) -> Engine:
    """A pooled engine for the settings' database (drivers and timeouts chosen here).

    Every wait is bounded by ``settings.lock_timeout``: a lock (SQLite's
    busy timeout, PostgreSQL's ``lock_timeout``), a free pooled connection
    and, on PostgreSQL, a new connection. PostgreSQL statements are also
    bounded by ``settings.statement_timeout``.

    Raises
    ------
    ValueError
        If the URL is not a supported database.
    """
    url = sa.make_url(settings.sqlalchemy_url)
    lock_ms = max(1, round(settings.lock_timeout * 1000))
    pool = {
        # Errors never carry SQL parameters (a session id next to an answer) into logs.
        "hide_parameters": True,
        "pool_size": settings.pool_size,
        "max_overflow": settings.pool_size,
        "pool_timeout": settings.lock_timeout,
    }
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the service; use a file"
            )
        engine = sa.create_engine(
            url,
            **pool,
            connect_args={"check_same_thread": False, "timeout": settings.lock_timeout},
            **_JSON,
        )
        event.listen(engine, "connect", _sqlite_pragmas(lock_ms))
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _drop_read_only_connections)
        return engine
    if url.get_backend_name() == "postgresql":
        engine = sa.create_engine(
            url,
            **pool,
            pool_recycle=3600,
            connect_args={"connect_timeout": max(1, math.ceil(settings.lock_timeout))},
            **_JSON,
        )
        statement_ms = round(settings.statement_timeout * 1000)
        event.listen(engine, "connect", _postgres_timeouts(lock_ms, statement_ms))
        return engine
    raise ValueError(f"unsupported database backend {url.get_backend_name()!r}")
