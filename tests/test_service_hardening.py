"""Regression tests of issue #12's findings, against a real ``nangluc serve`` process.

Each test starts the server as a subprocess on a free port (SQLite file or a
PostgreSQL schema of its own) and talks to it over sockets, as an attacker or
an operator would. Timings discriminate seconds from milliseconds only (a
held lock of 6 s against replies under 1 s), so a loaded machine does not
make them flaky; the < 100 ms figures are measured in benchmarks/.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from service_fixtures import (
    ADMIN_KEY,
    DATABASES,
    ServerProcess,
    bank_dict,
    fresh_database,
    write_bank,
)

API = "/api/v1"


def _bank(tmp_path: Path) -> Path:
    return write_bank(tmp_path / "bank.json", bank_dict())


# ------------------------------------------------------------ stalls ------


class _LockHolder(threading.Thread):
    """Holds a database lock from another connection for ``seconds``.

    SQLite: ``BEGIN IMMEDIATE`` (the write lock every writer needs).
    PostgreSQL: ``SELECT ... FOR UPDATE`` on one session's row.
    """

    def __init__(self, url: str, seconds: float, session_id: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds, self.session_id = url, seconds, session_id
        self.held = threading.Event()
        self.released = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.url.startswith("sqlite"):
                import sqlite3

                conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                self.held.set()
                time.sleep(self.seconds)
                conn.execute("ROLLBACK")
                conn.close()
            else:
                import psycopg

                from nangluc.service.settings import sqlalchemy_url

                plain = sqlalchemy_url(self.url).replace("postgresql+psycopg://", "postgresql://")
                with psycopg.connect(plain) as conn:
                    conn.execute(
                        "SELECT id FROM test_session WHERE id = %s FOR UPDATE", (self.session_id,)
                    ).fetchall()
                    self.held.set()
                    time.sleep(self.seconds)
                    conn.rollback()
        except BaseException as error:  # reported by the test
            self.error = error
            self.held.set()
        finally:
            self.released.set()


def _timed(call) -> tuple[float, httpx.Response]:
    start = time.monotonic()
    reply = call()
    return time.monotonic() - start, reply


class _LockedScene(NamedTuple):
    """A served app with two new sessions, the first one's lock held by another connection."""

    server: ServerProcess
    http: httpx.Client
    locked: dict
    other: dict
    holder: _LockHolder


@contextmanager
def _one_session_locked(
    kind: str, tmp_path: Path, *, lock_timeout: int, hold_seconds: float
) -> Iterator[_LockedScene]:
    with (
        fresh_database(kind, tmp_path) as url,
        ServerProcess(
            url, _bank(tmp_path), env={"NANGLUC_DB_LOCK_TIMEOUT": str(lock_timeout)}
        ) as server,
        httpx.Client(base_url=server.base + API, timeout=30) as http,
    ):
        locked = http.post("/sessions", json={}).json()
        other = http.post("/sessions", json={}).json()
        holder = _LockHolder(url, hold_seconds, locked["session_id"])
        holder.start()
        assert holder.held.wait(10) and holder.error is None, holder.error
        yield _LockedScene(server, http, locked, other, holder)


def _answer_first_item(client: httpx.Client, session: dict) -> httpx.Response:
    """Option 0 to the item a new session asked first."""
    return client.post(
        f"/sessions/{session['session_id']}/answers",
        json={"item_id": session["item"]["id"], "response": 0},
    )


