"""Test sessions: start, resume, answer, result — the units of work behind the API.

Each function runs one short transaction and commits before it returns, so
whatever a caller acknowledges to a client is on disk. They are plain
functions of a :class:`~nangluc.service.store.Database`, usable from the HTTP
handlers and the citizen pages alike.

Answers are checked before anything is written: the item must be the
session's current item (else 409), the response one of its options (else
422). Re-sending the last answer unchanged (a client retry) returns the same
reply and stores nothing. Two answers racing on one session both read lock
version ``x``; only one ``UPDATE ... WHERE lock_version = x`` matches a row,
the other gets 409.

The hot path is short: each process remembers the last state of recent
sessions (:class:`~nangluc.service.store.SessionCache`), so an answer to the expected
item skips reading the session; the lock version check catches a state
another process moved on, and the answer is then redone from the database.
On PostgreSQL the session update and the response insert are one
autocommitted statement (one round trip, atomic, durable on return).
"""

from __future__ import annotations

import functools
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from nangluc.engine import (
    FixedForm,
    Scale,
    TestConfig,
    TestState,
    advise,
    answer_item,
    score_test,
    start_test,
)
from nangluc.service.advice import advice_payload
from nangluc.service.banks import (
    LANGUAGES,
    ConflictError,
    LoadedBank,
    NotFoundError,
    UnprocessableError,
)
from nangluc.service.db import COHORT, RESPONSE, SESSION, utcnow
from nangluc.service.progress import estimated_progress
from nangluc.service.statistics import encode_bins, observed_scores
from nangluc.service.store import Database, KnownSession
from nangluc.service.tests import resolve_test, session_runtime
from nangluc.text import clean_label

IN_PROGRESS = "in_progress"
FINISHED = "finished"


@dataclass(frozen=True)
class SessionView:
    """What a client sees of a session: status, progress and the current item."""

    session_id: uuid.UUID
    status: str
    answered: int
    item: dict[str, Any] | None
    language: str
    max_items: int
    #: True when this call stored an answer (not a retry's replay).
    recorded: bool = False
    #: Estimated share of the test done (None when unknown; see service.progress).
    progress: float | None = None
    #: The test the session runs: {"name", "version"} (None for sessions older than tests).
    test: dict[str, str] | None = None


def _language(language: str | None, default: str) -> str:
    if language is None:
        return default
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return language


def _view(
    session_id: uuid.UUID,
    loaded: LoadedBank,
    state: TestState,
    language: str,
    config: TestConfig,
    test: dict[str, str] | None = None,
) -> SessionView:
    form = isinstance(config.selector, FixedForm)
    return SessionView(
        session_id=session_id,
        status=FINISHED if state.finished else IN_PROGRESS,
        answered=state.answered,
        item=loaded.item_payload(state.next_item, language),
        language=language,
        max_items=config.max_items,
        # A fixed form's length is known: its progress is exact.
        progress=(
            (1.0 if state.finished else state.answered / config.max_items)
            if form
            else estimated_progress(state)
        ),
        test=test,
    )


def _test_of(name: str | None, version: str | None) -> dict[str, str] | None:
    return {"name": name, "version": version} if name is not None else None


