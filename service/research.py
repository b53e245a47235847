"""Researcher operations: export responses, calibrate, list and activate bank versions."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from nangluc import items as item_bank
from nangluc.service.banks import (
    ConflictError,
    NotFoundError,
    UnprocessableError,
    refuse_activation,
)
from nangluc.service.db import (
    ACTIVATION,
    BANK,
    RESPONSE,
    SERVICE_KEY,
    SESSION,
    TEST_DEFINITION,
    utcnow,
)
from nangluc.service.store import Database
from nangluc.text import csv_writer

#: Columns of ``responses.csv``: the calibration input (DESIGN §3) plus the
#: attributes a planner groups by and where each answer came from (the bank
#: version, the position in the test, and the test's name and version).
CSV_COLUMNS = (
    "respondent_id",
    "item_id",
    "response",
    "option",
    "ward",
    "age_group",
    "bank_version",
    "seq",
    "test",
    "test_version",
)


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _bank_info(row: sa.Row) -> dict[str, Any]:
    document = row.document
    return {
        "version": row.version,
        "parent": row.parent,
        "status": row.status,
        "document_status": document.get("status") if isinstance(document, dict) else None,
        "items": len(document.get("items", ())) if isinstance(document, dict) else 0,
        "created": _utc(row.created),
        "activated": _utc(row.activated),
    }


def list_banks(db: Database) -> list[dict[str, Any]]:
    """Every stored bank version, newest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BANK).order_by(BANK.c.created.desc(), BANK.c.version)).all()
    return [_bank_info(row) for row in rows]


def bank_document(db: Database, version: str) -> dict[str, Any]:
    """The stored document of bank ``version`` (NotFoundError if absent)."""
    with db.engine.connect() as conn:
        document = conn.execute(
            sa.select(BANK.c.document).where(BANK.c.version == version)
        ).scalar_one_or_none()
    if document is None:
        raise NotFoundError(f"bank version {version!r} does not exist")
    return document


