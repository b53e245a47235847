"""Scoring a response pattern: ``POST /api/v1/score``.

A paper form, a door-to-door survey or an app's own questions give a set of
answers; this scores them exactly as the end of an adaptive test is scored
(:func:`nangluc.engine.pattern_state`, then the same
:func:`nangluc.service.sessions.result_payload` as a session's result).

Privacy and abuse: scoring reads the bank and nothing else. It stores nothing
(no session, no response, no log line with the pattern; the request log
holds the route and status only), and it never reads what citizens stored,
so no pattern can tell a caller anything about another person's test. Only
live bank versions (active, or retired after being active) can be named:
drafts stay unseen. A body is limited like every other
(``NANGLUC_MAX_BODY_SIZE``, 64 KiB: about 1,500 answers) and to
:data:`MAX_RESPONSES` answers. What it does reveal is what any completed
test reveals slowly: how the bank scores an answer (which option of a
keyed item is right). Keys of a self-assessment are not secret; an operator
who wants them kept from the public serves ``/api/v1/score`` to trusted
callers only (a reverse proxy rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from nangluc.engine import CITIZEN_TEST, TestConfig, pattern_state
from nangluc.service.banks import LoadedBank, NotFoundError, UnprocessableError
from nangluc.service.db import BANK
from nangluc.service.sessions import result_payload
from nangluc.service.store import Database

#: Most answers one request may score.
MAX_RESPONSES = 1000
#: Bank versions a pattern may be scored on: those that have been live.
LIVE_STATUSES = ("active", "retired")


def scored_pattern(
    loaded: LoadedBank, responses: Sequence[tuple[str, int]]
) -> list[tuple[str, int]]:
    """Each (item id, chosen option) as (item id, scored category), checked one by one.

    ``responses`` hold option indices as the answers endpoint takes them;
    keyed items are scored 0/1 with their key, graded items keep the
    category.

    Raises
    ------
    UnprocessableError
        An empty pattern, an unknown or repeated item, or an option the item
        does not have, naming the entry (``responses[3].item``).
    """
    if not responses:
        raise UnprocessableError("responses: the pattern is empty; give at least one answer")
    if len(responses) > MAX_RESPONSES:
        raise UnprocessableError(
            f"responses: at most {MAX_RESPONSES} answers can be scored at once"
        )
    seen: dict[str, int] = {}
    scored: list[tuple[str, int]] = []
    for position, (item_id, response) in enumerate(responses):
        if item_id not in loaded.bank._index:
            raise UnprocessableError(
                f"responses[{position}].item: {item_id!r} is not an item of bank {loaded.version}"
            )
        if item_id in seen:
            raise UnprocessableError(
                f"responses[{position}].item: item {item_id} is answered twice "
                f"(also responses[{seen[item_id]}])"
            )
        seen[item_id] = position
        try:
            category = loaded.document.item(item_id).score_option(response)
        except ValueError as error:
            raise UnprocessableError(f"responses[{position}].response: {error}") from None
        scored.append((item_id, category))
    return scored


def live_bank(db: Database, conn: sa.Connection, version: str | None) -> LoadedBank:
    """The active bank, or the named version if it has been live (404 otherwise)."""
    if version is None:
        return db.banks.get(db.banks.active_version(conn), conn)
    status = conn.execute(
        sa.select(BANK.c.status).where(BANK.c.version == version)
    ).scalar_one_or_none()
    if status not in LIVE_STATUSES:
        raise NotFoundError(f"bank: there is no live bank version {version!r}")
    return db.banks.get(version, conn)


def score_pattern(
    db: Database,
    responses: Sequence[tuple[str, int]],
    *,
    bank: str | None = None,
    config: TestConfig = CITIZEN_TEST,
    language: str = "vi",
) -> dict[str, Any]:
    """The result of a response pattern, in the shape of a session's result.

    Parameters
    ----------
    db : Database
        Read for the bank only; nothing is written.
    responses : sequence of (item id, option index)
    bank : str, optional
        A live bank version; the active one by default.
    config : TestConfig
        The test whose estimator scores the pattern and whose level rule
        says what "settled" means (the citizen test by default).
    language : str
        ``vi`` or ``en``: the names of levels, areas and advice.

    Returns
    -------
    dict
        ``bank_version``, ``test`` and the result: ``overall``, ``areas``,
        ``answered``, ``stop_reason`` (``scored``), ``settled_by``, ``advice``.
    """
    with db.engine.connect() as conn:
        loaded = live_bank(db, conn, bank)
    scored = scored_pattern(loaded, responses)
    try:
        state = pattern_state(loaded.bank, scored, config=config)
    except ValueError as error:  # checked above; kept as a 422, never a 500
        raise UnprocessableError(f"responses: {error}") from None
    return {
        "bank_version": loaded.version,
        "test": config.name,
        **result_payload(loaded, state, config, language),
    }