def start_session(
    db: Database,
    *,
    language: str | None = None,
    ward: str | None = None,
    age_group: str | None = None,
    cohort: str | None = None,
    phase: str | None = None,
    test: str | None = None,
    seed: int | None = None,
) -> SessionView:
    """Start test ``test`` (the city's default when None) and return its first item.

    The test's active version runs on its bank version (the active one,
    unless the definition names one), restricted to its areas; the session
    records the test's name and version and finishes under them. ``language``
    defaults to Vietnamese, or the test's first language if it is not
    offered in Vietnamese.

    Only attributes a planner groups by are stored (ward, age group, and the
    training cohort's code with ``before``/``after`` when the test is taken
    through a cohort's link); the service never asks for a name or an ID
    number.

    Raises
    ------
    NotFoundError
        No cohort has that code, or no test has that name (404).
    ConflictError
        The cohort has closed (409).
    UnprocessableError
        The test is not offered in ``language`` (422).
    """
    if language is not None:
        language = _language(language, "vi")
    ward = clean_label(ward, what="ward") if ward is not None else None
    seed = secrets.randbits(62) if seed is None else seed
    session_id = uuid.uuid4()
    with db.unit_of_work() as conn:
        if cohort is not None or phase is not None:
            cohort, phase = _check_cohort(conn, cohort, phase)
        resolved = resolve_test(db, test, connection=conn)
        offered = resolved.definition.languages
        if language is None:
            language = "vi" if "vi" in offered else offered[0]
        elif language not in offered:
            raise UnprocessableError(
                f"test {resolved.name!r} is offered in {', '.join(offered)}, not {language}"
            )
        loaded, config, version = resolved.loaded, resolved.config, resolved.bank_version
        state = start_test(loaded.bank, config, seed=seed)
        now = utcnow()
        # A bank with nothing to ask finishes at once; it still gets a result.
        result = (
            _result_columns(loaded, state, config) | {"finished": now} if state.finished else {}
        )
        conn.execute(
            _INSERT_SESSION,
            {
                **result,
                "id": session_id,
                "bank_version": version,
                "config": config.name,
                "test_name": resolved.name,
                "test_version": resolved.version,
                "language": language,
                "ward": ward,
                "age_group": age_group,
                "cohort": cohort,
                "cohort_phase": phase,
                "status": FINISHED if state.finished else IN_PROGRESS,
                "state": state.to_json(),
                "answered": 0,
                "lock_version": 0,
                "created": now,
                "updated": now,
            },
        )
    db.sessions.put(
        session_id,
        KnownSession(version, language, config.name, 0, state, resolved.name, resolved.version),
    )
    return _view(
        session_id, loaded, state, language, config, _test_of(resolved.name, resolved.version)
    )


COHORT_PHASES = ("before", "after")


def _check_cohort(conn: sa.Connection, code: str | None, phase: str | None) -> tuple[str, str]:
    if code is None or phase not in COHORT_PHASES:
        raise ValueError(
            "a test taken for a cohort needs its code and the phase 'before' or 'after', got "
            f"{code!r} and {phase!r}"
        )
    code = code.strip().upper()
    closes = conn.execute(sa.select(COHORT.c.closes).where(COHORT.c.code == code)).scalar()
    if closes is None:
        raise NotFoundError(f"there is no training cohort with code {code!r}")
    if _aware(closes) <= utcnow():
        raise ConflictError(f"the training cohort {code} has closed; its link no longer counts")
    return code, phase


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# The answer path runs these on every request: built once, so SQLAlchemy only
# binds values (building statements was a large share of an answer's CPU time).
_SELECT_SESSION = sa.select(
    SESSION.c.bank_version,
    SESSION.c.language,
    SESSION.c.state,
    SESSION.c.lock_version,
    SESSION.c.config,
    SESSION.c.test_name,
    SESSION.c.test_version,
).where(SESSION.c.id == sa.bindparam("sid"))
_UPDATE_STATE = (
    SESSION.update()
    .where(
        SESSION.c.id == sa.bindparam("sid"), SESSION.c.lock_version == sa.bindparam("expected_lock")
    )
    .values(
        state=sa.bindparam("new_state"),
        answered=sa.bindparam("new_answered"),
        lock_version=sa.bindparam("new_lock"),
        updated=sa.bindparam("now"),
    )
)
_INSERT_RESPONSE = RESPONSE.insert()


