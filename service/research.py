"""Researcher operations: export responses, calibrate, list and activate bank versions."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import items as item_bank
from service.banks import ConflictError, NotFoundError
from service.db import BANK, RESPONSE, SESSION, utcnow
from service.store import Database

#: Columns of ``responses.csv``: the calibration input (DESIGN §3) plus the
#: attributes a planner groups by and where each answer came from.
CSV_COLUMNS = (
    "respondent_id",
    "item_id",
    "response",
    "option",
    "ward",
    "age_group",
    "bank_version",
    "seq",
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


def activate_bank(db: Database, version: str) -> dict[str, Any]:
    """Make ``version`` the bank new sessions start on; the previous one is retired.

    Sessions in progress keep the version they started on. The document is
    validated again before it goes live.
    """
    with db.transaction() as conn:
        row = conn.execute(sa.select(BANK).where(BANK.c.version == version)).one_or_none()
        if row is None:
            raise NotFoundError(f"bank version {version!r} does not exist")
        if row.status != "active":
            try:
                db.banks.get(version, conn)
            except ValueError as error:
                raise ConflictError(
                    f"bank version {version!r} cannot be activated: {error}"
                ) from error
            now = utcnow()
            conn.execute(BANK.update().where(BANK.c.status == "active").values(status="retired"))
            conn.execute(
                BANK.update()
                .where(BANK.c.version == version)
                .values(status="active", activated=now)
            )
        row = conn.execute(sa.select(BANK).where(BANK.c.version == version)).one()
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
        )
        .join(SESSION, SESSION.c.id == RESPONSE.c.session_id)
        .order_by(SESSION.c.created, RESPONSE.c.session_id, RESPONSE.c.seq)
    )


def response_rows(db: Database, *, batch_size: int = 5000) -> Iterator[tuple]:
    """All stored answers as CSV rows (without the header), streamed in batches.

    ``response`` is the scored category the engine used (0/1 for keyed
    multiple choice, the category for graded items), which is what the
    calibration fits; ``option`` is the option index the respondent chose.
    """
    with db.engine.connect() as conn:
        result = conn.execution_options(yield_per=batch_size).execute(_response_query())
        for row in result:
            yield (
                str(row.session_id),
                row.item_id,
                row.score,
                row.response,
                row.ward or "",
                row.age_group or "",
                row.bank_version,
                row.seq,
            )


def responses_csv(db: Database, *, batch_size: int = 5000) -> Iterator[str]:
    """``responses.csv`` as text chunks: a header line, then one row per answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(response_rows(db, batch_size=batch_size), start=1):
        writer.writerow(row)
        if count % batch_size == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def calibrate(
    db: Database,
    *,
    model: str = "auto",
    base_version: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Calibrate the items on the stored responses; store the result as a draft version.

    The fit is linked to the scale of ``base_version`` (default: the active
    version), which becomes the new version's parent. Nothing is stored if
    the calibration fails.

    Raises
    ------
    NotFoundError
        ``base_version`` does not exist.
    ValueError
        Too little data, or the calibration's bank does not validate (422).
    ConflictError
        A bank with the new version id exists already (409).
    """
    import calibration  # heavy (scipy fits); only researchers need it

    with db.engine.connect() as conn:
        base_version = base_version or db.banks.active_version(conn)
        base = db.banks.get(base_version, conn)
    with tempfile.TemporaryDirectory(prefix="nangluc-calibration-") as tmp:
        path = Path(tmp) / "responses.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            for chunk in responses_csv(db):
                handle.write(chunk)
        data = calibration.read_responses(path, bank=base.document)
        run = calibration.calibrate_bank(data, model=model, current=base.document, version=version)
    document = item_bank.bank_from_dict(run.document)  # validates; BankError is a ValueError
    stored = document.to_dict()
    now = utcnow()
    with db.transaction() as conn:
        exists = conn.execute(
            sa.select(BANK.c.version).where(BANK.c.version == document.version)
        ).first()
        if exists is not None:
            raise ConflictError(
                f"bank version {document.version!r} exists already; choose another version id"
            )
        conn.execute(
            BANK.insert().values(
                version=document.version,
                parent=base_version,
                status="draft",
                document=stored,
                created=now,
                activated=None,
            )
        )
        row = conn.execute(sa.select(BANK).where(BANK.c.version == document.version)).one()
    return {
        "bank": _bank_info(row),
        "respondents": _count(data, ("n_respondents", "n_persons")),
        "responses": _count(data, ("n_responses", "n_observations")),
        "model": str(getattr(run, "model", model)),
        "summary": _summary(run),
    }


def _count(data: Any, names: tuple[str, ...]) -> int:
    for name in names:
        value = getattr(data, name, None)
        if value is not None:
            return int(value)
    return -1


def _summary(run: Any) -> dict[str, Any]:
    """A small JSON summary of a calibration run (fit statistics, linking)."""
    out: dict[str, Any] = {}
    for name in ("fit", "linking", "diagnostics"):
        value = getattr(run, name, None)
        if value is None:
            continue
        if hasattr(value, "summary") and callable(value.summary):
            value = value.summary()
        elif hasattr(value, "to_dict") and callable(value.to_dict):
            value = value.to_dict()
        elif hasattr(value, "__dataclass_fields__"):
            value = {k: getattr(value, k) for k in value.__dataclass_fields__}
        out[name] = _jsonable(value)
    return out


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Plain JSON values only: numbers, strings, short lists, nested dicts."""
    import numpy as np

    if depth > 4:
        return None
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.size <= 200 else None
        return _jsonable(value, depth + 1) if value is not None else None
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value[:200]]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k), depth + 1) for k in value.__dataclass_fields__}
    return str(value)
