"""A server killed with SIGKILL under load loses no acknowledged answer, and sessions go on.

Runs the real server (``nangluc serve``) as a subprocess on a SQLite file
and on a PostgreSQL schema, answers from several client threads, kills it
with SIGKILL while answers are in flight, restarts it on the same database
and checks every acknowledged answer against the stored rows.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from nangluc.service.db import RESPONSE
from nangluc.service.settings import sqlalchemy_url
from service_fixtures import DATABASES, ServerProcess, bank_dict, fresh_database, write_bank

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 4


def _start(database_url: str, bank: Path) -> ServerProcess:
    return ServerProcess(database_url, bank).wait_ready()


class _Client(threading.Thread):
    """Runs tests one after another and records every acknowledged answer."""

    def __init__(self, base: str, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.rng, self.stop = base, np.random.default_rng(seed), stop
        self.acked: list[tuple[str, int, str, int]] = []  # session, seq, item, option
        self.current: dict[str, tuple[str, int] | None] = {}  # session -> answer in flight

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            try:
                while not self.stop.is_set():
                    started = http.post("/api/v1/sessions").json()
                    session_id, item = started["session_id"], started["item"]
                    while item is not None and not self.stop.is_set():
                        option = int(self.rng.integers(len(item["options"])))
                        self.current[session_id] = (item["id"], option)
                        reply = http.post(
                            f"/api/v1/sessions/{session_id}/answers",
                            json={"item_id": item["id"], "response": option},
                        )
                        assert reply.status_code == 200, reply.text
                        body = reply.json()
                        self.acked.append((session_id, body["answered"], item["id"], option))
                        self.current[session_id] = None
                        item = body["item"]
            except httpx.HTTPError:
                return  # the server was killed


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_sigkill_loses_no_acknowledged_answer(kind: str, tmp_path: Path) -> None:
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    with fresh_database(kind, tmp_path) as url:
        server = _start(url, bank)
        base = server.base
        stop = threading.Event()
        clients = [_Client(base, seed, stop) for seed in range(CLIENTS)]
        try:
            for c in clients:
                c.start()
            deadline = time.monotonic() + 30
            while sum(len(c.acked) for c in clients) < 80 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.stop(signal.SIGKILL)  # mid-flight: clients are still sending
        finally:
            stop.set()
            server.stop(signal.SIGKILL)
        for c in clients:
            c.join(timeout=15)
        acked = [a for c in clients for a in c.acked]
        assert len(acked) >= 80

        # Every acknowledged answer is stored, in its place.
        engine = sa.create_engine(sqlalchemy_url(url))
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        RESPONSE.c.session_id,
                        RESPONSE.c.seq,
                        RESPONSE.c.item_id,
                        RESPONSE.c.response,
                    )
                ).all()
        finally:
            engine.dispose()
        stored = {(str(r.session_id), r.seq, r.item_id, r.response) for r in rows}
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged answers lost"

        # After a restart every session goes on: the answer in flight is re-sent
        # (stored or not, the reply is 200), then the test runs to its end.
        server = _start(url, bank)
        try:
            with httpx.Client(base_url=server.base, timeout=10) as http:
                rng = np.random.default_rng(99)
                in_flight = {sid: pending for c in clients for sid, pending in c.current.items()}
                for session_id, pending in in_flight.items():
                    state = http.get(f"/api/v1/sessions/{session_id}").json()
                    if pending is not None:
                        reply = http.post(
                            f"/api/v1/sessions/{session_id}/answers",
                            json={"item_id": pending[0], "response": pending[1]},
                        )
                        assert reply.status_code == 200, reply.text
                        state = reply.json()
                    item = state["item"]
                    while item is not None:
                        reply = http.post(
                            f"/api/v1/sessions/{session_id}/answers",
                            json={
                                "item_id": item["id"],
                                "response": int(rng.integers(len(item["options"]))),
                            },
                        )
                        assert reply.status_code == 200, reply.text
                        item = reply.json()["item"]
                    assert http.get(f"/api/v1/sessions/{session_id}/result").status_code == 200
        finally:
            server.stop()