def _answer_statement(extra: dict[str, Any] | None = None) -> sa.Insert:
    """One PostgreSQL statement that moves the session on and stores the answer.

    ``WITH moved AS (UPDATE test_session ... WHERE id = :sid AND lock_version
    = :expected_lock RETURNING id) INSERT INTO response SELECT ... FROM
    moved``: atomic on its own, and it inserts no row when the lock version
    no longer matches. ``extra`` are further session columns (the result
    columns of the final answer).
    """
    moved = (
        SESSION.update()
        .where(
            SESSION.c.id == sa.bindparam("sid"),
            SESSION.c.lock_version == sa.bindparam("expected_lock"),
        )
        .values(
            state=sa.bindparam("new_state", type_=SESSION.c.state.type),
            answered=sa.bindparam("new_answered", type_=sa.Integer),
            lock_version=sa.bindparam("new_lock", type_=sa.Integer),
            updated=sa.bindparam("now", type_=SESSION.c.updated.type),
            **(extra or {}),
        )
        .returning(SESSION.c.id)
        .cte("moved")
    )
    return (
        RESPONSE.insert()
        .from_select(
            ["session_id", "seq", "item_id", "response", "score", "created"],
            sa.select(
                moved.c.id,
                sa.bindparam("new_answered", type_=sa.Integer),
                sa.bindparam("item_id", type_=sa.String),
                sa.bindparam("response", type_=sa.Integer),
                sa.bindparam("score", type_=sa.Integer),
                sa.bindparam("now", type_=SESSION.c.updated.type),
            ),
        )
        .returning(RESPONSE.c.seq)
    )  # a row back means stored (rowcount is not reported here)


_ANSWER_PG = _answer_statement()
_SET = "set_"  # prefix of the bound values of a finishing answer's result columns


@functools.lru_cache(maxsize=16)
def _finishing(columns: tuple[str, ...], postgres: bool) -> sa.Executable:
    """The answer statement that also sets session ``columns`` (bound as ``set_<column>``).

    Built once per set of columns: building and caching a statement per
    finishing answer cost about as much as the rest of the answer.
    """
    extra = {c: sa.bindparam(_SET + c, type_=SESSION.c[c].type) for c in columns}
    return _answer_statement(extra) if postgres else _UPDATE_STATE.values(**extra)


_INSERT_SESSION = SESSION.insert()
_LAST_RESPONSE = sa.select(RESPONSE.c.response).where(
    RESPONSE.c.session_id == sa.bindparam("sid"), RESPONSE.c.seq == sa.bindparam("seq")
)


class _Stale(Exception):
    """The cached state was behind the database (another process answered)."""


