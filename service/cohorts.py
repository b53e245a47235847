"""Training cohorts: a link per class that tags the tests taken through it (before / after).

A planner makes a cohort for a training class and hands out its two links,
``/?cohort=CODE&phase=before`` and ``/?cohort=CODE&phase=after``. Tests
started through them carry the code and the phase and nothing else: the
session stays anonymous (no name, no ID number, no link between a person's
before and after tests). When the cohort closes (at the end of its days, or
when the planner closes it) its link stops counting; a day later its tests
are released once, together (:mod:`nangluc.service.releases`).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from nangluc.service.banks import ConflictError, NotFoundError
from nangluc.service.db import COHORT, RELEASE, utcnow
from nangluc.service.releases import COHORT_GRACE, _aware
from nangluc.service.store import Database
from nangluc.text import clean_label

#: Letters and digits nobody confuses when reading a code aloud or off paper
#: (no O/0, I/1/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6


def _info(row: Any, released: set[str], now: datetime) -> dict[str, Any]:
    closes = _aware(row.closes)
    status = (
        "released" if f"cohort:{row.code}" in released else ("open" if closes > now else "closed")
    )
    return {
        "code": row.code,
        "name": row.name,
        "created": _aware(row.created),
        "closes": closes,
        "released_after": closes + COHORT_GRACE,
        "status": status,
        "links": {
            "before": f"/?cohort={row.code}&phase=before",
            "after": f"/?cohort={row.code}&phase=after",
        },
    }


def create_cohort(db: Database, name: str, *, days: int | None = None) -> dict[str, Any]:
    """A new cohort named ``name``, open for ``days`` (default: the settings' cohort_days).

    Raises
    ------
    ValueError
        An empty or invalid name, or days outside 1..the settings' maximum.
    """
    name = clean_label(name, what="cohort name", max_length=200)
    limit = db.settings.cohort_days
    days = limit if days is None else days
    if not 1 <= days <= limit:
        raise ValueError(f"a cohort stays open 1..{limit} days, got {days}")
    now = utcnow()
    for _ in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with db.transaction() as conn:
                conn.execute(
                    COHORT.insert().values(
                        code=code, name=name, created=now, closes=now + timedelta(days=days)
                    )
                )
        except ConflictError:  # the code was taken; draw another
            continue
        return get_cohort(db, code)
    raise ConflictError("could not find a free cohort code; try again")


def get_cohort(db: Database, code: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(COHORT).where(COHORT.c.code == code.upper())).first()
        released = set(conn.execute(sa.select(RELEASE.c.key)).scalars())
    if row is None:
        raise NotFoundError(f"there is no cohort with code {code!r}")
    return _info(row, released, utcnow())


def list_cohorts(db: Database) -> list[dict[str, Any]]:
    """Every cohort, newest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(COHORT).order_by(COHORT.c.created.desc())).all()
        released = set(conn.execute(sa.select(RELEASE.c.key)).scalars())
    now = utcnow()
    return [_info(row, released, now) for row in rows]


def close_cohort(db: Database, code: str) -> dict[str, Any]:
    """Close an open cohort now (its link stops counting; its release follows a day later)."""
    now = utcnow()
    with db.transaction() as conn:
        row = conn.execute(sa.select(COHORT).where(COHORT.c.code == code.upper())).first()
        if row is None:
            raise NotFoundError(f"there is no cohort with code {code!r}")
        if _aware(row.closes) > now:
            conn.execute(COHORT.update().where(COHORT.c.code == row.code).values(closes=now))
    return get_cohort(db, code)