@pytest.mark.slow
def test_requests_piling_on_a_locked_session_leave_threads_for_the_others(tmp_path: Path) -> None:
    """With 4 session threads, 8 answers waiting on one locked session took them all,
    and another session's answer waited 2 s (``benchmarks.service_stall``): a
    session's answers now take one thread at a time."""
    with _one_session_locked("postgresql", tmp_path, lock_timeout=3, hold_seconds=5.0) as (
        server,
        http,
        locked,
        other,
        holder,
    ):
        statuses: list[int] = []

        def answer_locked() -> None:
            with httpx.Client(base_url=server.base + API, timeout=30) as own:
                statuses.append(_answer_first_item(own, locked).status_code)

        waiters = [threading.Thread(target=answer_locked) for _ in range(8)]
        for waiter in waiters:
            waiter.start()
        time.sleep(0.5)  # all eight are waiting on the lock
        other_seconds, other_reply = _timed(lambda: _answer_first_item(http, other))
        still_held = not holder.released.is_set()
        for waiter in waiters:
            waiter.join(20)
        holder.join(20)

    assert still_held, "the lock was released before the other session answered"
    assert other_reply.status_code == 200 and other_seconds < 1.0, (other_seconds, other_reply)
    # Each waited its lock timeout (503), unless it retried after the lock was
    # gone: then one answer is stored and a later one is a conflict.
    assert len(statuses) == 8 and set(statuses) <= {200, 409, 503}, statuses
    assert statuses.count(200) <= 1 and statuses.count(503) >= 4, statuses


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_a_held_lock_stalls_only_its_own_request_and_ends_in_503(kind: str, tmp_path: Path) -> None:
    """Finding 1: a lock held for 6 s froze /health for 5 s; the answer waited without bound."""
    with _one_session_locked(kind, tmp_path, lock_timeout=2, hold_seconds=6.0) as (
        server,
        http,
        locked,
        other,
        holder,
    ):
        outcome: dict[str, object] = {}

        def answer_locked() -> None:
            with httpx.Client(base_url=server.base + API, timeout=30) as own:
                outcome["seconds"], outcome["reply"] = _timed(
                    lambda: _answer_first_item(own, locked)
                )

        waiter = threading.Thread(target=answer_locked)
        waiter.start()
        time.sleep(0.3)  # the answer is now waiting on the lock
        health = [_timed(lambda: http.get("/health"))[0] for _ in range(5)]
        if kind == "sqlite":  # one write lock for the file: reads go on
            other_seconds, other_reply = _timed(
                lambda: http.get(f"/sessions/{other['session_id']}")
            )
        else:  # one row lock: other sessions' answers go on
            other_seconds, other_reply = _timed(lambda: _answer_first_item(http, other))
        still_held = not holder.released.is_set()
        waiter.join(20)
        holder.join(20)

        assert still_held, "the lock was released before the checks ran"
        assert max(health) < 1.0, health
        assert other_reply.status_code == 200 and other_seconds < 1.0, (other_seconds, other_reply)
        reply = outcome["reply"]
        assert isinstance(reply, httpx.Response)
        assert reply.status_code == 503, reply.text
        assert "busy" in reply.json()["detail"] and reply.headers["retry-after"] == "2"
        assert 1.5 <= outcome["seconds"] < 5.5, outcome["seconds"]  # bounded by the lock timeout
        # Once the lock is gone the same answer goes through.
        again = _answer_first_item(http, locked)
        assert again.status_code == 200, again.text
        assert "Traceback" not in server.output()


# --------------------------------------------------- edge of the server ------


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory):
    """One SQLite server with short read deadlines, shared by the edge tests."""
    directory = tmp_path_factory.mktemp("edge")
    env = {
        "NANGLUC_HEADER_TIMEOUT": "1",
        "NANGLUC_BODY_TIMEOUT": "1",
        "NANGLUC_ADMIN_KEY": ADMIN_KEY,
    }
    with ServerProcess(f"sqlite:///{directory / 'edge.db'}", _bank(directory), env=env) as server:
        yield server


