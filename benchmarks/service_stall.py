"""No request waits behind another's database wait (DESIGN §5: health < 100 ms).

Starts ``nangluc serve`` (one worker: the strictest case, one event loop)
on a fresh PostgreSQL schema, or on a SQLite file with ``--sqlite``, and
measures, for ``--seconds`` each:

1. *free*: ``/api/v1/health`` latency and the latency of other sessions'
   requests (answers on PostgreSQL, reads on SQLite, where one write lock
   covers the whole file), with nothing held;
2. *held*: the same while another connection holds a lock the whole time
   (PostgreSQL: ``SELECT ... FOR UPDATE`` on one session's row; SQLite:
   ``BEGIN IMMEDIATE``) and ``--waiters`` clients keep answering the locked
   session (each waits up to the lock timeout and gets 503).

The figure is the last line printed, e.g.::

    while a lock was held: health p99 4.1 ms (max 9.8 ms), other sessions p99 12.0 ms; free: health p99 3.9 ms, other sessions p99 11.2 ms; locked answers: 12 x 503 after 2.0 s

Run: ``python -m benchmarks.service_stall [--sqlite] [--seconds 8] [--waiters 4]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

from benchmarks.service_load import (
    DEFAULT_POSTGRES,
    _free_port,
    _Schema,
    _start_server,
    _stop_server,
)

API = "/api/v1"


@dataclass(frozen=True)
class Latencies:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latencies:
        ms = np.asarray(seconds) * 1000
        if not ms.size:
            return cls(0, float("nan"), float("nan"), float("nan"))
        return cls(
            int(ms.size),
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 99)),
            float(ms.max()),
        )


class _Sessions:
    """Sessions answered one after another by one client (a new one when a test ends)."""

    def __init__(self, http: httpx.Client, rng: np.random.Generator) -> None:
        self.http, self.rng = http, rng
        self.session: dict | None = None

    def step(self, read_only: bool) -> int:
        if read_only:  # reads only: the session is started before any lock is taken
            return self.http.get(f"{API}/sessions/{self.session['session_id']}").status_code
        if self.session is None or self.session["item"] is None:
            self.session = self.http.post(API + "/sessions", json={}).json()
        sid = self.session["session_id"]
        item = self.session["item"]
        reply = self.http.post(
            f"{API}/sessions/{sid}/answers",
            json={"item_id": item["id"], "response": int(self.rng.integers(len(item["options"])))},
        )
        if reply.status_code == 200:
            self.session = {"session_id": sid, "item": reply.json()["item"]}
        return reply.status_code


def _measure(
    base: str, seconds: float, reader: dict | None, seed: int
) -> tuple[Latencies, Latencies]:
    """Health latencies and other sessions' latencies from two clients over ``seconds``.

    ``reader``: a session to read again and again (SQLite), else sessions are
    answered.
    """
    read_only = reader is not None
    health: list[float] = []
    others: list[float] = []
    stop = time.monotonic() + seconds

    def health_loop() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < stop:
                start = time.perf_counter()
                if http.get(API + "/health").status_code == 200:
                    health.append(time.perf_counter() - start)
                time.sleep(0.01)

    def sessions_loop() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            sessions = _Sessions(http, np.random.default_rng(seed))
            sessions.session = reader
            while time.monotonic() < stop:
                start = time.perf_counter()
                if sessions.step(read_only) == 200:
                    others.append(time.perf_counter() - start)
                time.sleep(0.01)

    threads = [threading.Thread(target=health_loop), threading.Thread(target=sessions_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Latencies.of(health), Latencies.of(others)


@dataclass(frozen=True)
class StallResult:
    database: str
    lock_seconds: float
    free_health: Latencies
    free_others: Latencies
    held_health: Latencies
    held_others: Latencies
    locked_replies: dict[str, int]
    locked_wait_s: float

    def line(self) -> str:
        return (
            f"while a lock was held ({self.database}): health p99 {self.held_health.p99_ms:.1f} ms "
            f"(max {self.held_health.max_ms:.1f} ms), other sessions p99 "
            f"{self.held_others.p99_ms:.1f} ms; free: health p99 {self.free_health.p99_ms:.1f} ms, "
            f"other sessions p99 {self.free_others.p99_ms:.1f} ms; locked session: "
            + ", ".join(f"{n} x {code}" for code, n in sorted(self.locked_replies.items()))
            + f" after {self.locked_wait_s:.1f} s on average"
        )


def run(*, sqlite: bool, seconds: float, waiters: int, lock_timeout: float) -> StallResult:
    schema = None
    folder = tempfile.TemporaryDirectory(prefix="nangluc-stall-")
    if sqlite:
        database_url = f"sqlite:///{Path(folder.name) / 'stall.db'}"
    else:
        schema = _Schema(DEFAULT_POSTGRES)
        database_url = schema.url
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        server = _start_server(
            database_url,
            port,
            workers=1,
            bank=None,
            env={"NANGLUC_DB_LOCK_TIMEOUT": str(lock_timeout)},
            log_level="error",
        )
        try:
            reader = httpx.post(base + API + "/sessions", json={}, timeout=30).json()
            reader = reader if sqlite else None
            _measure(base, 1.0, reader, seed=1)  # warm-up
            free_health, free_others = _measure(base, seconds, reader, seed=2)
            locked = httpx.post(base + API + "/sessions", json={}, timeout=30).json()
            held = threading.Event()
            release = threading.Event()
            threading.Thread(
                target=_hold, args=(database_url, locked["session_id"], held, release), daemon=True
            ).start()
            if not held.wait(30):
                raise RuntimeError("could not take the lock")
            replies: dict[str, int] = {}
            waits: list[float] = []
            stop = time.monotonic() + seconds

            def waiter() -> None:
                with httpx.Client(base_url=base, timeout=60) as http:
                    while time.monotonic() < stop:
                        start = time.perf_counter()
                        code = http.post(
                            f"{API}/sessions/{locked['session_id']}/answers",
                            json={"item_id": locked["item"]["id"], "response": 0},
                        ).status_code
                        waits.append(time.perf_counter() - start)
                        replies[str(code)] = replies.get(str(code), 0) + 1

            waiting = [threading.Thread(target=waiter) for _ in range(waiters)]
            for t in waiting:
                t.start()
            held_health, held_others = _measure(base, seconds, reader, seed=3)
            for t in waiting:
                t.join()
            release.set()
        finally:
            _stop_server(server)
    finally:
        if schema is not None:
            schema.drop()
        folder.cleanup()
    return StallResult(
        database="SQLite" if sqlite else "PostgreSQL",
        lock_seconds=seconds,
        free_health=free_health,
        free_others=free_others,
        held_health=held_health,
        held_others=held_others,
        locked_replies=replies,
        locked_wait_s=float(np.mean(waits)) if waits else float("nan"),
    )


def _hold(database_url: str, session_id: str, held: threading.Event, release: threading.Event):
    if database_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(600)
        conn.execute("ROLLBACK")
        conn.close()
        return
    import psycopg

    from nangluc.service.settings import sqlalchemy_url

    plain = sqlalchemy_url(database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        conn.execute("SELECT id FROM test_session WHERE id = %s FOR UPDATE", (session_id,))
        held.set()
        release.wait(600)
        conn.rollback()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument(
        "--waiters", type=int, default=4, help="clients answering the locked session"
    )
    parser.add_argument("--lock-timeout", type=float, default=2.0, help="NANGLUC_DB_LOCK_TIMEOUT")
    args = parser.parse_args(argv)
    result = run(
        sqlite=args.sqlite,
        seconds=args.seconds,
        waiters=args.waiters,
        lock_timeout=args.lock_timeout,
    )
    print(json.dumps(asdict(result), indent=2))
    print(result.line())


if __name__ == "__main__":
    main()
