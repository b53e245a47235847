"""Shared fixtures of the service tests: a small bank, databases, app clients.

Every test gets a fresh database: a temporary SQLite file, or a schema of its
own on the PostgreSQL server (``NANGLUC_TEST_POSTGRES_URL``, selected through
``search_path`` so parallel pytest-xdist workers never meet). PostgreSQL tests
skip when the server is unreachable, unless ``NANGLUC_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from nangluc.items import load_framework
from nangluc.service.settings import Settings

ADMIN_KEY = "test-admin-key-7f3a"
PLANNER_KEY = "test-planner-key-41c9"
POSTGRES_URL = os.environ.get(
    "NANGLUC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
KINDS = ("knowledge", "skill", "attitude")


def bank_dict(
    version: str = "svc-test-1", *, per_area: int = 8, seed: int = 0, shift: float = 0.0
) -> dict[str, Any]:
    """A small full bank: every area has keyed 3PL/2PL items and graded items.

    ``shift`` moves every difficulty (to make a visibly different version).
    """
    rng = np.random.default_rng(seed)
    framework = load_framework()
    items = []
    for area in framework.areas:
        competences = [c.code for c in framework.competences_of(area.code)] or [None]
        for k in range(per_area):
            item_id = f"{area.code}.t{k:02d}"
            common = {
                "id": item_id,
                "area": area.code,
                "competence": competences[k % len(competences)],
                "status": "operational",
                "text": {"vi": f"Câu hỏi {item_id}?", "en": f"Question {item_id}?"},
            }
            a = float(np.round(rng.uniform(0.9, 2.0), 3))
            if k % 4 == 3:  # a graded skill/attitude item with four ordered options
                b = np.sort(rng.normal(0, 1, 3)) + shift
                b = b + np.arange(3) * 0.3  # strictly increasing
                items.append(
                    common
                    | {
                        "ksa": KINDS[1 + k % 2],
                        "model": "grm",
                        "a": a,
                        "thresholds": [float(np.round(x, 3)) for x in b],
                        "options": [{"vi": f"Mức {j}", "en": f"Level {j}"} for j in range(4)],
                    }
                )
            else:  # keyed multiple choice
                model = "3pl" if k % 2 == 0 else "2pl"
                item = common | {
                    "ksa": "knowledge",
                    "model": model,
                    "a": a,
                    "b": float(np.round(rng.normal(0, 1) + shift, 3)),
                    "options": [{"vi": f"Lựa chọn {j}", "en": f"Option {j}"} for j in range(4)],
                    "key": int(k % 4),
                }
                if model == "3pl":
                    item["c"] = 0.2
                items.append(item)
    return {
        "version": version,
        "status": "provisional",
        "framework": framework.to_dict(),
        "items": items,
    }


def write_bank(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except Exception:  # any failure means: not usable here
        return False


def require_postgres() -> None:
    if not postgres_available():
        if os.environ.get("NANGLUC_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL is required (NANGLUC_REQUIRE_POSTGRES=1) but {POSTGRES_URL} is unreachable"
            )
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable")


class PostgresSchema:
    """A schema of its own on the test server; URLs that select it via search_path."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"nangluc_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    @property
    def url(self) -> str:
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={self.name}')}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """URL of a fresh, empty database: a SQLite file in ``directory`` or a PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'service-{uuid.uuid4().hex[:8]}.db'}"
        return
    require_postgres()
    schema = PostgresSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@contextmanager
def app_client(
    database_url: str,
    directory: Path,
    document: dict[str, Any] | None = None,
    **settings: Any,
) -> Iterator[Any]:
    """A test client of an app on ``database_url`` with the small test bank.

    ``settings`` are further :class:`Settings` fields (e.g. ``report_min_group``).
    """
    from litestar.testing import TestClient

    from nangluc.service.app import create_app

    bank = write_bank(directory / f"bank-{uuid.uuid4().hex[:8]}.json", document or bank_dict())
    app = create_app(
        Settings(database_url=database_url, bank_path=str(bank), pool_size=4, **settings)
        .with_admin_keys(ADMIN_KEY)
        .with_planner_keys(PLANNER_KEY)
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        app.state.db.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def fresh_client(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """A test client on a database of its own (for tests that count everything stored)."""
    with app_client(database_url, tmp_path) as test_client:
        yield test_client


@pytest.fixture(scope="module", params=DATABASES)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A test client shared by a module's tests (they look only at their own sessions)."""
    directory = tmp_path_factory.mktemp("service")
    with fresh_database(request.param, directory) as url, app_client(url, directory) as test_client:
        yield test_client


#: Chromium flags for headless tests on a machine with no internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """``app`` served over real HTTP by uvicorn in a thread on a free local port.

    Yields the base URL (``http://127.0.0.1:PORT``); the server stops on exit.
    """
    import threading
    import time

    import uvicorn

    class Server(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # the test process keeps its own
            pass

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer_for(item: dict[str, Any], rng: np.random.Generator) -> int:
    """A random valid option index for an item payload."""
    return int(rng.integers(len(item["options"])))


def run_to_end(
    client: Any, session_id: str, item: dict[str, Any] | None, rng: np.random.Generator
) -> int:
    """Answer until the test finishes; returns the number of answers sent."""
    sent = 0
    while item is not None:
        reply = client.post(
            f"/api/v1/sessions/{session_id}/answers",
            json={"item_id": item["id"], "response": answer_for(item, rng)},
        )
        assert reply.status_code == 200, reply.text
        item = reply.json()["item"]
        sent += 1
        assert sent <= 60, "a test did not finish within 60 answers"
    return sent


ROOT = Path(__file__).resolve().parents[1]


class ServerProcess:
    """A real ``nangluc serve`` in a subprocess (its own process group), on a free port.

    ``env`` adds environment variables (``NANGLUC_*`` settings); ``args`` adds
    flags. :meth:`stop` ends the process group it started, by its id.
    """

    def __init__(
        self,
        database_url: str,
        bank: Path | None = None,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        workers: int = 1,
    ) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "nangluc", "serve", "--port", str(self.port)]
        command += ["--database-url", database_url, "--workers", str(workers)]
        if bank is not None:
            command += ["--bank", str(bank)]
        command += ["--log-level", "warning", "--no-access-log", *args]
        self.log = (
            Path(os.environ.get("TMPDIR", "/tmp")) / f"nangluc-serve-{uuid.uuid4().hex[:8]}.log"
        )
        self._log_file = self.log.open("wb")
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            start_new_session=True,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> ServerProcess:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not start within {timeout} s: {self.output()[-3000:]}")

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int | None = None) -> None:
        import signal
        import subprocess

        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig or signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
        if not self._log_file.closed:
            self._log_file.close()

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)