def _raw_exchange(port: int, chunks: list[bytes], pause: float, limit: float = 15.0):
    """Send ``chunks`` with ``pause`` between them; return (seconds until closed, bytes read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=limit)
    received = b""
    start = time.monotonic()
    try:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sock.settimeout(pause)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            received += data
            if not data or b"\r\n\r\n" in received:
                break
        sock.settimeout(max(0.1, limit - (time.monotonic() - start)))
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            received += data
    finally:
        sock.close()
    return time.monotonic() - start, received


def test_dripped_headers_get_408_and_the_connection_closes(edge_server) -> None:
    """Finding 5: connections dripping their headers stayed open for 75 s."""
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
    seconds, received = _raw_exchange(edge_server.port, [head] + [b"a"] * 40, pause=0.25)
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert seconds < 8, seconds


def test_dripped_body_gets_408(edge_server) -> None:
    head = (
        b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 40\r\n\r\n"
    )
    seconds, received = _raw_exchange(edge_server.port, [head] + [b" "] * 39, pause=0.25)
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert seconds < 8, seconds


def test_declared_body_never_sent_gets_408(edge_server) -> None:
    head = (
        b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    seconds, received = _raw_exchange(edge_server.port, [head], pause=0.25)
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert seconds < 8, seconds
    assert "Traceback" not in edge_server.output()


def test_a_silent_connection_is_closed(edge_server) -> None:
    seconds, received = _raw_exchange(edge_server.port, [b""], pause=0.25)
    assert received == b"" and seconds < 8, (seconds, received)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_oversized_headers_get_431_without_growing_the_server(edge_server) -> None:
    """Finding 5: an 8 MB and a 200 MB header were answered 200; the server grew 130 MB."""
    reply = httpx.get(edge_server.base + API + "/health", headers={"X-Big": "a" * (8 << 20)})
    assert reply.status_code == 431, reply.status_code
    assert reply.headers["x-content-type-options"] == "nosniff"
    just_under = httpx.get(edge_server.base + API + "/health", headers={"X-Big": "a" * 15000})
    assert just_under.status_code == 200

    before = _rss_kib(edge_server.process.pid)
    sock = socket.create_connection(("127.0.0.1", edge_server.port), timeout=10)
    sent = 0
    try:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        while sent < (200 << 20):
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection early: what we want
    finally:
        sock.close()
    grown = _rss_kib(edge_server.process.pid) - before
    assert sent < (200 << 20), "the server read a 200 MB header to its end"
    assert grown < 32 * 1024, f"server grew by {grown} KiB"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"[" * 973 + b"]" * 973, "application/json", 400, "nested deeper"),
        (b'{"item_id": "x", "response": 1.0}', "application/json", 400, "Expected `int`"),
        (b'{"item_id": "x", "response": "1"}', "application/json", 400, "Expected `int`"),
        (b'{"item_id": "x", "response": -1}', "application/json", 400, ">= 0"),
        (b'{"item_id": "x", "response": 1}', "text/plain", 415, "application/json"),
        (b"{not json", "application/json", 400, "not valid JSON"),
    ],
    ids=["nested", "float", "string", "negative", "text-plain", "broken"],
)
def test_bad_bodies_are_4xx_never_500(edge_server, body, content_type, status, words) -> None:
    """Findings 4 and 8: nested JSON gave 500; 1.0, "1" and text/plain were accepted."""
    with httpx.Client(base_url=edge_server.base + API, timeout=10) as http:
        started = http.post("/sessions", json={}).json()
        url = f"/sessions/{started['session_id']}/answers"
        real = body.replace(b'"x"', f'"{started["item"]["id"]}"'.encode())
        reply = http.post(url, content=real, headers={"Content-Type": content_type})
        assert reply.status_code == status, reply.text
        assert words in reply.json()["detail"]
        # Nothing was stored: the session still waits for its first answer.
        assert http.get(f"/sessions/{started['session_id']}").json()["answered"] == 0
        nested = http.post(
            "/sessions",
            content=b"[" * 973 + b"]" * 973,
            headers={"Content-Type": "application/json"},
        )
        assert nested.status_code == 400
    assert "RecursionError" not in edge_server.output()


def test_security_headers_everywhere(edge_server) -> None:
    """Finding 9: no nosniff, no Cache-Control: no-store on results; CDN scripts on the docs."""
    with httpx.Client(base_url=edge_server.base, timeout=10) as http:
        started = http.post(API + "/sessions", json={})
        session = http.get(f"{API}/sessions/{started.json()['session_id']}")
        result = http.get(f"{API}/sessions/{started.json()['session_id']}/result")  # 409
        replies = {
            "start": started,
            "session": session,
            "result": result,
            "health": http.get(API + "/health"),
            "404": http.get("/no/such/page"),
            "page": http.get("/"),
            "static": http.get("/static/app.js"),
            "docs": http.get("/schema/swagger"),
            "export": http.get(API + "/admin/responses.csv", headers={"X-API-Key": ADMIN_KEY}),
        }
        for name, reply in replies.items():
            assert reply.headers.get("x-content-type-options") == "nosniff", name
        for name in ("start", "session", "result", "health", "export"):
            assert replies[name].headers["cache-control"] == "no-store", name
        docs = replies["docs"]
        assert docs.status_code == 200
        policy = docs.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "default-src 'none'" in policy
        assert "cdn" not in docs.text and "https://" not in docs.text
        assert http.get("/schema/redoc").status_code == 404


def test_head_is_answered_wherever_get_is(edge_server) -> None:
    """HEAD / and HEAD /api/v1/health were 405: uptime monitors and ``curl -I`` ask with HEAD."""
    with httpx.Client(base_url=edge_server.base, timeout=10) as http:
        session_id = http.post(API + "/sessions", json={}).json()["session_id"]
        for path in ("/", API + "/health", API + "/ready", f"{API}/sessions/{session_id}"):
            got, head = http.get(path), http.head(path)
            assert got.status_code == head.status_code == 200, path
            for name in (
                "content-type",
                "content-length",
                "cache-control",
                "x-content-type-options",
            ):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
            assert int(head.headers["content-length"]) > 0 and head.content == b""
        # Where GET is not answered, neither is HEAD.
        assert http.head(API + "/sessions").status_code == 405
        assert http.head("/no/such/page").status_code == 404
    # No body bytes follow the headers: the next reply on the connection starts right after.
    _, raw = _raw_exchange(
        edge_server.port,
        [
            b"HEAD /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ],
        pause=2.0,
    )
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 200"), raw[:400]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["status"] == "ok"


def test_export_escapes_formulas_in_every_cell(edge_server) -> None:
    """Finding 3: wards such as =HYPERLINK(...) were exported unescaped."""
    wards = [
        '=HYPERLINK("http://example.invalid","x")',
        "=cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "@SUM(1,1)",
        "＝1+1",
    ]
    with httpx.Client(base_url=edge_server.base + API, timeout=10) as http:
        for ward in wards:
            started = http.post("/sessions", json={"ward": ward}).json()
            answered = http.post(
                f"/sessions/{started['session_id']}/answers",
                json={"item_id": started["item"]["id"], "response": 0},
            )
            assert answered.status_code == 200
        export = http.get("/admin/responses.csv", headers={"X-API-Key": ADMIN_KEY})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    exported = {row["ward"] for row in rows}
    for ward in wards:
        assert "'" + ward in exported, ward
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r＝＋－＠", row


@pytest.mark.parametrize(
    ("ward", "words"),
    [
        ("Hải\u202eChâu", "bidirectional"),
        ("Hải Châu\u2028", "line or paragraph separator"),
        ("\u200b", "empty"),
        ("\u200b \ufeff", "empty"),
        ("Hải\x00Châu", None),
    ],
    ids=["rlo", "line-separator", "zero-width", "invisible-only", "nul"],
)
def test_ward_with_invisible_or_control_characters_is_refused(edge_server, ward, words) -> None:
    """Finding 10: U+202E, U+2028 and a lone zero-width space were accepted."""
    reply = httpx.post(edge_server.base + API + "/sessions", json={"ward": ward}, timeout=10)
    assert reply.status_code == 400, reply.text
    if words:
        assert words in reply.json()["detail"]


def test_ward_is_stored_in_nfc_without_invisible_characters(edge_server) -> None:
    decomposed = unicodedata.normalize("NFD", "Phường Thạc Gián")
    with httpx.Client(base_url=edge_server.base + API, timeout=10) as http:
        started = http.post("/sessions", json={"ward": f"  {decomposed}\u200b  "}).json()
        http.post(
            f"/sessions/{started['session_id']}/answers",
            json={"item_id": started["item"]["id"], "response": 0},
        )
        export = http.get("/admin/responses.csv", headers={"X-API-Key": ADMIN_KEY}).text
    wards = {row["ward"] for row in csv.DictReader(io.StringIO(export))}
    assert "Phường Thạc Gián" in wards
    assert decomposed not in wards


# ------------------------------------------------------- settings ------


@pytest.mark.slow
@pytest.mark.postgres
def test_every_setting_reaches_both_workers(tmp_path: Path) -> None:
    """Finding 2: NANGLUC_REPORT_MIN_GROUP=50 gave min_group 5 under ``nangluc serve``."""
    env = {
        "NANGLUC_REPORT_MIN_GROUP": "50",
        "NANGLUC_MAX_BODY_SIZE": "2048",
        "NANGLUC_MAX_HEADER_SIZE": "4096",
        "NANGLUC_ADMIN_KEY": ADMIN_KEY,
        "NANGLUC_PLANNER_KEY": "hardening-planner",
        "NANGLUC_DB_LOCK_TIMEOUT": "3",
    }
    with (
        fresh_database("postgresql", tmp_path) as url,
        ServerProcess(url, _bank(tmp_path), env=env, workers=2) as server,
    ):
        for _ in range(16):  # a new connection each: the kernel spreads them over both workers
            report = httpx.get(
                server.base + API + "/reports/levels",
                headers={"X-API-Key": "hardening-planner"},
                timeout=10,
            )
            assert report.json()["min_group"] == 50
            big_body = httpx.post(
                server.base + API + "/sessions",
                content=b'{"ward": "' + b"a" * 3000 + b'"}',
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            assert big_body.status_code == 413
            big_header = httpx.get(
                server.base + API + "/health", headers={"X-Big": "a" * 5000}, timeout=10
            )
            assert big_header.status_code == 431
            banks = httpx.get(
                server.base + API + "/admin/banks", headers={"X-API-Key": ADMIN_KEY}, timeout=10
            )
            assert banks.status_code == 200


# ------------------------------------------------------- recovery ------


def _chattr(flag: str, path: Path) -> bool:
    result = subprocess.run(["chattr", flag, str(path)], capture_output=True)
    return result.returncode == 0


@pytest.mark.slow
def test_read_only_sqlite_is_reported_and_recovers_without_restart(tmp_path: Path) -> None:
    """Finding 6: a read-only file gave 503 "try again shortly" forever, even once writable."""
    from nangluc.service.settings import Settings
    from nangluc.service.store import Database

    database = tmp_path / "ro.db"
    url = f"sqlite:///{database}"
    bank = _bank(tmp_path)
    setup = Database(Settings(database_url=url, bank_path=str(bank)))
    setup.setup()
    setup.dispose()
    # Root ignores file modes; the immutable flag holds for root too.
    if not _chattr("+i", database):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        with ServerProcess(url, bank) as server:
            refused = httpx.post(server.base + API + "/sessions", json={}, timeout=30)
            assert refused.status_code == 503, refused.text
            assert "read-only" in refused.json()["detail"]
            assert "try again shortly" not in refused.json()["detail"]
            assert _chattr("-i", database)
            accepted = httpx.post(server.base + API + "/sessions", json={}, timeout=30)
            assert accepted.status_code == 201, accepted.text
    finally:
        _chattr("-i", database)