def _load(
    db: Database, conn: sa.Connection, session_id: uuid.UUID
) -> tuple[KnownSession, LoadedBank, TestConfig]:
    row = conn.execute(_SELECT_SESSION, {"sid": session_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"session {session_id} does not exist")
    loaded, config = session_runtime(db, row.bank_version, row.config, conn)
    known = KnownSession(
        row.bank_version,
        row.language,
        row.config,
        row.lock_version,
        TestState.from_json(row.state),
        row.test_name,
        row.test_version,
    )
    db.sessions.put(session_id, known)
    return known, loaded, config


def _known_view(
    session_id: uuid.UUID,
    known: KnownSession,
    loaded: LoadedBank,
    config: TestConfig,
    state: TestState,
    language: str,
) -> SessionView:
    test = _test_of(known.test_name, known.test_version)
    return _view(session_id, loaded, state, language, config, test)


def get_session(db: Database, session_id: uuid.UUID, *, language: str | None = None) -> SessionView:
    """The session's status, progress and current item (None when finished)."""
    with db.engine.connect() as conn:
        known, loaded, config = _load(db, conn, session_id)
    language = _language(language, known.language)
    return _known_view(session_id, known, loaded, config, known.state, language)


def answer(
    db: Database, session_id: uuid.UUID, item_id: str, response: int, *, language: str | None = None
) -> SessionView:
    """Record ``response`` (an option index) to the current item ``item_id``.

    Raises
    ------
    NotFoundError
        Unknown session (404).
    ConflictError
        ``item_id`` is not the current item, the test is finished, the last
        item is re-sent with another response, or another answer to this
        session won a race (409).
    InvalidAnswerError
        The response is not one of the item's options (422).
    """
    known = db.sessions.get(session_id)
    if known is not None and known.state.next_item is not None and item_id == known.state.next_item:
        loaded, config = session_runtime(db, known.bank_version, known.config)
        reply_language = _language(language, known.language)  # checked before anything is written
        try:
            with db.unit_of_work() as conn:
                new_state = _record(
                    db, conn, session_id, known, loaded, config, item_id, response, from_cache=True
                )
        except _Stale:
            db.sessions.drop(session_id)
        else:
            db.sessions.put(
                session_id, replace(known, lock_version=known.lock_version + 1, state=new_state)
            )
            view = _known_view(session_id, known, loaded, config, new_state, reply_language)
            return replace(view, recorded=True)

    with db.unit_of_work() as conn:
        known, loaded, config = _load(db, conn, session_id)
        state = known.state
        language = _language(language, known.language)
        if state.next_item is not None and item_id == state.next_item:
            new_state = _record(
                db, conn, session_id, known, loaded, config, item_id, response, from_cache=False
            )
        elif state.administered and item_id == state.administered[-1]:
            last = conn.execute(
                _LAST_RESPONSE, {"sid": session_id, "seq": state.answered}
            ).scalar_one_or_none()
            if last is not None and last == response and not isinstance(response, bool):
                # A retry: the same reply, nothing stored.
                return _known_view(session_id, known, loaded, config, state, language)
            raise ConflictError(f"item {item_id!r} was already answered with another response")
        elif state.finished:
            raise ConflictError("the test is finished; no more answers are taken")
        else:
            raise ConflictError(
                f"item {item_id!r} is not the current item (expected {state.next_item!r})"
            )
    db.sessions.put(
        session_id, replace(known, lock_version=known.lock_version + 1, state=new_state)
    )
    view = _known_view(session_id, known, loaded, config, new_state, language)
    return replace(view, recorded=True)


def _record(
    db: Database,
    conn: sa.Connection,
    session_id: uuid.UUID,
    known: KnownSession,
    loaded: LoadedBank,
    config: TestConfig,
    item_id: str,
    response: int,
    *,
    from_cache: bool,
) -> TestState:
    """Advance the test by one answer and store it (checked against the lock version)."""
    score = loaded.score(item_id, response)
    new_state = answer_item(loaded.bank, config, known.state, item_id, score)
    now = utcnow()
    values = {
        "sid": session_id,
        "expected_lock": known.lock_version,
        "new_state": new_state.to_json(),
        "new_answered": new_state.answered,
        "new_lock": known.lock_version + 1,
        "now": now,
        "item_id": item_id,
        "response": response,
        "score": score,
    }
    if new_state.finished:
        # The final answer also writes the result columns.
        extra = {"status": FINISHED, "finished": now, **_result_columns(loaded, new_state, config)}
        statement = _finishing(tuple(extra), db.autocommits)
        values |= {_SET + column: value for column, value in extra.items()}
    else:
        statement = _ANSWER_PG if db.autocommits else _UPDATE_STATE
    if db.autocommits:
        # One atomic statement.
        stored = conn.execute(statement, values).first() is not None
    else:
        stored = conn.execute(statement, values).rowcount == 1
        if stored:
            conn.execute(
                _INSERT_RESPONSE,
                {
                    "session_id": session_id,
                    "seq": new_state.answered,
                    "item_id": item_id,
                    "response": response,
                    "score": score,
                    "created": now,
                },
            )
    if not stored:
        if from_cache:
            raise _Stale
        raise ConflictError(
            "another answer to this session was recorded at the same time; reload the session"
        )
    return new_state


def _result_columns(loaded: LoadedBank, state: TestState, config: TestConfig) -> dict[str, Any]:
    """The result columns stored when a test finishes (planner reports read them).

    Levels are stored as the bank framework's codes; ``overall_decided``
    holds whether the overall level is settled. The API's result is computed
    from the stored state by the same function, so the two always agree.
    """
    result = score_test(loaded.bank, state, config)
    items = loaded.bank.indices(state.administered) if state.administered else np.zeros(0, int)
    observed_overall, observed_areas = observed_scores(
        loaded.bank, items[None, :], np.asarray(state.responses, dtype=int)[None, :]
    )
    return {
        "report_bins": encode_bins(observed_overall[0], observed_areas[0]),
        "overall_score": result.overall.score,
        "overall_se": result.overall.se,
        "overall_level": result.overall.level,
        "overall_decided": result.overall.settled,
        "area_scores": [
            {
                "area": a.area,
                "score": a.score,
                "se": a.se,
                "level": a.level,
                "probability": a.probability,
                "settled": a.settled,
                "answered": a.answered,
            }
            for a in result.areas
        ],
    }


@dataclass(frozen=True)
class ResultView:
    """A finished session's scores in the asked language."""

    session_id: uuid.UUID
    overall: dict[str, Any]
    areas: list[dict[str, Any]]
    answered: int
    language: str
    stop_reason: str | None
    settled_by: list[dict[str, Any]]
    advice: dict[str, Any]
    #: The test the session ran: {"name", "version"}.
    test: dict[str, str] | None = None


def level_name(scale: Scale, code: int, language: str) -> str:
    """The name in ``language`` of the level with code ``code`` of a bank's framework (``scale``)."""
    return scale.by_code(code).name(language)


_SELECT_RESULT = sa.select(
    SESSION.c.bank_version,
    SESSION.c.language,
    SESSION.c.status,
    SESSION.c.state,
    SESSION.c.config,
    SESSION.c.test_name,
    SESSION.c.test_version,
).where(SESSION.c.id == sa.bindparam("sid"))


def get_result(db: Database, session_id: uuid.UUID, *, language: str | None = None) -> ResultView:
    """Overall and per-area scores of a finished session.

    The result is computed from the stored answers with the test's own rules
    (:func:`nangluc.engine.score_test`), as when the test finished.

    Raises
    ------
    NotFoundError
        Unknown session.
    ConflictError
        The test is not finished yet, or it ran under rules this server does
        not know.
    """
    with db.engine.connect() as conn:
        row = conn.execute(_SELECT_RESULT, {"sid": session_id}).one_or_none()
        if row is None:
            raise NotFoundError(f"session {session_id} does not exist")
        if row.status != FINISHED:
            raise ConflictError("the test is not finished yet; answer the current item first")
        loaded, config = session_runtime(db, row.bank_version, row.config, conn)
    language = _language(language, row.language)
    state = TestState.from_json(row.state)
    payload = result_payload(loaded, state, config, language)
    return ResultView(
        session_id=session_id,
        language=language,
        test=_test_of(row.test_name, row.test_version),
        **payload,
    )


def result_payload(
    loaded: LoadedBank, state: TestState, config: TestConfig, language: str
) -> dict[str, Any]:
    """A finished test's result as the API states it (without the session id).

    Scores, intervals, levels and their probabilities from
    :func:`nangluc.engine.score_test`, advice from :func:`nangluc.engine.advise`,
    names in ``language``. One function for a session's result and for a
    scored response pattern (``POST /api/v1/score``), so the two cannot drift.

    Returns
    -------
    dict
        ``overall``, ``areas``, ``answered``, ``stop_reason``, ``settled_by``
        and ``advice``.
    """
    result = score_test(loaded.bank, state, config)
    advice = advice_payload(loaded, advise(loaded.bank, state, config))

    def described(part) -> dict[str, Any]:
        return {
            "score": part.score,
            "se": part.se,
            "interval": list(part.interval),
            "level": part.level,
            "level_name": level_name(part.scale, part.level, language),
            "probability": part.probability,
            "level_probabilities": [
                {"level": level.code, "probability": p}
                for level, p in zip(part.scale.levels, part.level_probabilities, strict=True)
            ],
            "settled": part.settled,
        }

    areas = [
        {
            "area": a.area,
            "name": loaded.area_name(a.area, language),
            **described(a),
            "answered": a.answered,
        }
        for a in result.areas
    ]
    return {
        "overall": described(result.overall),
        "areas": areas,
        "answered": result.answered,
        "stop_reason": result.stop_reason,
        "settled_by": [dict(rule) for rule in result.settled_by],
        "advice": advice,
    }
