"""Scoring a response pattern: ``POST /api/v1/score``.

A paper form, a door-to-door survey or an app's own questions give a set of
answers; this scores them exactly as the end of a test with these answers is
scored (:func:`nangluc.engine.pattern_state`, then the same
:func:`nangluc.service.sessions.result_payload` as a session's result), under
a named test (:func:`nangluc.service.tests.resolve_test`: its bank, restricted
to its areas, its estimator and level rule; a fixed form's items only) or the
city's default test.

Privacy and abuse: scoring reads the bank and nothing else. It stores nothing
(no session, no response, no log line with the pattern; the request log
holds the route and status only), and it never reads what citizens stored,
so no pattern can tell a caller anything about another person's test. Only
live versions (active, or retired after being active) of banks and tests can
be named: drafts stay unseen. A body is limited like every other
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

from nangluc.engine import pattern_state
from nangluc.service.banks import LoadedBank, NotFoundError, UnprocessableError
from nangluc.service.db import BANK, TEST_DEFINITION
from nangluc.service.sessions import result_payload
from nangluc.service.store import Database
from nangluc.service.tests import ResolvedTest, resolve_test

#: Most answers one request may score.
MAX_RESPONSES = 1000
#: Bank and test versions a pattern may be scored on: those that have been live.
LIVE_STATUSES = ("active", "retired")


def scored_pattern(
    loaded: LoadedBank,
    responses: Sequence[tuple[str, int]],
    *,
    test: str | None = None,
    form: Sequence[str] | None = None,
) -> list[tuple[str, int]]:
    """Each (item id, chosen option) as (item id, scored category), checked one by one.

    ``responses`` hold option indices as the answers endpoint takes them;
    keyed items are scored 0/1 with their key, graded items keep the
    category.

    ``loaded`` is the test's bank (restricted to its areas) and ``form`` a
    fixed form's items: an item outside them is refused, as an unknown one.

    Raises
    ------
    UnprocessableError
        An empty pattern, an unknown or repeated item, or an option the item
        does not have, naming the entry (``responses[3].item``).
    """
    on_form = set(form) if form is not None else None
    of = f"test {test} (bank {loaded.version})" if test is not None else f"bank {loaded.version}"
    if not responses:
        raise UnprocessableError("responses: the pattern is empty; give at least one answer")
    if len(responses) > MAX_RESPONSES:
        raise UnprocessableError(
            f"responses: at most {MAX_RESPONSES} answers can be scored at once"
        )
    seen: dict[str, int] = {}
    scored: list[tuple[str, int]] = []
    for position, (item_id, response) in enumerate(responses):
        if item_id not in loaded.bank._index or (on_form is not None and item_id not in on_form):
            raise UnprocessableError(
                f"responses[{position}].item: {item_id!r} is not an item of {of}"
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


def live_test(
    db: Database,
    conn: sa.Connection,
    test: str | None,
    test_version: str | None,
    bank: str | None,
) -> ResolvedTest:
    """The test to score under: named (or the city's default), on its bank or on ``bank``.

    Only versions that have been live (active or retired) can be named.

    Raises
    ------
    NotFoundError
        No such test, test version or bank version, or one that never went
        live (404, naming the field).
    ConflictError
        The test cannot run on the named bank (409).
    """
    if test_version is not None:
        if test is None:
            raise UnprocessableError("test_version: give the test's name too (test)")
        status = conn.execute(
            sa.select(TEST_DEFINITION.c.status).where(
                TEST_DEFINITION.c.name == test, TEST_DEFINITION.c.version == test_version
            )
        ).scalar_one_or_none()
        if status not in LIVE_STATUSES:
            raise NotFoundError(f"test_version: test {test!r} has no live version {test_version!r}")
    try:
        resolved = resolve_test(db, test, test_version, connection=conn)
    except NotFoundError as error:
        raise NotFoundError(f"test: {error}") from None
    if bank is None or bank == resolved.bank_version:
        return resolved
    status = conn.execute(
        sa.select(BANK.c.status).where(BANK.c.version == bank)
    ).scalar_one_or_none()
    if status not in LIVE_STATUSES:
        raise NotFoundError(f"bank: there is no live bank version {bank!r}")
    return db.tests.build(resolved.name, resolved.version, bank, conn)


def score_pattern(
    db: Database,
    responses: Sequence[tuple[str, int]],
    *,
    test: str | None = None,
    test_version: str | None = None,
    bank: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """The result of a response pattern, in the shape of a session's result.

    Parameters
    ----------
    db : Database
        Read for the test and the bank only; nothing is written.
    responses : sequence of (item id, option index)
    test, test_version : str, optional
        A test's name (the city's default test when None) and a version of it
        that has been live (its active version when None). The test's
        estimator scores the pattern, its level rule says what "settled"
        means; only its areas (and a fixed form's items) count.
    bank : str, optional
        A live bank version (the test's bank by default).
    language : str, optional
        ``vi`` (default) or ``en``: the names of levels, areas and advice.

    Returns
    -------
    dict
        ``bank_version``, ``test`` ({"name", "version"}) and the result:
        ``overall``, ``areas``, ``answered``, ``stop_reason`` (``scored``),
        ``settled_by``, ``advice``.
    """
    with db.engine.connect() as conn:
        resolved = live_test(db, conn, test, test_version, bank)
    loaded = resolved.loaded
    scored = scored_pattern(loaded, responses, test=resolved.name, form=resolved.form)
    try:
        state = pattern_state(loaded.bank, scored, config=resolved.config)
    except ValueError as error:  # checked above; kept as a 422, never a 500
        raise UnprocessableError(f"responses: {error}") from None
    return {
        "bank_version": loaded.version,
        "test": {"name": resolved.name, "version": resolved.version},
        **result_payload(loaded, state, resolved.config, language or "vi"),
    }
