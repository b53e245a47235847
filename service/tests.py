"""Test definitions in the service: stored, activated through the go-live gate, resolved.

A definition (:class:`nangluc.engine.TestDefinition`) is stored once per
name and version and never changes (``test_definition``). Activation runs the
go-live gate of bank activation (:func:`nangluc.calibration.gate.go_live_gate`)
on the definition's own rules, bank and areas: it reports the simulated level
accuracy and mean length first, and refuses (409 with the figures) a version
that measures worse than the active version of the same test, or a bank with
error-level diagnostics. One version of a test is active at a time; the
city's default test (the one a session starts without a name) is the setting
``default_test``.

:func:`resolve_test` turns a name (and optionally a version) into what runs:
the bank the test uses, restricted to its areas, and its engine config. A
session records its test's name and version and its engine config name
(``NAME@VERSION``, or the registered name ``citizen-v2`` for the city's
citizen test), and :func:`session_runtime` rebuilds exactly that test for
every later answer, so a session always finishes under the definition it
started with, whatever is activated meanwhile.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from nangluc.engine import CONFIGS, TestConfig
from nangluc.engine.definition import ACTIVE_BANK, DefinitionError, TestDefinition
from nangluc.service.banks import (
    ConflictError,
    LoadedBank,
    NotFoundError,
    UnprocessableError,
    refuse_activation,
)
from nangluc.service.db import ACTIVATION, BANK, SERVICE_SETTING, TEST_DEFINITION, utcnow

#: ``service_setting`` key of the city's default test (a test name).
DEFAULT_TEST = "default_test"
#: The city's default test until an administrator chooses another (shipped as
#: ``items/data/tests/citizen.toml`` and stored on first start).
CITIZEN_TEST_NAME = "citizen"


@dataclass(frozen=True, eq=False)
class ResolvedTest:
    """A test ready to run: its definition, the bank it uses and its engine config.

    Attributes
    ----------
    definition : TestDefinition
    loaded : LoadedBank
        The bank version the test runs on, restricted to the definition's
        areas (``loaded.bank``); item payloads and option scoring as for any
        bank.
    config : TestConfig
        The engine rules (a fixed form's config gives its items in order).
    """

    definition: TestDefinition
    loaded: LoadedBank
    config: TestConfig

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def version(self) -> str:
        return self.definition.version

    @property
    def bank_version(self) -> str:
        return self.loaded.version

    @property
    def form(self) -> tuple[str, ...] | None:
        """A fixed form's item ids in order (None for an adaptive test)."""
        return self.definition.form.items if self.definition.form is not None else None


class TestStore:
    """Stored definitions and the tests built from them, cached per process (thread-safe).

    Stored versions never change, so a definition, and a test built from it
    on a bank version, are cached for the life of the process.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, engine: sa.Engine, banks: Any) -> None:
        self._engine = engine
        self._banks = banks
        self._definitions: dict[tuple[str, str], TestDefinition] = {}
        self._built: dict[tuple[str, str, str], ResolvedTest] = {}
        self._lock = threading.Lock()

    def definition(
        self, name: str, version: str, connection: sa.Connection | None = None
    ) -> TestDefinition:
        """The stored definition ``name`` ``version`` (NotFoundError if absent)."""
        key = (name, version)
        found = self._definitions.get(key)
        if found is not None:
            return found
        query = sa.select(TEST_DEFINITION.c.document).where(
            TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.version == version
        )
        row = _one(self._engine, connection, query)
        if row is None:
            raise NotFoundError(f"test {name!r} has no version {version!r}")
        definition = TestDefinition.from_dict(row.document)
        with self._lock:
            return self._definitions.setdefault(key, definition)

    def derived(
        self, name: str, version: str, connection: sa.Connection | None = None
    ) -> dict[str, Any]:
        """What activation derived from the definition (read afresh: activation adds to it)."""
        query = sa.select(TEST_DEFINITION.c.derived).where(
            TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.version == version
        )
        row = _one(self._engine, connection, query)
        return dict(row.derived or {}) if row is not None else {}

    def build(
        self,
        name: str,
        version: str,
        bank_version: str,
        connection: sa.Connection | None = None,
    ) -> ResolvedTest:
        """The test ``name`` ``version`` on bank ``bank_version``.

        Raises
        ------
        NotFoundError
            No such definition or bank version.
        ConflictError
            The definition cannot run on that bank (an area or form item it
            lacks), or its exposure control was not derived for it.
        """
        key = (name, version, bank_version)
        built = self._built.get(key)
        if built is not None:
            return built
        definition = self.definition(name, version, connection)
        loaded = self._banks.get(bank_version, connection)
        derived = self.derived(name, version, connection)
        control = (derived.get("exposure") or {}).get(bank_version)
        try:
            view, config = definition.build(
                loaded.bank,
                exposure_control=[tuple(pair) for pair in control] if control else None,
            )
        except DefinitionError as error:
            raise ConflictError(
                f"test {definition.key} cannot run on bank {bank_version}: "
                + "; ".join(error.problems)
                + (
                    " (activate the test again to derive them for this bank)"
                    if "exposure" in "".join(error.problems)
                    else ""
                )
            ) from None
        if view is not loaded.bank:
            loaded = dataclasses.replace(loaded, bank=view)
        resolved = ResolvedTest(definition=definition, loaded=loaded, config=config)
        with self._lock:
            # What is built never changes: the definition, the bank version and
            # the exposure control derived for that bank are all write-once.
            return self._built.setdefault(key, resolved)


def _one(engine: sa.Engine, connection: sa.Connection | None, query: sa.Select) -> Any:
    if connection is not None:
        return connection.execute(query).one_or_none()
    with engine.connect() as conn:
        return conn.execute(query).one_or_none()


# ---------------------------------------------------------------- resolution
def default_test_name(conn: sa.Connection) -> str:
    """The city's default test: the setting ``default_test``, else the citizen test."""
    value = conn.execute(
        sa.select(SERVICE_SETTING.c.value).where(SERVICE_SETTING.c.key == DEFAULT_TEST)
    ).scalar_one_or_none()
    return value or CITIZEN_TEST_NAME


def active_version(conn: sa.Connection, name: str) -> str | None:
    """The active version of test ``name`` (None when it has none)."""
    return conn.execute(
        sa.select(TEST_DEFINITION.c.version).where(
            TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.status == "active"
        )
    ).scalar_one_or_none()


def _active_test_query(named: bool) -> sa.Select:
    """The active version of a test (bound ``name``, else the default test) and the active bank.

    One round trip for what a new session needs; built once, so each start
    only binds values.
    """
    name = (
        sa.bindparam("name", type_=sa.String)
        if named
        else sa.func.coalesce(
            sa.func.nullif(
                sa.select(SERVICE_SETTING.c.value)
                .where(SERVICE_SETTING.c.key == DEFAULT_TEST)
                .scalar_subquery(),
                "",
            ),
            CITIZEN_TEST_NAME,
        )
    )
    active_bank = sa.select(BANK.c.version).where(BANK.c.status == "active").limit(1)
    return sa.select(
        TEST_DEFINITION.c.name,
        TEST_DEFINITION.c.version,
        active_bank.scalar_subquery().label("active_bank"),
    ).where(TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.status == "active")


_ACTIVE_TEST = {named: _active_test_query(named) for named in (False, True)}


def resolve_test(
    db: Any,
    name: str | None = None,
    version: str | None = None,
    *,
    connection: sa.Connection | None = None,
) -> ResolvedTest:
    """What runs for test ``name``: its definition, bank (restricted to its areas) and config.

    Parameters
    ----------
    db : nangluc.service.store.Database
    name : str, optional
        A test's name; None is the city's default test.
    version : str, optional
        A stored version (any status: a paper form of a retired version can
        still be scored); None is the test's active version.
    connection : sqlalchemy.Connection, optional
        Read within this connection (a caller's unit of work).

    Raises
    ------
    NotFoundError
        No test of that name, no such version, or no active version (the
        message names the test).
    ConflictError
        The test cannot run on its bank (see :meth:`TestStore.build`), or no
        bank version is active.
    """
    if connection is None:
        with db.engine.connect() as conn:
            return resolve_test(db, name, version, connection=conn)
    conn = connection
    if version is None:
        # The usual case, a new session of an active test, in one query; the
        # step-by-step lookups below say what is wrong otherwise.
        named = name is not None
        rows = conn.execute(_ACTIVE_TEST[named], {"name": name} if named else {}).all()
        if len(rows) == 1:
            found, found_version, active_bank = rows[0]
            definition = db.tests.definition(found, found_version, conn)
            if definition.bank != ACTIVE_BANK:
                return db.tests.build(found, found_version, definition.bank, conn)
            if active_bank is not None:
                return db.tests.build(found, found_version, active_bank, conn)
    if name is None:
        name = default_test_name(conn)
    if version is None:
        version = active_version(conn, name)
        if version is None:
            exists = conn.execute(
                sa.select(TEST_DEFINITION.c.name).where(TEST_DEFINITION.c.name == name).limit(1)
            ).first()
            if exists is None:
                raise NotFoundError(f"there is no test named {name!r}")
            raise NotFoundError(f"test {name!r} has no active version")
    definition = db.tests.definition(name, version, conn)
    bank_version = (
        db.banks.active_version(conn) if definition.bank == ACTIVE_BANK else definition.bank
    )
    return db.tests.build(name, version, bank_version, conn)


def session_runtime(
    db: Any, bank_version: str, config_name: str, connection: sa.Connection | None = None
) -> tuple[LoadedBank, TestConfig]:
    """The bank view and config a stored session runs under (from its recorded names).

    A registered engine config (``citizen-v2``, ``citizen-v1``) runs on the
    whole bank; any other config name is ``NAME@VERSION`` of a stored
    definition, rebuilt on the session's bank version.

    Raises
    ------
    ConflictError
        The session's rules are neither registered nor a stored definition.
    """
    config = CONFIGS.get(config_name)
    if config is not None:
        return db.banks.get(bank_version, connection), config
    name, at, version = config_name.rpartition("@")
    if not at:
        raise ConflictError(
            f"this session runs under test rules {config_name!r}, which this server does not know"
        )
    try:
        resolved = db.tests.build(name, version, bank_version, connection)
    except NotFoundError:
        raise ConflictError(
            f"this session runs under test {config_name!r}, which this server does not know"
        ) from None
    return resolved.loaded, resolved.config


# ------------------------------------------------------------------ storing
def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _info(row: Any) -> dict[str, Any]:
    document = row.document
    definition = TestDefinition.from_dict(document)
    low, high = definition.length()
    derived = row.derived or {}
    return {
        "name": row.name,
        "version": row.version,
        "status": row.status,
        "kind": definition.kind,
        "title": dict(definition.title),
        "bank": definition.bank,
        "areas": list(definition.areas) if definition.areas is not None else None,
        "languages": list(definition.languages),
        "min_items": low,
        "max_items": high,
        "simulated": derived.get("simulated"),
        "created": _utc(row.created),
        "activated": _utc(row.activated),
    }


def store_definition(db: Any, document: Any) -> dict[str, Any]:
    """Store a definition document as a new draft version.

    Raises
    ------
    UnprocessableError
        The document is not a valid definition (every problem named, 422).
    ConflictError
        That name and version are stored already: a published version never
        changes; give the new one another version (409).
    """
    try:
        definition = TestDefinition.from_dict(document)
    except DefinitionError as error:
        raise UnprocessableError(
            "not a valid test definition: " + "; ".join(error.problems)
        ) from None
    with db.transaction() as conn:
        exists = conn.execute(
            sa.select(TEST_DEFINITION.c.document).where(
                TEST_DEFINITION.c.name == definition.name,
                TEST_DEFINITION.c.version == definition.version,
            )
        ).scalar_one_or_none()
        if exists is not None:
            raise ConflictError(
                f"test {definition.name!r} version {definition.version!r} exists already, and a "
                "stored version never changes; give the changed definition a new version"
            )
        conn.execute(
            TEST_DEFINITION.insert().values(
                name=definition.name,
                version=definition.version,
                status="draft",
                document=definition.to_dict(),
                derived=None,
                created=utcnow(),
                activated=None,
            )
        )
        row = conn.execute(_select(definition.name, definition.version)).one()
    return _info(row)


def _select(name: str, version: str) -> sa.Select:
    return sa.select(TEST_DEFINITION).where(
        TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.version == version
    )


def list_definitions(db: Any) -> list[dict[str, Any]]:
    """Every stored definition, by name, newest version first; with the default marked."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(TEST_DEFINITION).order_by(
                TEST_DEFINITION.c.name, TEST_DEFINITION.c.created.desc()
            )
        ).all()
        default = default_test_name(conn)
    return [
        {**_info(row), "default": row.name == default and row.status == "active"} for row in rows
    ]


def definition_info(db: Any, name: str, version: str | None = None) -> dict[str, Any]:
    """One stored definition (the active version, else the newest): its facts and document."""
    with db.engine.connect() as conn:
        if version is None:
            version = (
                active_version(conn, name)
                or conn.execute(
                    sa.select(TEST_DEFINITION.c.version)
                    .where(TEST_DEFINITION.c.name == name)
                    .order_by(TEST_DEFINITION.c.created.desc())
                    .limit(1)
                ).scalar_one_or_none()
            )
            if version is None:
                raise NotFoundError(f"there is no test named {name!r}")
        row = conn.execute(_select(name, version)).one_or_none()
        if row is None:
            raise NotFoundError(f"test {name!r} has no version {version!r}")
        default = default_test_name(conn)
    return {
        **_info(row),
        "default": row.name == default and row.status == "active",
        "document": row.document,
    }


def public_tests(db: Any, language: str = "vi") -> list[dict[str, Any]]:
    """The tests a citizen or an app may start: every active version, the default first."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(TEST_DEFINITION)
            .where(TEST_DEFINITION.c.status == "active")
            .order_by(TEST_DEFINITION.c.name)
        ).all()
        default = default_test_name(conn)
        active_bank = conn.execute(
            sa.text("SELECT version FROM bank_version WHERE status = 'active'")
        ).scalar_one_or_none()
    out = []
    for row in rows:
        definition = TestDefinition.from_dict(row.document)
        low, high = definition.length()
        simulated = (row.derived or {}).get("simulated") or {}
        bank = active_bank if definition.bank == ACTIVE_BANK else definition.bank
        out.append(
            {
                "name": row.name,
                "version": row.version,
                "default": row.name == default,
                "kind": definition.kind,
                "title": definition.text("title", language),
                "description": definition.text("description", language),
                "intended_use": definition.text("intended_use", language),
                "languages": list(definition.languages),
                "areas": list(definition.areas) if definition.areas is not None else None,
                "bank_version": bank,
                "min_items": low,
                "max_items": high,
                "mean_items": simulated.get("mean_items")
                if simulated.get("bank") == bank
                else None,
            }
        )
    out.sort(key=lambda t: (not t["default"], t["name"]))
    return out