def activate_bank(
    db: Database,
    version: str,
    *,
    actor: str,
    force: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Put ``version`` live through the go-live gate; the previous version is retired.

    The gate (:func:`nangluc.calibration.gate.go_live_gate`) checks the
    version's error-level diagnostics and simulates the citizen test on it and
    on the active version (settings ``gate_simulees``, ``gate_tolerance``).
    A refusal can be overridden only with ``force`` and a ``reason``. Every
    attempt, granted or refused, is written to ``activation_log`` with
    ``actor``. Sessions in progress keep the version they started on.

    Raises
    ------
    NotFoundError
        No such version.
    UnprocessableError
        ``force`` without a reason.
    GateRefusedError
        The gate refused (409; ``.gate`` holds its result).
    ConflictError
        The version does not validate, or the active version changed while
        the gate ran.
    """
    from nangluc.calibration.gate import Deployment, GatePolicy, go_live_gate
    from nangluc.engine import CITIZEN_TEST

    reason = (reason or "").strip() or None
    if force and reason is None:
        raise UnprocessableError("force needs a reason (it is written to the audit log)")
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(BANK).where(BANK.c.version == version)).one_or_none()
        if row is None:
            raise NotFoundError(f"bank version {version!r} does not exist")
        if row.status == "active":
            return {**_bank_info(row), "gate": None, "forced": False, "reason": None}
        try:
            candidate = db.banks.get(version, conn)
        except ValueError as error:
            raise ConflictError(f"bank version {version!r} cannot be activated: {error}") from error
        previous = conn.execute(
            sa.select(BANK.c.version).where(BANK.c.status == "active").limit(1)
        ).scalar_one_or_none()
        current = db.banks.get(previous, conn) if previous is not None else None
        broken, to_derive = tests_broken_by(conn, candidate)
    if broken and not force:
        raise ConflictError(
            f"bank version {version!r} would stop active tests that follow the active bank: "
            + "; ".join(broken)
            + ". Give those tests a version for this bank first, or override with force and a "
            "reason (their sessions would then be refused)."
        )
    policy = GatePolicy(simulees=db.settings.gate_simulees, tolerance=db.settings.gate_tolerance)
    # The simulation takes a second or two: outside any transaction.
    result = go_live_gate(
        Deployment(candidate.document, CITIZEN_TEST),
        Deployment(current.document, CITIZEN_TEST) if current is not None else None,
        policy,
    )
    gate = _plain(result.to_dict())
    log = {"actor": actor, "kind": "bank", "version": version, "previous": previous}
    if not result.passed and not force:
        refuse_activation(
            db,
            log,
            reason=reason,
            gate=gate,
            reasons=result.reasons,
            subject=f"bank version {version!r}",
        )
    # Active tests with Sympson-Hetter rules that follow the active bank get their
    # control parameters on the new version (a simulation each), as activation would.
    derived_tests = [
        (name, test_version, derive_exposure_for(db, name, test_version, candidate))
        for name, test_version in to_derive
    ]
    with db.transaction() as conn:
        active_now = conn.execute(
            sa.select(BANK.c.version).where(BANK.c.status == "active").limit(1)
        ).scalar_one_or_none()
        if active_now != previous:
            raise ConflictError(
                f"the active bank changed from {previous!r} to {active_now!r} while the gate ran; "
                "activate again"
            )
        now = utcnow()
        for name, test_version, derived in derived_tests:
            conn.execute(
                TEST_DEFINITION.update()
                .where(TEST_DEFINITION.c.name == name, TEST_DEFINITION.c.version == test_version)
                .values(derived=derived)
            )
        conn.execute(BANK.update().where(BANK.c.status == "active").values(status="retired"))
        conn.execute(
            BANK.update().where(BANK.c.version == version).values(status="active", activated=now)
        )
        conn.execute(
            ACTIVATION.insert().values(
                **log,
                at=now,
                outcome="activated",
                forced=bool(force and not result.passed),
                reason=reason,
                gate=gate,
            )
        )
        row = conn.execute(sa.select(BANK).where(BANK.c.version == version)).one()
    return {
        **_bank_info(row),
        "gate": gate,
        "forced": bool(force and not result.passed),
        "reason": reason,
    }


def tests_broken_by(conn: sa.Connection, candidate: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """Active test definitions that follow the active bank, checked against bank ``candidate``.

    Returns what could not run on it (a fixed form whose items the new
    version lacks, areas it does not have), each as ``test NAME@VERSION:
    problem``, and the (name, version) of tests whose Sympson–Hetter control
    parameters must be derived on it.
    """
    from nangluc.engine.definition import ACTIVE_BANK, DefinitionError, TestDefinition

    rows = conn.execute(
        sa.select(
            TEST_DEFINITION.c.name,
            TEST_DEFINITION.c.version,
            TEST_DEFINITION.c.document,
            TEST_DEFINITION.c.derived,
        ).where(TEST_DEFINITION.c.status == "active")
    ).all()
    broken: list[str] = []
    to_derive: list[tuple[str, str]] = []
    for row in rows:
        definition = TestDefinition.from_dict(row.document)
        if definition.bank != ACTIVE_BANK:
            continue  # pinned to its own bank version: unaffected
        try:
            view = definition.view(candidate.bank)
            if definition.rules_config().sympson_hetter_rate is not None:
                control = ((row.derived or {}).get("exposure") or {}).get(candidate.version)
                if not control:
                    to_derive.append((row.name, row.version))
                    control = [(i, 1.0) for i in view.item_ids]  # checked with neutral ones
            else:
                control = None
            definition.build(candidate.bank, exposure_control=control)
        except DefinitionError as error:
            broken.append(f"test {definition.key}: " + "; ".join(error.problems))
    return broken, to_derive


def derive_exposure_for(db: Database, name: str, version: str, loaded: Any) -> dict[str, Any]:
    """The test's ``derived`` with Sympson–Hetter control parameters added for bank ``loaded``."""
    from nangluc.service.tests import _derive_exposure

    definition = db.tests.definition(name, version)
    derived = db.tests.derived(name, version)
    exposure = dict(derived.get("exposure") or {})
    exposure[loaded.version] = _derive_exposure(definition, loaded, db.settings.gate_simulees)
    return _plain({**derived, "exposure": exposure})


def activation_log(db: Database, *, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` entries of the activation audit log, newest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ACTIVATION).order_by(ACTIVATION.c.id.desc()).limit(limit)
        ).all()
    return [
        {
            "id": row.id,
            "at": _utc(row.at),
            "actor": row.actor,
            "kind": row.kind,
            "version": row.version,
            "previous": row.previous,
            "outcome": row.outcome,
            "forced": row.forced,
            "reason": row.reason,
            "gate": row.gate,
        }
        for row in rows
    ]


def store_bank(db: Database, document: dict[str, Any]) -> dict[str, Any]:
    """Store a bank document (a calibrated file) as a new draft version; 409 if the id exists."""
    try:
        bank = item_bank.bank_from_dict(document)
    except ValueError as error:
        raise UnprocessableError(f"not a valid bank: {error}") from error
    with db.transaction() as conn:
        if conn.execute(sa.select(BANK.c.version).where(BANK.c.version == bank.version)).first():
            raise ConflictError(f"bank version {bank.version!r} exists already")
        conn.execute(
            BANK.insert().values(
                version=bank.version,
                parent=bank.parent,
                status="draft",
                document=bank.to_dict(),
                created=utcnow(),
                activated=None,
            )
        )
        row = conn.execute(sa.select(BANK).where(BANK.c.version == bank.version)).one()
    return _bank_info(row)


def _response_query() -> sa.Select:
    return (
        sa.select(
            RESPONSE.c.session_id,
            RESPONSE.c.item_id,
            RESPONSE.c.score,
            RESPONSE.c.response,
            SESSION.c.ward,
            SESSION.c.age_group,
            SESSION.c.bank_version,
            RESPONSE.c.seq,
            SESSION.c.test_name,
            SESSION.c.test_version,
        )
        .join(SESSION, SESSION.c.id == RESPONSE.c.session_id)
        .order_by(SESSION.c.created, RESPONSE.c.session_id, RESPONSE.c.seq)
    )


#: Name of the key (table ``service_key``) behind export pseudonyms.
RESPONDENT_KEY = "respondent_id"


def respondent_key(conn: sa.Connection) -> bytes:
    """The database's secret key for export pseudonyms (made by migration 0002)."""
    value = conn.execute(
        sa.select(SERVICE_KEY.c.value).where(SERVICE_KEY.c.name == RESPONDENT_KEY)
    ).scalar_one_or_none()
    if value is None:
        raise RuntimeError(
            "the database has no respondent key; run `nangluc db upgrade` to create it"
        )
    return bytes.fromhex(value)


def respondent_id(key: bytes, session_id: uuid.UUID) -> str:
    """The pseudonym of a session in exports: ``HMAC-SHA256(key, session id)``, 32 hex digits.

    The same session always gets the same pseudonym (exports join), but
    without the key, which never leaves the database, nobody can turn it back
    into the session id that lets a client answer or read a result; it is not
    a UUID, so no session endpoint accepts it either.
    """
    return hmac.new(key, session_id.bytes, hashlib.sha256).hexdigest()[:32]


def response_rows(db: Database, *, batch_size: int = 5000) -> Iterator[tuple]:
    """All stored answers as CSV rows (without the header), streamed in batches.

    ``respondent_id`` is the session's pseudonym (:func:`respondent_id`);
    ``response`` is the scored category the engine used (0/1 for keyed
    multiple choice, the category for graded items), which is what the
    calibration fits; ``option`` is the option index the respondent chose.
    """
    with db.engine.connect() as conn:
        key = respondent_key(conn)
        result = conn.execution_options(yield_per=batch_size).execute(_response_query())
        pseudonyms: dict[uuid.UUID, str] = {}
        for row in result:
            pseudonym = pseudonyms.get(row.session_id)
            if pseudonym is None:  # rows come grouped by session
                pseudonyms.clear()
                pseudonym = pseudonyms[row.session_id] = respondent_id(key, row.session_id)
            yield (
                pseudonym,
                row.item_id,
                row.score,
                row.response,
                row.ward or "",
                row.age_group or "",
                row.bank_version,
                row.seq,
                row.test_name or "",
                row.test_version or "",
            )


def responses_csv(db: Database, *, batch_size: int = 5000) -> Iterator[str]:
    """``responses.csv`` as text chunks: a header line, then one row per answer.

    Every text cell is escaped against formula injection
    (:func:`nangluc.text.escape_cell`): a ward typed as ``=HYPERLINK(...)``
    arrives in the spreadsheet as text.
    """
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(response_rows(db, batch_size=batch_size), start=1):
        writer.writerow(row)
        if count % batch_size == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _stored_responses(db: Database) -> tuple[list[str], list[str], list[int]]:
    """Respondent ids, item ids and scored responses of every stored answer."""
    people: list[str] = []
    item_ids: list[str] = []
    scores: list[int] = []
    for row in response_rows(db):
        people.append(row[0])
        item_ids.append(row[1])
        scores.append(row[2])
    return people, item_ids, scores


def calibrate(
    db: Database,
    *,
    model: str = "auto",
    base_version: str | None = None,
    version: str | None = None,
    prior: str = "default",
    min_responses: int | None = None,
) -> dict[str, Any]:
    """Calibrate the items on the stored responses; store the result as a draft version.

    ``prior`` and ``min_responses`` are those of ``nangluc calibrate``.

    The fit is linked to the scale of ``base_version`` (default: the active
    version), which becomes the new version's parent. Nothing is stored if
    the calibration fails.

    Raises
    ------
    NotFoundError
        ``base_version`` does not exist.
    UnprocessableError
        No or too few responses, items the base bank lacks, or a result that
        does not validate (422).
    ConflictError
        A bank with the new version id exists already (409).
    """
    from nangluc import calibration  # heavy (model fits); only researchers need it

    with db.engine.connect() as conn:
        base_version = base_version or db.banks.active_version(conn)
        base = db.banks.get(base_version, conn)
    if version is not None:
        with db.engine.connect() as conn:
            if conn.execute(sa.select(BANK.c.version).where(BANK.c.version == version)).first():
                raise ConflictError(
                    f"bank version {version!r} exists already; choose another version id"
                )
    people, item_ids, scores = _stored_responses(db)
    if not people:
        raise UnprocessableError("no responses are stored yet; there is nothing to calibrate")
    try:
        data = calibration.ResponseData.from_arrays(people, item_ids, scores, bank=base.document)
        run = calibration.calibrate_bank(
            data,
            model=model,
            current=base.document,
            version=version,
            priors=calibration.Priors.named(prior),
            min_responses=min_responses or calibration.DEFAULT_MIN_RESPONSES,
        )
        document = item_bank.bank_from_dict(run.document)
    except ValueError as error:  # ResponseDataError, BankError and the fit's own checks
        raise UnprocessableError(f"calibration failed: {error}") from error
    now = utcnow()
    with db.transaction() as conn:
        exists = conn.execute(
            sa.select(BANK.c.version).where(BANK.c.version == document.version)
        ).first()
        if exists is not None and version is None:
            # a default id clashed (they carry random digits, so this is rare): draw another
            for _ in range(5):
                fresh = calibration.run.default_version(base_version)
                if conn.execute(sa.select(BANK.c.version).where(BANK.c.version == fresh)).first():
                    continue
                document = item_bank.bank_from_dict({**document.to_dict(), "version": fresh})
                exists = None
                break
        if exists is not None:
            raise ConflictError(
                f"bank version {document.version!r} exists already; choose another version id"
            )
        conn.execute(
            BANK.insert().values(
                version=document.version,
                parent=base_version,
                status="draft",
                document=document.to_dict(),
                created=now,
                activated=None,
            )
        )
        row = conn.execute(sa.select(BANK).where(BANK.c.version == document.version)).one()
    severities = [d.severity for d in run.diagnostics]
    return {
        "bank": _bank_info(row),
        "respondents": data.n_respondents,
        "responses": data.n_responses,
        "model": model,
        "summary": _plain(
            {
                "fit": run.fit.to_dict(),
                "linking": [link.to_dict() for link in run.linking],
                "diagnostics": {s: severities.count(s) for s in ("error", "warning", "info")},
                "findings": [d.to_dict() for d in run.diagnostics[:200]],
            }
        ),
    }


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars and arrays as Python values, non-finite numbers as None."""
    import math

    import numpy as np

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        return str(obj)

    def finite(obj: Any) -> Any:
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else None
        if isinstance(obj, dict):
            return {k: finite(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [finite(v) for v in obj]
        return obj

    return finite(json.loads(json.dumps(value, default=default)))
