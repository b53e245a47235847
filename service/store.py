"""The service's database handle: engine, bank cache, transactions, first start."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from nangluc import items as item_bank
from nangluc.engine import TestState
from nangluc.service import migrate
from nangluc.service.banks import BankStore, ConflictError
from nangluc.service.db import BANK, IMMEDIATE, create_db_engine, utcnow
from nangluc.service.settings import Settings, safe_url
from nangluc.service.tests import TestStore, ensure_citizen_test

logger = logging.getLogger("nangluc.service")
T = TypeVar("T")

# Any constant works; it only has to be the same in every worker process.
_SETUP_LOCK_ID = 0x6E616E67


@dataclass(frozen=True)
class KnownSession:
    """What an answer needs of a session, as last read or written by this process."""

    bank_version: str
    language: str
    config: str
    lock_version: int
    state: TestState
    test_name: str | None = None
    test_version: str | None = None


class SessionCache:
    """The last known state of recently used sessions, per process (bounded, LRU).

    An answer to the item a cached state expects skips reading the session:
    the ``UPDATE ... WHERE lock_version = x`` that stores it fails if another
    process has moved the session on, and the answer is then redone from the
    database. Every other case (an error, a retry) reads the database first.
    """

    def __init__(self, size: int = 20_000) -> None:
        self._entries: OrderedDict[uuid.UUID, KnownSession] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, session_id: uuid.UUID) -> KnownSession | None:
        with self._lock:
            known = self._entries.get(session_id)
            if known is not None:
                self._entries.move_to_end(session_id)
            return known

    def put(self, session_id: uuid.UUID, known: KnownSession) -> None:
        with self._lock:
            self._entries[session_id] = known
            self._entries.move_to_end(session_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, session_id: uuid.UUID) -> None:
        with self._lock:
            self._entries.pop(session_id, None)


class SessionBusyError(RuntimeError):
    """Another request for the same session did not finish within the lock timeout (503)."""


@dataclass
class _Gate:
    """Requests for one session in this process: one runs, the others wait here."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Database:
    """Engine and bank cache of one database, shared by a process's requests.

    Handlers call the functions of :mod:`nangluc.service.sessions` and friends with
    it; each unit of work runs in :meth:`transaction`, which commits before
    it returns (so a reply is only sent for what is on disk) and turns an
    integrity error into :class:`~nangluc.service.banks.ConflictError` (HTTP 409).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_db_engine(settings)
        self.banks = BankStore(self.engine)
        self.tests = TestStore(self.engine, self.banks)
        self.sessions = SessionCache()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._gates: dict[uuid.UUID, _Gate] = {}

    def _threads(self) -> ThreadPoolExecutor:
        # A few threads: an answer is mostly Python under the interpreter lock,
        # and more threads only hand that lock to each other; a session's
        # requests take one at a time (one_at_a_time), so one locked session
        # leaves the others free. Made on first use, so an app can go through
        # several start/stop cycles (test clients do).
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=min(self.settings.session_threads, 2 * self.settings.pool_size),
                    thread_name_prefix="nangluc-db",
                )
            return self._executor

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(self, *args, **kwargs)``, a short blocking unit of work, in the database threads.

        Never on the event loop: a unit of work that waits for a lock (another
        transaction holding a session's row, another process holding SQLite's
        write lock) then holds up one thread for at most
        ``settings.lock_timeout``, while ``/health`` and every other session
        are answered.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads(), functools.partial(fn, self, *args, **kwargs)
        )

    @asynccontextmanager
    async def one_at_a_time(self, session_id: uuid.UUID) -> AsyncIterator[None]:
        """Let requests for ``session_id`` into the session threads one after another.

        Requests for the same session wait here, on the event loop, instead
        of each taking a session thread to wait on the session's row: one
        session's requests piling up behind a held lock (a retrying app,
        double taps) then keep at most one thread, and the other sessions
        the rest. A request waits at most ``settings.lock_timeout`` here
        (then :class:`SessionBusyError`, a 503 like a lock timeout). Only
        for use on the event loop; other processes are kept apart by the
        database (the session's lock version).
        """
        gate = self._gates.get(session_id)
        if gate is None:
            gate = self._gates[session_id] = _Gate()
        gate.users += 1
        try:
            try:
                async with asyncio.timeout(self.settings.lock_timeout):
                    await gate.lock.acquire()
            except TimeoutError:
                raise SessionBusyError(
                    "database is busy: another request for this session is still running"
                ) from None
            try:
                yield
            finally:
                gate.lock.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[session_id]

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except IntegrityError as error:
            raise ConflictError(
                "the request conflicts with stored data (it may have been sent twice)"
            ) from error

    @contextmanager
    def unit_of_work(self) -> Iterator[sa.Connection]:
        """A connection for one answer or one new session.

        On PostgreSQL it autocommits: each statement the caller runs is
        atomic and on disk when it returns, and the answer path writes with
        one statement, so it needs no BEGIN/COMMIT round trips. On SQLite it
        is :meth:`transaction` (BEGIN IMMEDIATE ... COMMIT).
        """
        if not self.autocommits:
            with self.transaction() as conn:
                yield conn
            return
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
        except IntegrityError as error:
            raise ConflictError(
                "the request conflicts with stored data (it may have been sent twice)"
            ) from error

    @property
    def autocommits(self) -> bool:
        """Whether :meth:`unit_of_work` autocommits (PostgreSQL)."""
        return self.backend == "postgresql"

    @contextmanager
    def schema_transaction(self) -> Iterator[sa.Connection]:
        """A transaction that no other process changing the schema runs beside.

        On PostgreSQL an advisory lock serialises them (several workers start
        at once); on SQLite the immediate transaction does.
        """
        with self.transaction() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SETUP_LOCK_ID})
            yield conn

    def ensure_schema(self) -> None:
        """Create an empty database at the newest migration; refuse an out-of-date one.

        Raises
        ------
        nangluc.service.migrate.SchemaError
            The schema is older (or newer) than this release's; the message
            says what to do (``nangluc db upgrade``).
        """
        with self.schema_transaction() as conn:
            self._ensure_schema(conn)

    def _ensure_schema(self, conn: sa.Connection) -> None:
        state = migrate.schema_state(conn)
        if state.kind == "empty":
            migrate.upgrade(conn)
            logger.info("created the database schema at revision %s", state.head)
        elif not state.ready:
            raise migrate.SchemaError(state.problem(safe_url(self.settings.database_url)))

    def check_ready(self) -> str:
        """The schema revision, after checking that the database answers and is current.

        Raises
        ------
        sqlalchemy.exc.OperationalError
            The database does not answer (503 through the app's handler).
        nangluc.service.migrate.SchemaError
            The schema is not this release's (an older backup restored, a
            newer release migrated it).
        """
        with self.engine.connect() as conn:
            state = migrate.schema_state(conn)
        if not state.ready:
            raise migrate.SchemaError(state.problem("DATABASE_URL"))
        return state.current or state.head

    def setup(self) -> None:
        """Check the schema and store the configured bank (first start).

        An empty database is created at the newest migration; a database at
        an older one (or made by nangluc 0.1.0) is refused with
        :class:`~nangluc.service.migrate.SchemaError`, whose message says to
        run ``nangluc db upgrade``. The configured bank
        (``settings.bank_path``, default the shipped bank) is inserted if its
        version is not stored yet, and activated if no version is active;
        so is the shipped citizen test definition (the default test).
        Several worker processes may call this at once.
        """
        document = item_bank.load_bank(self.settings.bank_path)
        with self.schema_transaction() as conn:
            self._ensure_schema(conn)
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
            ensure_citizen_test(conn)

    def dispose(self) -> None:
        """Stop the threads and close pooled connections (both come back on next use)."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self.engine.dispose()
