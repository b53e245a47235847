"""How ``nangluc serve`` runs its workers: connections spread, collector and threads tuned.

Findings (``python -m benchmarks.service_load``, 2026-12-06):

1. With uvicorn's shared listening socket, 64 keep-alive clients were split
   64/0, 43/21 or 32/32 between 2 workers (295, 595 and 649 answers/s): the
   busiest worker, one core under its interpreter lock, set the pace.
2. A full garbage collection stopped a worker for 58–135 ms, the slowest
   answers of a paced run.
3. 16 session threads per worker (as many as pooled connections) handed the
   interpreter lock around more than they worked: 515 answers/s against 692
   and 779 with 4, in alternating runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from nangluc.service.settings import Settings
from nangluc.service.store import Database
from nangluc.service.workers import WorkerListener, reuse_port_supported
from service_fixtures import (
    ROOT,
    ServerProcess,
    bank_dict,
    free_port,
    fresh_database,
    write_bank,
)

pytestmark = pytest.mark.skipif(
    not reuse_port_supported(), reason="workers get their own sockets where SO_REUSEPORT exists"
)


def _listening_pids(port: int) -> list[int]:
    return sorted(
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    )


def _established_per_pid(port: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port and c.pid:
            counts[c.pid] = counts.get(c.pid, 0) + 1
    return counts


def test_each_worker_listens_on_its_own_socket_and_connections_spread(tmp_path: Path) -> None:
    """Finding 1: one shared socket let one worker take every connection."""
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    clients: list[httpx.Client] = []
    with (
        fresh_database("sqlite", tmp_path) as url,
        ServerProcess(url, bank, workers=2) as server,
    ):
        workers = [p.pid for p in psutil.Process(server.process.pid).children(recursive=True)]
        deadline = time.monotonic() + 60  # the first worker answers before the second listens
        while len(listening := _listening_pids(server.port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(listening) == 2 and set(listening) <= set(workers), (listening, workers)
        try:
            for _ in range(64):  # keep-alive connections, as an app's or a proxy's pool
                client = httpx.Client(base_url=server.base, timeout=10)
                assert client.get("/api/v1/health").status_code == 200
                clients.append(client)
            per_worker = _established_per_pid(server.port)
        finally:
            for client in clients:
                client.close()
    assert sum(per_worker.values()) == 64, per_worker
    # The kernel hashes connections over the two sockets: a binomial(64, 1/2)
    # split falls below 16 with probability 3e-5. A shared socket gave 64/0.
    assert len(per_worker) == 2 and min(per_worker.values()) >= 16, per_worker


def test_an_address_in_use_stops_serve_with_a_message(tmp_path: Path) -> None:
    """No worker restart loop when the port is taken by another program."""
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        url = f"sqlite:///{tmp_path / 'busy.db'}"
        done = subprocess.run(
            [sys.executable, "-m", "nangluc", "serve", "--port", str(port), "--workers", "2"]
            + ["--database-url", url, "--log-level", "info"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_worker_listener_binds_a_fresh_socket_where_it_is_unpickled() -> None:
    import pickle

    port = free_port()
    first = pickle.loads(pickle.dumps(WorkerListener("127.0.0.1", port)))
    second = pickle.loads(pickle.dumps(WorkerListener("127.0.0.1", port)))
    try:
        assert isinstance(first, socket.socket) and isinstance(second, socket.socket)
        assert first.fileno() != second.fileno()
        assert first.getsockname() == second.getsockname() == ("127.0.0.1", port)
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        first.close()
        second.close()


def test_a_served_worker_freezes_its_startup_objects_and_switches_often(tmp_path: Path) -> None:
    """Finding 2: the collector walked every startup object on each full collection."""
    script = textwrap.dedent(
        f"""
        import gc, sys
        from litestar.testing import TestClient
        from nangluc.service.app import SWITCH_INTERVAL, create_app, serve_app
        from nangluc.service.settings import Settings
        settings = Settings(database_url="sqlite:///{tmp_path / "w.db"}")
        with TestClient(create_app(settings)):
            plain = (gc.get_freeze_count(), sys.getswitchinterval())
        with TestClient(serve_app(settings)):
            served = (gc.get_freeze_count(), sys.getswitchinterval())
        print(plain[0], plain[1], served[0], served[1], SWITCH_INTERVAL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    plain_frozen, plain_switch, served_frozen, served_switch, wanted = done.stdout.split()
    # The library's app leaves the process alone; the served one tunes it.
    assert int(plain_frozen) == 0 and float(plain_switch) == 0.005
    assert int(served_frozen) > 10_000 and float(served_switch) == float(wanted) < 0.005


def test_session_threads_are_their_own_setting(tmp_path: Path) -> None:
    """Finding 3: the threads were as many as pooled connections (16)."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert Settings().session_threads == 4
    assert Settings.from_env({"NANGLUC_SESSION_THREADS": "2"}).session_threads == 2
    with pytest.raises(ValueError, match="session_threads must be >= 1"):
        Settings(session_threads=0)
    for settings, threads in (
        (Settings(database_url=url), 4),
        (Settings(database_url=url, session_threads=3, pool_size=16), 3),
        # No more threads than the pool can give connections to.
        (Settings(database_url=url, session_threads=8, pool_size=1), 2),
    ):
        db = Database(settings)
        try:
            assert db._threads()._max_workers == threads
        finally:
            db.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_served_workers_run_whole_tests(tmp_path: Path, kind: str) -> None:
    """Both workers answer, whichever socket a client lands on."""
    import numpy as np

    from service_fixtures import run_to_end

    bank = write_bank(tmp_path / "bank.json", bank_dict())
    rng = np.random.default_rng(3)
    with (
        fresh_database(kind, tmp_path) as url,
        ServerProcess(url, bank, workers=2) as server,
    ):
        served = set()
        for _ in range(20):
            with httpx.Client(base_url=server.base, timeout=30) as client:
                reply = client.post("/api/v1/sessions", json={})
                assert reply.status_code == 201, reply.text
                body = reply.json()
                run_to_end(client, body["session_id"], body["item"], rng)
                result = client.get(f"/api/v1/sessions/{body['session_id']}/result")
                assert result.status_code == 200, result.text
                served.update(_established_per_pid(server.port))
        assert len(served) == 2, served  # fresh connections reached both workers


def test_a_sessions_requests_pass_one_at_a_time_and_wait_no_longer_than_the_lock_timeout(
    tmp_path: Path,
) -> None:
    import asyncio
    import uuid

    from nangluc.service.app import database_error_reply
    from nangluc.service.store import SessionBusyError

    db = Database(Settings(database_url=f"sqlite:///{tmp_path / 'g.db'}", lock_timeout=0.2))
    session, other = uuid.uuid4(), uuid.uuid4()
    order: list[str] = []

    async def hold(name: str, session_id: uuid.UUID, seconds: float) -> str:
        try:
            async with db.one_at_a_time(session_id):
                order.append(f"{name} in")
                await asyncio.sleep(seconds)
                order.append(f"{name} out")
            return "done"
        except SessionBusyError as error:
            return str(error)

    async def scenario() -> list[str]:
        first = asyncio.create_task(hold("first", session, 0.5))
        await asyncio.sleep(0.01)
        # The same session waits (and gives up after 0.2 s); another session goes on.
        return await asyncio.gather(first, hold("second", session, 0), hold("other", other, 0))

    try:
        results = asyncio.run(scenario())
    finally:
        db.dispose()
    assert results[0] == "done" and results[2] == "done"
    assert "another request for this session is still running" in results[1]
    assert order == ["first in", "other in", "other out", "first out"]
    assert db._gates == {}  # nothing kept once a session's requests are done
    kind, detail, retry_after = database_error_reply(SessionBusyError(results[1]), 0.2)
    assert kind == "busy" and "busy" in detail and retry_after == 1