def set_default(db: Any, name: str, conn: sa.Connection | None = None) -> None:
    """Make test ``name`` (which must have an active version) the city's default."""
    if conn is None:
        with db.transaction() as connection:
            return set_default(db, name, connection)
    if active_version(conn, name) is None:
        raise ConflictError(f"test {name!r} has no active version; activate one first")
    now = utcnow()
    updated = conn.execute(
        SERVICE_SETTING.update()
        .where(SERVICE_SETTING.c.key == DEFAULT_TEST)
        .values(value=name, updated=now)
    ).rowcount
    if not updated:
        conn.execute(SERVICE_SETTING.insert().values(key=DEFAULT_TEST, value=name, updated=now))
    return None


# ---------------------------------------------------------------- activation
def _derive_exposure(definition: TestDefinition, loaded: LoadedBank, simulees: int) -> list:
    """Sympson–Hetter control parameters of ``sympson-hetter:RATE`` rules on this bank."""
    from nangluc.simulations.exposure import sympson_hetter_control
    from nangluc.simulations.population import draw_population

    rules = definition.rules_config()
    view = definition.view(loaded.bank)
    theta = draw_population(simulees, view.n_areas, 0.7, np.random.default_rng(20241018))
    calibrated = sympson_hetter_control(
        view,
        rules.config,
        theta,
        np.random.default_rng(20241019),
        max_rate=float(rules.sympson_hetter_rate),
    )
    return [[i, k] for i, k in zip(view.item_ids, calibrated.control, strict=True)]


