"""Concurrent answers to one session: exactly one wins, the others get 409."""

# ruff: noqa: F811 - pytest fixtures are imported by name and used as arguments

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from nangluc.service import sessions
from nangluc.service.banks import ConflictError
from nangluc.service.db import RESPONSE, SESSION
from nangluc.service.store import SessionCache
from service_fixtures import client, database_url, fresh_client  # noqa: F401 - fixtures

API = "/api/v1"


def _stored(client, session_id: str) -> tuple[int, int, int, list[str]]:
    sid = uuid.UUID(session_id)
    with client.app.state.db.engine.connect() as conn:
        items = conn.execute(
            sa.select(RESPONSE.c.item_id)
            .where(RESPONSE.c.session_id == sid)
            .order_by(RESPONSE.c.seq)
        ).scalars()
        items = list(items)
        lock, answered = conn.execute(
            sa.select(SESSION.c.lock_version, SESSION.c.answered).where(SESSION.c.id == sid)
        ).one()
    return len(items), lock, answered, items


def test_racing_answers_one_wins(client) -> None:
    """Four clients answer the same current item at once, each with another option.

    (Two equal answers would be a retry of each other, which is answered 200.)
    """
    started = client.post(f"{API}/sessions").json()
    session_id, item = started["session_id"], started["item"]
    for round_ in range(4):
        barrier = threading.Barrier(4)

        def send(option: int, item_id: str = item["id"], barrier: threading.Barrier = barrier):
            barrier.wait(timeout=10)
            return client.post(
                f"{API}/sessions/{session_id}/answers",
                json={"item_id": item_id, "response": option},
            )

        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(send, range(4)))
        codes = sorted(r.status_code for r in replies)
        assert codes == [200] + [409] * 3, [r.text for r in replies]
        winner = next(r for r in replies if r.status_code == 200).json()
        stored, lock, answered, items = _stored(client, session_id)
        assert stored == lock == answered == round_ + 1 == winner["answered"]
        assert items[-1] == item["id"]
        item = winner["item"]
        assert item is not None


def test_stale_writer_loses_on_lock_version(database_url, tmp_path) -> None:
    """Both requests read the same state before either writes: the second UPDATE matches no row.

    On PostgreSQL the two transactions really overlap; on SQLite the write lock
    taken at BEGIN already serialises them, so only PostgreSQL can reach this
    path and the test is PostgreSQL's.
    """
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers at BEGIN IMMEDIATE; no overlap to provoke")
    from service_fixtures import app_client

    with app_client(database_url, tmp_path) as test_client:
        db = test_client.app.state.db
        view = sessions.start_session(db)
        db.sessions = SessionCache(
            size=0
        )  # both must read the row (the cached path is the next test's)
        barrier = threading.Barrier(2)
        real_answer_item = sessions.answer_item

        def answer_item_after_both_read(*args, **kwargs):
            barrier.wait(timeout=10)  # both have read lock_version 0 by now
            return real_answer_item(*args, **kwargs)

        sessions.answer_item = answer_item_after_both_read
        try:

            def send(option: int):
                try:
                    return sessions.answer(db, view.session_id, view.item["id"], option)
                except ConflictError as error:
                    return error

            with ThreadPoolExecutor(2) as pool:
                outcomes = list(pool.map(send, [0, 1]))
        finally:
            sessions.answer_item = real_answer_item
        conflicts = [o for o in outcomes if isinstance(o, ConflictError)]
        wins = [o for o in outcomes if not isinstance(o, ConflictError)]
        assert len(wins) == 1 and len(conflicts) == 1
        assert "at the same time" in str(conflicts[0])
        stored, lock, answered, _ = _stored(test_client, str(view.session_id))
        assert (stored, lock, answered) == (1, 1, 1)


def test_concurrent_sessions_do_not_interfere(client) -> None:
    """Many sessions answered in parallel each keep their own, gap-free sequence."""
    starts = [client.post(f"{API}/sessions").json() for _ in range(6)]

    def run(started: dict) -> int:
        session_id, item = started["session_id"], started["item"]
        for _ in range(5):
            reply = client.post(
                f"{API}/sessions/{session_id}/answers", json={"item_id": item["id"], "response": 0}
            )
            assert reply.status_code == 200, reply.text
            item = reply.json()["item"]
        return 5

    with ThreadPoolExecutor(6) as pool:
        assert sum(pool.map(run, starts)) == 30
    for started in starts:
        stored, lock, answered, _ = _stored(client, started["session_id"])
        assert stored == lock == answered == 5


def test_state_cached_by_another_process_is_never_trusted(database_url, tmp_path) -> None:
    """Two server processes on one database: one answers, the other's cached state is stale."""
    from nangluc.service.settings import Settings
    from nangluc.service.store import Database
    from service_fixtures import bank_dict, write_bank

    bank = write_bank(tmp_path / "bank.json", bank_dict())
    settings = Settings(database_url=database_url, bank_path=str(bank), pool_size=2)
    first, second = Database(settings), Database(settings)
    try:
        first.setup()
        started = sessions.start_session(first)
        item = started.item["id"]
        assert (
            sessions.get_session(second, started.session_id).item["id"] == item
        )  # cached at lock 0
        reply = sessions.answer(first, started.session_id, item, 1)
        # The same answer through the other process: its cache says the item is
        # still current, the stored lock version says otherwise -> a retry.
        again = sessions.answer(second, started.session_id, item, 1)
        assert (again.answered, again.item) == (reply.answered, reply.item)
        with pytest.raises(ConflictError, match="already answered"):
            sessions.answer(second, started.session_id, item, 2)
        following = sessions.answer(second, started.session_id, reply.item["id"], 0)
        assert following.answered == 2
        with first.engine.connect() as conn:
            seqs = (
                conn.execute(
                    sa.select(RESPONSE.c.seq)
                    .where(RESPONSE.c.session_id == started.session_id)
                    .order_by(RESPONSE.c.seq)
                )
                .scalars()
                .all()
            )
        assert seqs == [1, 2]
    finally:
        first.dispose()
        second.dispose()