def activate_test(
    db: Any,
    name: str,
    version: str,
    *,
    actor: str,
    default: bool = False,
    force: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Put test ``name`` ``version`` live through the go-live gate (the previous version retires).

    The gate simulates the test on its bank (restricted to its areas) with
    its own rules and, when another version of the test is active, that
    version too, on the same simulated citizens; it refuses error-level
    diagnostics of the bank and a drop of level accuracy beyond the
    tolerance (settings ``gate_simulees``, ``gate_tolerance``). ``force``
    with a ``reason`` overrides a refusal, as for banks. Every attempt is
    written to ``activation_log`` (``kind`` "test", ``version`` NAME@VERSION).
    Sessions in progress keep the version they started with.

    Returns
    -------
    dict
        The version's facts, ``gate`` (None when it was active already),
        ``level_accuracy`` and ``mean_items`` of the simulation, ``forced``,
        ``reason`` and ``default``.

    Raises
    ------
    NotFoundError
        No such test version (404).
    UnprocessableError
        ``force`` without a reason (422).
    GateRefusedError
        The gate refused (409; ``.gate`` holds the figures).
    ConflictError
        The definition cannot run on its bank, or another activation of the
        test finished while the gate ran (409).
    """
    from nangluc.calibration.gate import Deployment, GatePolicy, go_live_gate

    reason = (reason or "").strip() or None
    if force and reason is None:
        raise UnprocessableError("force needs a reason (it is written to the audit log)")
    with db.engine.connect() as conn:
        row = conn.execute(_select(name, version)).one_or_none()
        if row is None:
            raise NotFoundError(f"test {name!r} has no version {version!r}")
        if row.status == "active":
            if default:
                set_default(db, name)
            return {
                **_info(row),
                "default": default or default_test_name(conn) == name,
                "gate": None,
                "forced": False,
                "reason": None,
            }
        definition = TestDefinition.from_dict(row.document)
        bank_version = (
            db.banks.active_version(conn) if definition.bank == ACTIVE_BANK else definition.bank
        )
        try:
            loaded = db.banks.get(bank_version, conn)
        except NotFoundError:
            raise ConflictError(
                f"test {definition.key} uses bank {bank_version}, which is not stored; "
                "store it first (nangluc bank add)"
            ) from None
        previous = active_version(conn, name)
        current = (
            resolve_test(db, name, previous, connection=conn) if previous is not None else None
        )
    derived = dict(row.derived or {})
    exposure = dict(derived.get("exposure") or {})
    rules = definition.rules_config()
    if rules.sympson_hetter_rate is not None and bank_version not in exposure:
        exposure[bank_version] = _derive_exposure(definition, loaded, db.settings.gate_simulees)
    try:
        view, config = definition.build(loaded.bank, exposure_control=exposure.get(bank_version))
    except DefinitionError as error:
        raise ConflictError(
            f"test {definition.key} cannot run on bank {bank_version}: " + "; ".join(error.problems)
        ) from None
    policy = GatePolicy(simulees=db.settings.gate_simulees, tolerance=db.settings.gate_tolerance)
    result = go_live_gate(
        Deployment(loaded.document, config, view),
        Deployment(current.loaded.document, current.config, current.loaded.bank)
        if current is not None
        else None,
        policy,
    )
    gate = _plain(result.to_dict())
    log = {
        "actor": actor,
        "kind": "test",
        "version": definition.key,
        "previous": f"{name}@{previous}" if previous is not None else None,
    }
    if not result.passed and not force:
        refuse_activation(
            db,
            log,
            reason=reason,
            gate=gate,
            reasons=result.reasons,
            subject=f"test {definition.key}",
        )
    simulated = {
        "bank": bank_version,
        "level_accuracy": result.candidate["level_accuracy"],
        "mean_items": result.candidate["mean_items"],
        "max_items": result.candidate["max_items"],
        "simulees": policy.simulees,
    }
    derived = {**derived, "simulated": simulated}
    if exposure:
        derived["exposure"] = exposure
    with db.transaction() as conn:
        if active_version(conn, name) != previous:
            raise ConflictError(
                f"the active version of test {name!r} changed while the gate ran; activate again"
            )
        now = utcnow()
        conn.execute(
            TEST_DEFINITION.update()
            .where(TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.status == "active")
            .values(status="retired")
        )
        conn.execute(
            TEST_DEFINITION.update()
            .where(TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.version == version)
            .values(status="active", activated=now, derived=_plain(derived))
        )
        forced = bool(force and not result.passed)
        conn.execute(
            ACTIVATION.insert().values(
                **log, at=now, outcome="activated", forced=forced, reason=reason, gate=gate
            )
        )
        if default:
            set_default(db, name, conn)
        row = conn.execute(_select(name, version)).one()
        is_default = default_test_name(conn) == name
    return {
        **_info(row),
        "default": is_default,
        "gate": gate,
        "forced": forced,
        "reason": reason,
    }


def _plain(value: Any) -> Any:
    from nangluc.service.research import _plain as plain

    return plain(value)


def ensure_citizen_test(conn: sa.Connection) -> None:
    """Store the shipped citizen test definition, active and the default, if it is not stored.

    It is the registered citizen-v2 rules, which ran before definitions
    existed, so it goes live without a gate (as the shipped bank does on
    first start).
    """
    from nangluc.items.definitions import CITIZEN_TEST_PATH, read_definition

    definition = read_definition(CITIZEN_TEST_PATH)
    stored = conn.execute(
        sa.select(TEST_DEFINITION.c.status).where(
            TEST_DEFINITION.c.name == definition.name,
            TEST_DEFINITION.c.version == definition.version,
        )
    ).first()
    if stored is not None:
        return
    now = utcnow()
    has_active = active_version(conn, definition.name) is not None
    conn.execute(
        TEST_DEFINITION.insert().values(
            name=definition.name,
            version=definition.version,
            status="draft" if has_active else "active",
            document=definition.to_dict(),
            derived=None,
            created=now,
            activated=None if has_active else now,
        )
    )


__all__ = [
    "CITIZEN_TEST_NAME",
    "DEFAULT_TEST",
    "ResolvedTest",
    "TestStore",
    "activate_test",
    "active_version",
    "default_test_name",
    "definition_info",
    "ensure_citizen_test",
    "list_definitions",
    "public_tests",
    "resolve_test",
    "session_runtime",
    "set_default",
    "store_definition",
]
